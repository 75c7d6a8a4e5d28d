package main

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/shelfgate/shelfgate/firmware-sim/warehouse"
	"github.com/shelfgate/shelfgate/gateway"
	"github.com/shelfgate/shelfgate/gateway/wire/shelfv1"
)

// footprint runs the real shelfgate binary in a steady state (a simulated
// warehouse of HX711 load cells read through the real driver path, a
// simulated scanner, uplink to mosquitto) and measures, from outside the
// process: RSS (VmRSS sampled, VmHWM), CPU seconds per million committed
// readings, and the time from exec to the first committed reading (READY=1
// on a NOTIFY_SOCKET the bench listens on). Baselines from the same run: a
// raw SQLite + paho process storing and publishing the same readings at the
// same rate, and the bare start of `shelfgate version`.
func footprint(args []string) error {
	fs := flag.NewFlagSet("footprint", flag.ExitOnError)
	var sh footprintShape
	fs.IntVar(&sh.Bins, "bins", 4, "simulated single-cell bins (one HX711 each, analytic detector)")
	fs.IntVar(&sh.Plates, "plates", 5, "simulated shelf plates (four HX711s on a shared clock each, classified per event)")
	fs.StringVar(&sh.Classifier, "classifier", "model", "plate classifier: model (int8 inference on every event), shadow or analytic")
	fs.StringVar(&sh.Model, "model", "configs/models/plate.sgm", "plate model file for -classifier model|shadow")
	fs.StringVar(&sh.Key, "trusted-key", testSigningKey, "hex ed25519 key the model is signed with")
	fs.Float64Var(&sh.Rate, "rate", 80, "samples/s per load cell")
	fs.Float64Var(&sh.Visits, "visits", 600, "picker visits per plate per hour (each an event the model classifies); 600 is the simulation's most")
	warm := fs.Duration("warm", 5*time.Second, "settling time before the measured window")
	window := fs.Duration("window", 30*time.Second, "measured steady-state window")
	bin := fs.String("shelfgate", "", "shelfgate binary (default: go build ./cmd/shelfgate)")
	noSims := fs.Bool("no-sims-run", false, "skip the simulators-only run")
	child := fs.Bool("baseline-child", false, "internal: run the raw SQLite+paho baseline in this process")
	simsChild := fs.Bool("sims-child", false, "internal: run the simulators alone in this process")
	broker := fs.String("broker", "", "internal: broker URL for -baseline-child")
	fs.Parse(args)
	cells := sh.cells()
	if *child {
		return rawBaseline(*broker, cells, sh.Rate, *window, os.Stdout)
	}
	if *simsChild {
		return simsOnly(sh, *warm, *window, os.Stdout)
	}
	if sh.Model != "" && !filepath.IsAbs(sh.Model) {
		abs, err := filepath.Abs(sh.Model)
		if err != nil {
			return err
		}
		sh.Model = abs
	}
	if sh.Classifier != "analytic" {
		if _, err := os.Stat(sh.Model); err != nil {
			return fmt.Errorf("plate model for -classifier %s (run from the repository root or pass -model): %w", sh.Classifier, err)
		}
	}

	dir, err := os.MkdirTemp("", "shelfbench-footprint")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if *bin == "" {
		*bin = filepath.Join(dir, "shelfgate")
		build := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", *bin, "./cmd/shelfgate")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("build shelfgate (run from the repository root): %w", err)
		}
	}
	url, stop, err := startMosquitto()
	if err != nil {
		return err
	}
	defer stop()

	// Baseline 1: the bare start of the same binary.
	var starts []time.Duration
	for range 5 {
		t0 := time.Now()
		if out, err := exec.Command(*bin, "version").CombinedOutput(); err != nil {
			return fmt.Errorf("shelfgate version: %v: %s", err, out)
		}
		starts = append(starts, time.Since(t0))
	}
	slices.Sort(starts)
	bareStart := starts[len(starts)/2]

	// The gateway, with a subscriber proving the readings reach the broker.
	metricsAddr, err := freeAddr()
	if err != nil {
		return err
	}
	conf := filepath.Join(dir, "footprint.yaml")
	if err := os.WriteFile(conf, []byte(footprintConfig(url, filepath.Join(dir, "outbox.db"), metricsAddr, sh)), 0o644); err != nil {
		return err
	}
	var got atomic.Int64
	sub, err := subscribe(url, shelfv1.Topics{Site: "bench", Gateway: "footprint"}.Telemetry(), countRecords(&got))
	if err != nil {
		return err
	}
	defer sub.Disconnect(0)
	notify := filepath.Join(dir, "notify.sock")
	ready, closeNotify, err := listenNotify(notify)
	if err != nil {
		return err
	}
	defer closeNotify()
	cmd := exec.Command(*bin, "run", "--config", conf)
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+notify)
	logf, err := os.Create(filepath.Join(dir, "gateway.log"))
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	}()
	var firstCommit time.Duration
	select {
	case <-ready:
		firstCommit = time.Since(t0)
	case err := <-exited:
		log, _ := os.ReadFile(logf.Name())
		return fmt.Errorf("shelfgate exited before READY: %v\n%s", err, log)
	case <-time.After(30 * time.Second):
		return errors.New("no READY=1 (first committed reading) within 30s")
	}
	pid := cmd.Process.Pid
	time.Sleep(*warm)

	// The measured window.
	c0, err := scrapeCounter(metricsAddr, "shelfgate_readings_committed_total")
	if err != nil {
		return err
	}
	cpu0, err := procCPU(pid)
	if err != nil {
		return err
	}
	var rss []int64
	end := time.Now().Add(*window)
	for time.Now().Before(end) {
		if v, err := statusKB(pid, "VmRSS"); err == nil {
			rss = append(rss, v)
		}
		time.Sleep(500 * time.Millisecond)
	}
	cpu1, err := procCPU(pid)
	if err != nil {
		return err
	}
	c1, err := scrapeCounter(metricsAddr, "shelfgate_readings_committed_total")
	if err != nil {
		return err
	}
	hwm, err := statusKB(pid, "VmHWM")
	if err != nil {
		return err
	}
	// What the resident set is made of: anonymous memory (Go heap and
	// stacks, SQLite's page caches) and file pages (the binary's text).
	anon, _ := statusKB(pid, "RssAnon")
	file, _ := statusKB(pid, "RssFile")
	threads, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	readings := c1 - c0
	if readings <= 0 || len(rss) == 0 {
		return fmt.Errorf("no readings committed in the window (%v)", readings)
	}
	if got.Load() == 0 {
		return errors.New("the subscriber received no readings: the uplink is not delivering")
	}
	slices.Sort(rss)
	steady := rss[len(rss)/2]
	gwCPU := (cpu1 - cpu0) / readings * 1e6
	fmt.Printf("footprint: %d load cells at %.0f samples/s (%d bins + %d plates x 4, plate classifier %s), %d simulated scanners, uplink to mosquitto; %0.f readings committed in %s (%.0f/s), subscriber got %d\n",
		cells, sh.Rate, sh.Bins, sh.Plates, sh.Classifier, sh.scanners(), readings, *window, readings/window.Seconds(), got.Load())
	evs, _ := scrapeCounter(metricsAddr, "shelfgate_events_committed_total")
	inf, _ := scrapeCounter(metricsAddr, "shelfgate_inferences_total")
	fmt.Printf("footprint: since start %.0f events committed, %.0f model inferences\n", evs, inf)

	fmt.Printf("footprint: at the end RssAnon %.1f MiB (heap, stacks, SQLite caches), RssFile %.1f MiB (binary text), %d threads; the simulated HX711s and scanner run inside the gateway process and count in both RSS and CPU\n",
		float64(anon)/1024, float64(file)/1024, len(threads))

	// Baseline 2: raw SQLite + paho, same readings at the same rate, in a
	// process of its own so its CPU and RSS are its own.
	self, err := os.Executable()
	if err != nil {
		return err
	}
	bcmd := exec.Command(self, append([]string{"footprint", "-baseline-child", "-broker", url, "-window", window.String()}, sh.flags()...)...)
	bcmd.Stderr = os.Stderr
	bout, err := bcmd.Output()
	if err != nil {
		return fmt.Errorf("baseline: %w", err)
	}
	ru := bcmd.ProcessState.SysUsage().(*syscall.Rusage)
	bReadings, err := strconv.ParseFloat(strings.TrimSpace(string(bout)), 64)
	if err != nil || bReadings <= 0 {
		return fmt.Errorf("baseline printed %q", bout)
	}
	bCPU := (tv(ru.Utime) + tv(ru.Stime)) / bReadings * 1e6
	bRSS := float64(ru.Maxrss) / 1024 // KiB -> MiB

	figureF("footprint_rss_max_mib", float64(hwm)/1024, "MiB", bRSS)
	figureF("footprint_rss_steady_mib", float64(steady)/1024, "MiB", bRSS)
	figureF("footprint_cpu_s_per_million_readings", gwCPU, "s", bCPU)
	figureF("footprint_start_to_first_commit_ms", ms(firstCommit), "ms", ms(bareStart))
	fmt.Printf("footprint: targets RSS <= 32 MiB (stretch 20): %s (stretch %s); start to first commit <= 1000 ms: %s\n",
		verdict(float64(hwm)/1024 <= 32), verdict(float64(hwm)/1024 <= 20), verdict(firstCommit <= time.Second))
	if *noSims {
		return nil
	}

	// The simulators alone, in a process of their own: the same warehouse,
	// hx711sims and scanner ptys read at the same rate by the bare periph
	// driver (no loadcell.Source, no gateway). What its anonymous memory
	// grows by is what the simulators cost the gateway process, which a
	// real Pi does not pay.
	scmd := exec.Command(self, append([]string{"footprint", "-sims-child", "-warm", warm.String(), "-window", window.String()}, sh.flags()...)...)
	scmd.Stderr = os.Stderr
	sout, err := scmd.Output()
	if err != nil {
		return fmt.Errorf("simulators-only run: %w", err)
	}
	var sr simsResult
	if _, err := fmt.Sscan(string(sout), &sr.AnonStartKB, &sr.AnonEndKB, &sr.HWMKB, &sr.Reads, &sr.LiveKB, &sr.CPU); err != nil {
		return fmt.Errorf("simulators-only run printed %q: %w", sout, err)
	}
	simsAnon := max(float64(sr.AnonEndKB-sr.AnonStartKB)/1024, 0)
	simsLive := float64(sr.LiveKB) / 1024
	fmt.Printf("footprint: simulators alone: %d cell readings by the bare drivers in %s, anonymous memory %.1f -> %.1f MiB (+%.1f MiB), live heap and stacks %.1f MiB after a collection, max RSS %.1f MiB of a separate process\n",
		sr.Reads, *warm+*window, float64(sr.AnonStartKB)/1024, float64(sr.AnonEndKB)/1024, simsAnon, simsLive, float64(sr.HWMKB)/1024)
	figureF("footprint_sims_anon_mib", simsAnon, "MiB", float64(anon)/1024)
	figureF("footprint_sims_live_mib", simsLive, "MiB", float64(anon)/1024)
	figureF("footprint_sims_cpu_s_per_million_readings", sr.CPU/float64(sr.Reads)*1e6, "s", gwCPU)
	// The simulators' share of the gateway's RSS lies between what they
	// hold live and what a process of their own grew by.
	hi, lo := float64(hwm)/1024-simsLive, float64(hwm)/1024-simsAnon
	figureF("footprint_pipeline_rss_max_mib", hi, "MiB", bRSS)
	fmt.Printf("footprint: pipeline alone (max RSS less the simulators) %.1f-%.1f MiB: RSS <= 32 MiB %s, stretch 20 MiB %s\n",
		lo, hi, verdict(hi <= 32), verdict(hi <= 20))
	return nil
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func tv(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }

