// Command shelfbench measures Shelfgate's storage and delivery paths and
// prints one `FIGURE name=value unit=U baseline=value ratio=value` line per
// figure, each beside a baseline measured in the same run (these machines
// are noisy; only same-run ratios mean anything).
//
//	shelfbench store    outbox ingest vs a raw batched SQLite insert of the same rows
//	shelfbench uplink   outbox → mosquitto → subscriber vs raw paho QoS1 single-reading publishes
//	shelfbench latency  sample-to-subscriber p50/p99 at 5,000 readings/s vs direct paho publishes
//	shelfbench drain    time to deliver a 10-million-reading backlog vs the time to ingest it (-window, -batch, -figure)
//	shelfbench compress zstd batch bytes and encode time vs plain JSON
//	shelfbench modelpush 5 MB model push vs raw QoS1 publishes; telemetry during a transfer vs without
//	shelfbench statuspage gateway e2e readings/s and heap with 100 SSE clients on the status page vs without the page
//	shelfbench footprint RSS, CPU per million readings and start-to-first-commit of the real binary vs raw SQLite+paho and a bare start
package main

import (
	"bytes"
	"context"
	"database/sql"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	_ "github.com/mattn/go-sqlite3"

	"github.com/shelfgate/shelfgate/gateway"
	"github.com/shelfgate/shelfgate/gateway/outbox"
	"github.com/shelfgate/shelfgate/gateway/uplink"
	"github.com/shelfgate/shelfgate/gateway/wire/shelfv1"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: shelfbench store|uplink|latency|drain|compress [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "store":
		err = store(os.Args[2:])
	case "uplink":
		err = uplinkBench(os.Args[2:])
	case "latency":
		err = latency(os.Args[2:])
	case "drain":
		err = drain(os.Args[2:])
	case "compress":
		err = compressBench(os.Args[2:])
	case "modelpush":
		err = modelPush(os.Args[2:])
	case "statuspage":
		err = statusPageBench(os.Args[2:])
	case "footprint":
		err = footprint(os.Args[2:])
	default:
		err = fmt.Errorf("unknown benchmark %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "shelfbench:", err)
		os.Exit(1)
	}
}

func figure(name string, value float64, unit string, baseline float64) {
	fmt.Printf("FIGURE %s=%.0f unit=%s baseline=%.0f ratio=%.3f\n", name, value, unit, baseline, value/baseline)
}

// figureF is figure for values that need decimals.
func figureF(name string, value float64, unit string, baseline float64) {
	fmt.Printf("FIGURE %s=%.3f unit=%s baseline=%.3f ratio=%.3f\n", name, value, unit, baseline, value/baseline)
}

func records(n, streams int) []gateway.Record {
	recs := make([]gateway.Record, n)
	t0 := time.Now()
	for i := range recs {
		recs[i] = gateway.Record{Class: gateway.ClassTelemetry, Stream: gateway.StreamID(fmt.Sprintf("loadcell/shelf-%02d/bin-%02d", i%streams/8, i%8)), Time: t0.Add(time.Duration(i) * time.Microsecond), Value: 1000 + float64(i%977)/10, Unit: "g"}
	}
	return recs
}

// store compares outbox ingest (concurrent producers, group commit, ids and
// sequences) with the same rows inserted raw in 8192-row transactions of
// 128-row INSERT statements, both with WAL and synchronous=FULL.
func store(args []string) error {
	fs := flag.NewFlagSet("store", flag.ExitOnError)
	n := fs.Int("rows", 1_000_000, "rows to insert")
	producers := fs.Int("producers", 8, "concurrent Append callers")
	batch := fs.Int("batch", 1024, "rows per Append")
	fs.Parse(args)
	dir, err := os.MkdirTemp("", "shelfbench-store")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	recs := records(*n, 64)

	raw, err := rawInsert(filepath.Join(dir, "raw.db"), recs)
	if err != nil {
		return err
	}
	ob, err := outbox.Open(filepath.Join(dir, "outbox.db"), outbox.DefaultOptions)
	if err != nil {
		return err
	}
	defer ob.Close()
	start := time.Now()
	if err := appendAll(context.Background(), ob, recs, *producers, *batch); err != nil {
		return err
	}
	el := time.Since(start)
	if got := ob.Backlog(); got != int64(*n) {
		return fmt.Errorf("outbox holds %d rows, want %d", got, *n)
	}
	figure("ingest_rows_per_s", float64(*n)/el.Seconds(), "rows/s", raw)
	return nil
}

func rawInsert(path string, recs []gateway.Record) (float64, error) {
	db, err := sql.Open("sqlite3", "file:"+path+"?_journal_mode=WAL&_synchronous=FULL&_txlock=immediate")
	if err != nil {
		return 0, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.Exec(`CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, stream INTEGER NOT NULL, seq INTEGER NOT NULL, class INTEGER NOT NULL, ts INTEGER NOT NULL, value REAL NOT NULL, quality INTEGER NOT NULL, body BLOB)`); err != nil {
		return 0, err
	}
	const per = 128
	stmt, err := db.Prepare("INSERT INTO outbox(id, stream, seq, class, ts, value, quality, body) VALUES " + strings.TrimSuffix(strings.Repeat("(?,?,?,?,?,?,?,?),", per), ","))
	if err != nil {
		return 0, err
	}
	defer stmt.Close()
	args := make([]any, 0, per*8)
	start := time.Now()
	for lo := 0; lo < len(recs); lo += 8192 {
		tx, err := db.Begin()
		if err != nil {
			return 0, err
		}
		ts := tx.Stmt(stmt)
		hi := min(lo+8192, len(recs))
		for i := lo; i+per <= hi; i += per {
			args = args[:0]
			for j := i; j < i+per; j++ {
				r := &recs[j]
				args = append(args, int64(j+1), int64(j%64), int64(j/64+1), int64(0), r.Time.UnixMicro(), r.Value, int64(0), nil)
			}
			if _, err := ts.Exec(args...); err != nil {
				tx.Rollback()
				return 0, err
			}
		}
		if err := tx.Commit(); err != nil {
			return 0, err
		}
	}
	return float64(len(recs)-len(recs)%per) / time.Since(start).Seconds(), nil
}

// uplinkBench measures readings/s from the outbox through mosquitto to a
// QoS1 subscriber (acked and deleted), beside raw paho publishing one QoS1
// message per reading, with many in flight, to the same broker and subscriber.
func uplinkBench(args []string) error {
	fs := flag.NewFlagSet("uplink", flag.ExitOnError)
	n := fs.Int("readings", 1_000_000, "readings through the gateway path")
	nRaw := fs.Int("raw", 50_000, "single-reading publishes for the baseline")
	producers := fs.Int("producers", 8, "concurrent Append callers (a gateway has a source per sensor)")
	prof := fs.String("cpuprofile", "", "write a CPU profile of the gateway path here")
	fs.Parse(args)
	url, stop, err := startMosquitto()
	if err != nil {
		return err
	}
	defer stop()

	// Baseline: one QoS1 message per reading.
	var rawGot atomic.Int64
	sub, err := subscribe(url, "bench/raw", func(p []byte) { rawGot.Add(1) })
	if err != nil {
		return err
	}
	pub := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID("bench-raw-pub").SetOrderMatters(false))
	if t := pub.Connect(); !t.WaitTimeout(10*time.Second) || t.Error() != nil {
		return fmt.Errorf("connect: %v", t.Error())
	}
	recs := records(*nRaw, 64)
	start := time.Now()
	toks := make([]paho.Token, 0, *nRaw)
	for i := range recs {
		p := shelfv1.AppendBatch(nil, "bench", "raw", gateway.BatchRef{Class: gateway.ClassTelemetry}, time.Now(), recs[i:i+1])
		toks = append(toks, pub.Publish("bench/raw", 1, false, p))
	}
	for _, t := range toks {
		if !t.WaitTimeout(60*time.Second) || t.Error() != nil {
			return fmt.Errorf("raw publish: %v", t.Error())
		}
	}
	if err := waitCount(&rawGot, int64(*nRaw), 60*time.Second); err != nil {
		return fmt.Errorf("raw baseline: %w", err)
	}
	rawRate := float64(*nRaw) / time.Since(start).Seconds()
	pub.Disconnect(0)
	sub.Disconnect(0)

	// Shelfgate: producers append to the outbox while the uplink delivers.
	ob, closeOutbox, err := tempOutbox("shelfbench-uplink")
	if err != nil {
		return err
	}
	defer closeOutbox()
	var got atomic.Int64
	topics := shelfv1.Topics{Site: "bench", Gateway: "gw"}
	sub, err = subscribe(url, topics.Telemetry(), countRecords(&got))
	if err != nil {
		return err
	}
	defer sub.Disconnect(0)
	ctx := context.Background()
	stopUplink, err := runUplink(ob, uplink.Options{Brokers: []string{url}, Topics: topics, BatchRecords: 1000, Window: 64})
	if err != nil {
		return err
	}
	defer stopUplink()
	recs = records(*n, 64)
	if *prof != "" {
		f, err := os.Create(*prof)
		if err != nil {
			return err
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	start = time.Now()
	if err := appendAll(ctx, ob, recs, *producers, 1024); err != nil {
		return err
	}
	if err := waitCount(&got, int64(*n), 120*time.Second); err != nil {
		return fmt.Errorf("gateway path: %w", err)
	}
	for ob.Backlog() > 0 && time.Since(start) < 120*time.Second {
		time.Sleep(time.Millisecond)
	}
	rate := float64(*n) / time.Since(start).Seconds()
	stopUplink()
	figure("e2e_readings_per_s", rate, "readings/s", rawRate)
	return nil
}

// appendAll appends recs to ob from producers goroutines, batch rows per
// Append, as a gateway's sources do; it returns the first error.
func appendAll(ctx context.Context, ob *outbox.Outbox, recs []gateway.Record, producers, batch int) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, producers)
	for range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				lo := int(next.Add(int64(batch))) - batch
				if lo >= len(recs) {
					return
				}
				if err := ob.Append(ctx, recs[lo:min(lo+batch, len(recs))]); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}

// tempOutbox opens an outbox in a new temporary directory; closeFn closes
// it and removes the directory.
func tempOutbox(name string) (ob *outbox.Outbox, closeFn func(), err error) {
	dir, err := os.MkdirTemp("", name)
	if err != nil {
		return nil, nil, err
	}
	ob, err = outbox.Open(filepath.Join(dir, "outbox.db"), outbox.DefaultOptions)
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	return ob, func() { ob.Close(); os.RemoveAll(dir) }, nil
}

// runUplink starts an uplink delivering ob; stop ends it and waits (it may
// be called more than once).
func runUplink(ob *outbox.Outbox, opts uplink.Options) (stop func(), err error) {
	up, err := uplink.New(ob, opts)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- up.Run(ctx) }()
	var once sync.Once
	return func() { once.Do(func() { cancel(); <-done }) }, nil
}