// testSigningKey is the TEST-ONLY key the shipped plate model
// (configs/models/plate.sgm) is signed with.
const testSigningKey = "b78fb2145bc3f53008e749bf95a328fe4cfffb36f48bc793c30a47ecdf45d355"

// footprintShape is the simulated hardware of the footprint run. The
// daemon's simulation puts a scanner on every plate's picker besides the
// picking scanner, so a shape with plates has plates+1 scanners.
type footprintShape struct {
	Bins, Plates      int
	Rate, Visits      float64
	Classifier, Model string
	Key               string
}

func (s footprintShape) cells() int    { return s.Bins + 4*s.Plates }
func (s footprintShape) scanners() int { return 1 + s.Plates }

// flags passes the shape on to a child run.
func (s footprintShape) flags() []string {
	return []string{"-bins", strconv.Itoa(s.Bins), "-plates", strconv.Itoa(s.Plates), "-rate", fmt.Sprint(s.Rate), "-visits", fmt.Sprint(s.Visits),
		"-classifier", s.Classifier, "-model", s.Model, "-trusted-key", s.Key}
}

// warehouse is the simulation.warehouse section for the shape: one shelf
// of Bins bins, Plates plates of four facings.
func (s footprintShape) warehouse() warehouse.Config {
	wc := warehouse.DefaultConfig()
	wc.Seed, wc.Shelves, wc.BinsPerShelf, wc.SampleRate, wc.Speed = 7, 1, s.Bins, s.Rate, 1
	wc.Plates = warehouse.PlateConfig{Count: s.Plates, Facings: 4, WidthMM: 600, DepthMM: 400, VisitsPerHour: s.Visits,
		UnitSpread: 0.03, LightShare: 0.25}
	return wc
}