// countRecords counts the records of each telemetry payload into got
// without a full JSON decode, so the subscriber (sharing the 2 cores) is
// not what is measured.
func countRecords(got *atomic.Int64) func([]byte) {
	key := []byte(`{"id":`)
	return func(p []byte) { got.Add(int64(bytes.Count(p, key))) }
}

func waitCount(c *atomic.Int64, want int64, d time.Duration) error {
	deadline := time.Now().Add(d)
	for c.Load() < want {
		if time.Now().After(deadline) {
			return fmt.Errorf("subscriber got %d of %d within %s", c.Load(), want, d)
		}
		time.Sleep(time.Millisecond)
	}
	return nil
}

func subscribe(url, topic string, h func([]byte)) (paho.Client, error) {
	c := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID("bench-sub-" + strings.ReplaceAll(topic, "/", "-")).SetOrderMatters(false))
	if t := c.Connect(); !t.WaitTimeout(10*time.Second) || t.Error() != nil {
		return nil, fmt.Errorf("subscriber connect: %v", t.Error())
	}
	if t := c.Subscribe(topic, 1, func(_ paho.Client, m paho.Message) { h(m.Payload()) }); !t.WaitTimeout(10*time.Second) || t.Error() != nil {
		return nil, fmt.Errorf("subscribe: %v", t.Error())
	}
	return c, nil
}