// footprintConfig is the gateway's configuration: the simulated warehouse
// (HX711 simulators under every bin and plate, read through the real
// drivers; the plates classified by the int8 model on every event; a
// simulated USB-CDC scanner for picking and one per plate picker) at speed
// 1, uplink to the bench's mosquitto.
func footprintConfig(url, outbox, metrics string, sh footprintShape) string {
	wc := sh.warehouse()
	classifier := "    mode: " + sh.Classifier + "\n"
	if sh.Classifier != "analytic" {
		classifier += fmt.Sprintf("    model: %s\n    trusted_keys: [%s]\n", sh.Model, sh.Key)
	}
	return fmt.Sprintf(`gateway:
  id: footprint
  site: bench
broker:
  urls: [%s]
outbox:
  path: %s
simulation:
  warehouse:
    seed: %d
    shelves: %d
    bins_per_shelf: %d
    sample_rate: %g
    speed: 1
    plates:
      count: %d
      facings: %d
      width_mm: %g
      depth_mm: %g
      visits_per_hour: %g
      unit_spread: %g
      light_share: %g
  scanner: true
  plate_classifier:
%smetrics:
  listen: %s
log:
  level: info
  format: json
`, url, outbox, wc.Seed, wc.Shelves, wc.BinsPerShelf, wc.SampleRate, wc.Plates.Count, wc.Plates.Facings, wc.Plates.WidthMM,
		wc.Plates.DepthMM, wc.Plates.VisitsPerHour, wc.Plates.UnitSpread, wc.Plates.LightShare, classifier, metrics)
}