// startMosquitto runs mosquitto (no persistence, no queue limit) on a free
// loopback port.
func startMosquitto() (url string, stop func(), err error) {
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/mosquitto"); serr != nil {
			return "", nil, fmt.Errorf("mosquitto not found (apt-get install mosquitto)")
		}
		bin = "/usr/sbin/mosquitto"
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	dir, err := os.MkdirTemp("", "shelfbench-mosquitto")
	if err != nil {
		return "", nil, err
	}
	conf := filepath.Join(dir, "m.conf")
	c := fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\nmax_queued_messages 0\nmax_inflight_messages 0\nlog_dest none\n", port)
	if os.Geteuid() == 0 {
		c += "user root\n"
	}
	if err := os.WriteFile(conf, []byte(c), 0o644); err != nil {
		return "", nil, err
	}
	cmd := exec.Command(bin, "-c", conf)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	for i := 0; ; i++ {
		if conn, err := net.Dial("tcp", addr); err == nil {
			conn.Close()
			break
		}
		if i > 200 {
			cmd.Process.Kill()
			return "", nil, fmt.Errorf("mosquitto did not listen on %s", addr)
		}
		time.Sleep(25 * time.Millisecond)
	}
	return "tcp://" + addr, func() { cmd.Process.Kill(); cmd.Wait(); os.RemoveAll(dir) }, nil
}