// listenNotify listens on a unixgram socket as systemd's notify socket
// does; ready receives once when READY=1 arrives.
func listenNotify(path string) (ready <-chan struct{}, closeFn func(), err error) {
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return nil, nil, fmt.Errorf("notify socket: %w", err)
	}
	ch := make(chan struct{})
	go func() {
		buf := make([]byte, 4096)
		sent := false
		for {
			n, _, err := conn.ReadFromUnix(buf)
			if err != nil {
				return
			}
			for _, l := range strings.Split(string(buf[:n]), "\n") {
				if l == "READY=1" && !sent {
					sent = true
					close(ch)
				}
			}
		}
	}()
	return ch, func() { conn.Close() }, nil
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// scrapeCounter reads one unlabelled sample from the gateway's /metrics.
func scrapeCounter(addr, name string) (float64, error) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0, fmt.Errorf("scrape: %w", err)
	}
	defer resp.Body.Close()
	return findSample(resp.Body, name)
}

// findSample finds `name value` in a Prometheus text exposition.
func findSample(r io.Reader, name string) (float64, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && f[0] == name {
			v, err := strconv.ParseFloat(f[1], 64)
			if err != nil {
				return 0, fmt.Errorf("metric %s: value %q: %w", name, f[1], err)
			}
			return v, nil
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("metric %s not exposed", name)
}

// procCPU is the user+system CPU seconds of pid so far.
func procCPU(pid int) (float64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseStatCPU(string(data), 100) // USER_HZ is 100 on Linux
}

// parseStatCPU returns utime+stime (fields 14 and 15) of a /proc/PID/stat
// line in seconds; the command name may contain spaces and parentheses.
func parseStatCPU(stat string, hz float64) (float64, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("stat: no ')' in %q", stat)
	}
	f := strings.Fields(stat[i+1:])
	// f[0] is field 3 (state): utime is field 14, stime 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("stat: %d fields after the name, want at least 13", len(f))
	}
	u, err1 := strconv.ParseUint(f[11], 10, 64)
	s, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("stat: utime %q stime %q", f[11], f[12])
	}
	return float64(u+s) / hz, nil
}

// statusKB reads "key: N kB" from /proc/PID/status.
func statusKB(pid int, key string) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(data), "\n") {
		k, v, ok := strings.Cut(l, ":")
		if ok && k == key {
			f := strings.Fields(v)
			if len(f) == 2 && f[1] == "kB" {
				return strconv.ParseInt(f[0], 10, 64)
			}
		}
	}
	return 0, fmt.Errorf("status: no %s", key)
}

// rawBaseline stores and publishes cells×rate readings/s for d the plain
// way: a 5 ms tick (the outbox's commit interval) inserts the tick's
// readings in one transaction (WAL, synchronous=FULL), a 20 ms tick (the
// uplink's linger) publishes the stored rows as one QoS1 message and
// deletes them at its PUBACK. It prints the number of readings.
func rawBaseline(url string, cells int, rate float64, d time.Duration, w io.Writer) error {
	dir, err := os.MkdirTemp("", "shelfbench-baseline")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(dir, "raw.db")+"?_journal_mode=WAL&_synchronous=FULL&_txlock=immediate")
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.Exec(`CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, stream INTEGER NOT NULL, ts INTEGER NOT NULL, value REAL NOT NULL)`); err != nil {
		return err
	}
	pub := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID("bench-footprint-baseline"))
	if t := pub.Connect(); !t.WaitTimeout(10*time.Second) || t.Error() != nil {
		return fmt.Errorf("baseline connect: %v", t.Error())
	}
	defer pub.Disconnect(0)
	streams := make([]gateway.StreamID, cells)
	for i := range streams {
		streams[i] = gateway.StreamID(fmt.Sprintf("loadcell/bin-%02d", i))
	}
	ctx := context.Background()
	commit := time.NewTicker(5 * time.Millisecond)
	defer commit.Stop()
	send := time.NewTicker(20 * time.Millisecond)
	defer send.Stop()
	start := time.Now()
	var owed float64
	var total, sent int64
	next := 0
	last := start
	var buf []byte
	recs := make([]gateway.Record, 0, 1024)
	for time.Since(start) < d {
		select {
		case now := <-commit.C:
			owed += rate * float64(cells) * now.Sub(last).Seconds()
			last = now
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				return err
			}
			for ; owed >= 1; owed-- {
				if _, err := tx.Exec(`INSERT INTO outbox(stream, ts, value) VALUES (?,?,?)`, next%cells, now.UnixMicro(), 1000+float64(next%97)/10); err != nil {
					tx.Rollback()
					return err
				}
				next++
				total++
			}
			if err := tx.Commit(); err != nil {
				return err
			}
		case now := <-send.C:
			rows, err := db.Query(`SELECT id, stream, ts, value FROM outbox WHERE id > ? ORDER BY id LIMIT 1000`, sent)
			if err != nil {
				return err
			}
			recs = recs[:0]
			for rows.Next() {
				var r gateway.Record
				var s, ts int64
				if err := rows.Scan(&r.ID, &s, &ts, &r.Value); err != nil {
					rows.Close()
					return err
				}
				r.Stream, r.Time, r.Unit, r.Class = streams[s], time.UnixMicro(ts), "g", gateway.ClassTelemetry
				recs = append(recs, r)
			}
			rows.Close()
			if len(recs) == 0 {
				continue
			}
			buf = shelfv1.AppendBatch(buf[:0], "bench", "baseline", gateway.BatchRef{Class: gateway.ClassTelemetry}, now, recs)
			t := pub.Publish(shelfv1.Topics{Site: "bench", Gateway: "baseline"}.Telemetry(), 1, false, buf)
			if !t.WaitTimeout(10*time.Second) || t.Error() != nil {
				return fmt.Errorf("baseline publish: %v", t.Error())
			}
			hi := recs[len(recs)-1].ID
			if _, err := db.Exec(`DELETE FROM outbox WHERE id <= ?`, hi); err != nil {
				return err
			}
			sent = hi
		}
	}
	fmt.Fprintln(w, total)
	return nil
}
