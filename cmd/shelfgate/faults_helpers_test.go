//go:build faults

package main

import (
	"bufio"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shelfgate/shelfgate/gateway/faultproxy"
	"github.com/shelfgate/shelfgate/gateway/mqtttest"
)

// faultConfig is the gateway's configuration in the fault suite: keepalive
// 2s so a dead link is noticed quickly, a sustained simulated warehouse.
const faultConfig = `
gateway: {id: gw-faults, site: site-faults}
broker:
  urls: [%q]
  keepalive: 2s
outbox: {path: %q, commit_interval: 5ms, max_bytes: %s}
uplink: {flush_timeout: 30s, batch_records: %d, ack_timeout: %s, ack_mode: %s, consumer_ack_timeout: 5s}
simulation:
  warehouse:
    seed: %d
    shelves: 2
    bins_per_shelf: 4
    sample_rate: 80
    speed: %g
    noise_grams: 0.5
    drift_grams_per_hour: 2
    picks_per_bin_per_hour: 200
    max_units_per_pick: 3
    put_probability: 0.3
log: {level: info}
`

// rigOptions shape one fault case.
type rigOptions struct {
	Proxy        bool          // put a faultproxy between gateway and broker
	Speed        float64       // warehouse time acceleration; default 6
	BatchRecords int           // default 500
	AckTimeout   time.Duration // default 20s
	BrokerConf   string        // extra mosquitto config lines: a custom broker instead of mqtttest's
	// ConsumerAcks sets uplink.ack_mode consumer and runs collect --ack:
	// rows leave the outbox when the collector confirms them, not at PUBACK.
	ConsumerAcks bool
	MaxBytes     string // outbox.max_bytes; default 1GiB
	OutboxDir    string // directory of the outbox database; default the test's
	// AllowShed: rows shed under the disk budget are expected; finish then
	// requires collected + shed (as audited) = ids assigned, and shed > 0.
	AllowShed bool
}

// faultRig is one fault case's world: a broker, optionally a proxy, the
// collector (persistent session, running throughout) and the gateway binary,
// whose RSS is sampled while it runs.
type faultRig struct {
	t       *testing.T
	opts    rigOptions
	gwBin   string
	ctlBin  string
	dir     string
	dbPath  string
	cfgPath string
	out     string

	broker    *mqtttest.Mosquitto // nil with BrokerConf
	custom    *customBroker       // non-nil with BrokerConf
	brokerURL string
	proxy     *faultproxy.Proxy

	collector  *exec.Cmd
	auditOut   lockedBuffer
	collectErr lockedBuffer
	gwLog      lockedBuffer

	mu      sync.Mutex
	gw      *exec.Cmd
	starts  int
	peakRSS int64 // kB
	// peakGoroutines is the highest go_goroutines the gateway's /metrics
	// reported (metricsAddr), sampled every 500ms: a leak per reconnect or
	// per restart of a lane would show here.
	peakGoroutines int
	// steadyGoroutines is the count when the case first saw the gateway
	// delivering (its first waitDelivering); finish compares it with the
	// count at the end.
	steadyGoroutines int
	metricsAddr      string
	stopRSS          chan struct{}
	rssDone          chan struct{}
}

func newRig(t *testing.T, opts rigOptions) *faultRig {
	t.Helper()
	if opts.Speed == 0 {
		opts.Speed = 6
	}
	if opts.BatchRecords == 0 {
		opts.BatchRecords = 500
	}
	if opts.AckTimeout == 0 {
		opts.AckTimeout = 20 * time.Second
	}
	r := &faultRig{t: t, opts: opts, dir: t.TempDir(), stopRSS: make(chan struct{}), rssDone: make(chan struct{})}
	r.gwBin, r.ctlBin = binaries(t)
	if opts.MaxBytes == "" {
		opts.MaxBytes = "1GiB"
	}
	r.opts = opts
	r.dbPath = filepath.Join(r.dir, "outbox.db")
	if opts.OutboxDir != "" {
		r.dbPath = filepath.Join(opts.OutboxDir, "outbox.db")
	}
	r.cfgPath = filepath.Join(r.dir, "shelfgate.yaml")
	r.out = filepath.Join(r.dir, "collected.jsonl")
	if opts.BrokerConf != "" {
		r.custom = startCustomBroker(t, opts.BrokerConf)
		r.brokerURL = r.custom.URL
	} else {
		r.broker = mqtttest.StartMosquitto(t)
		r.brokerURL = r.broker.URL
	}
	gwURL := r.brokerURL
	if opts.Proxy {
		p, err := faultproxy.New(r.brokerURL)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Close() })
		r.proxy = p
		gwURL = p.URL()
	}
	seed := rand.IntN(1 << 20)
	ackMode := "broker"
	if opts.ConsumerAcks {
		ackMode = "consumer"
	}
	cfg := fmt.Sprintf(faultConfig, gwURL, r.dbPath, opts.MaxBytes, opts.BatchRecords, opts.AckTimeout, ackMode, seed, opts.Speed)
	r.metricsAddr = freeAddr(t)
	cfg += fmt.Sprintf("metrics: {listen: %q}\n", r.metricsAddr)
	if err := os.WriteFile(r.cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Logf("warehouse seed %d, speed %g, batch_records %d, ack_timeout %s, ack_mode %s, proxy %v", seed, opts.Speed, opts.BatchRecords, opts.AckTimeout, ackMode, opts.Proxy)

	// The collector connects straight to the broker, never through the proxy.
	args := []string{"collect", "--broker", r.brokerURL, "--out", r.out, "--client-id", "faults-collector", "--site", "site-faults", "--from-start"} // there from the first reading: audit from 1
	if opts.ConsumerAcks {
		args = append(args, "--ack")
	}
	r.collector = exec.Command(r.ctlBin, args...)
	r.collector.Stdout, r.collector.Stderr = &r.auditOut, &r.collectErr
	if err := r.collector.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.collector.Process.Kill(); r.collector.Wait() })
	waitUntil(t, "collector subscribed", 15*time.Second, func() bool { return strings.Contains(r.collectErr.String(), "subscribed") })

	go r.sampleRSS()
	t.Cleanup(func() {
		r.mu.Lock()
		gw := r.gw
		r.mu.Unlock()
		if gw != nil {
			gw.Process.Kill()
			gw.Wait()
		}
		r.stopSampling()
	})
	return r
}

// startGateway starts the gateway binary; it must not be running.
func (r *faultRig) startGateway() {
	r.t.Helper()
	cmd := exec.Command(r.gwBin, "run", "--config", r.cfgPath)
	cmd.Stdout, cmd.Stderr = &r.gwLog, &r.gwLog
	if err := cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	r.mu.Lock()
	r.gw = cmd
	r.starts++
	r.mu.Unlock()
}

// killGateway SIGKILLs the running gateway and reaps it.
func (r *faultRig) killGateway() {
	r.mu.Lock()
	cmd := r.gw
	r.gw = nil
	r.mu.Unlock()
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
}

// stopGateway stops the gateway with SIGTERM (it flushes its backlog for
// flush_timeout) and fails the test if it does not exit cleanly.
func (r *faultRig) stopGateway() {
	r.t.Helper()
	r.mu.Lock()
	cmd := r.gw
	r.gw = nil
	r.mu.Unlock()
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			r.t.Fatalf("gateway after SIGTERM: %v\n%s", err, r.tailLog(40))
		}
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		<-done
		r.t.Fatalf("gateway did not exit within 60s of SIGTERM\n%s", r.tailLog(40))
	}
}

// sampleRSS records the running gateway's peak VmRSS every 50ms and its
// peak goroutine count (from /metrics) every 500ms.
func (r *faultRig) sampleRSS() {
	defer close(r.rssDone)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for n := 0; ; n++ {
		select {
		case <-r.stopRSS:
			return
		case <-tick.C:
		}
		r.mu.Lock()
		cmd := r.gw
		r.mu.Unlock()
		if cmd == nil || cmd.Process == nil {
			continue
		}
		if kb, ok := vmRSS(cmd.Process.Pid); ok {
			r.mu.Lock()
			r.peakRSS = max(r.peakRSS, kb)
			r.mu.Unlock()
		}
		if n%10 == 0 {
			if g, ok := scrapeGoroutines(r.metricsAddr); ok {
				r.mu.Lock()
				r.peakGoroutines = max(r.peakGoroutines, g)
				r.mu.Unlock()
			}
		}
	}
}

// maxGoroutines bounds the gateway's goroutines in every fault case. The
// simulated warehouse of faultConfig runs about 40 while delivering
// (sources and simulators, writer, lanes, paho, metrics) and peaks at
// 75-115 while a flapping link reconnects; a leak per reconnect, broker
// kill or re-sent batch would also show in finish's comparison of the
// count at the end with the count when the case first saw a delivery.
const maxGoroutines = 200

// goroutineGrowth is how many more goroutines than when it first delivered a gateway
// may have at the end of a case (a reconnect or a batch in progress).
const goroutineGrowth = 10

// scrapeGoroutines reads go_goroutines from the gateway's /metrics.
func scrapeGoroutines(addr string) (int, bool) {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_goroutines "); ok {
			g, err := strconv.ParseFloat(v, 64)
			return int(g), err == nil
		}
	}
	return 0, false
}

// freeAddr returns a loopback address with a port free right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func (r *faultRig) stopSampling() {
	select {
	case <-r.stopRSS:
	default:
		close(r.stopRSS)
	}
	<-r.rssDone
}

// vmRSS reads VmRSS (kB) from /proc/<pid>/status.
func vmRSS(pid int) (int64, bool) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			fields := strings.Fields(rest)
			if len(fields) > 0 {
				kb, err := strconv.ParseInt(fields[0], 10, 64)
				return kb, err == nil
			}
		}
	}
	return 0, false
}

// tailLog returns the last n lines of the gateway's output.
func (r *faultRig) tailLog(n int) string {
	lines := strings.Split(strings.TrimRight(r.gwLog.String(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// auditTotals is collect's AUDIT total line.
type auditTotals struct {
	Streams, Received, Duplicates, Conflicts, Missing, Shed, Rejected int64
	Result                                                            string
	Text                                                              string // the whole audit
	ExitErr                                                           error
}

// stopCollector waits until want unique records arrived (or 30s passed),
// stops the collector with SIGINT and parses its audit.
func (r *faultRig) stopCollector(want int) auditTotals {
	r.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for want > 0 && countLines(r.t, r.out) < want && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	r.collector.Process.Signal(syscall.SIGINT)
	err := r.collector.Wait()
	a := auditTotals{Text: r.auditOut.String(), ExitErr: err}
	var line string
	for _, l := range strings.Split(a.Text, "\n") {
		if strings.HasPrefix(l, "AUDIT total ") {
			line = l
		}
	}
	if line == "" {
		r.t.Fatalf("no AUDIT total line (exit %v):\n%s\n%s", err, a.Text, r.collectErr.String())
	}
	fields := map[string]*int64{"streams": &a.Streams, "received": &a.Received, "duplicates": &a.Duplicates,
		"conflicts": &a.Conflicts, "missing": &a.Missing, "shed": &a.Shed, "rejected": &a.Rejected}
	for _, kv := range strings.Fields(line) {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		if k == "result" {
			a.Result = v
		} else if p := fields[k]; p != nil {
			*p, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	if a.Result == "" {
		r.t.Fatalf("AUDIT total line without result: %s", line)
	}
	return a
}

// finish stops the gateway cleanly, then requires: an empty outbox, every id
// the outbox ever assigned collected exactly once, zero gaps and conflicts in
// every stream (so any duplicate was the same id), at least minProduced
// readings, and a peak RSS below 64 MB. It returns the audit.
func (r *faultRig) finish(minProduced int) auditTotals {
	r.t.Helper()
	// Whatever the case did (reconnects, broker kills, re-sends, a backlog
	// replayed), a delivering gateway must end with about the goroutines
	// it had when it first delivered.
	time.Sleep(time.Second) // let a reconnect or a replay in progress settle
	endGoroutines, _ := scrapeGoroutines(r.metricsAddr)
	r.mu.Lock()
	steady := r.steadyGoroutines
	r.mu.Unlock()
	if steady > 0 && endGoroutines > steady+goroutineGrowth {
		r.t.Errorf("gateway goroutines grew from %d when it first delivered to %d at the end of the case: a leak", steady, endGoroutines)
	}
	r.t.Logf("goroutines: %d when first delivering, %d at the end", steady, endGoroutines)
	r.stopGateway()
	r.stopSampling()
	total, backlog := outboxTotals(r.t, r.dbPath)
	if backlog != 0 {
		r.t.Errorf("clean shutdown left %d rows undelivered\n%s", backlog, r.tailLog(40))
	}
	a := r.stopCollector(total)
	collected := countLines(r.t, r.out)
	r.mu.Lock()
	peak, starts, gor := r.peakRSS, r.starts, r.peakGoroutines
	r.mu.Unlock()
	r.t.Logf("RESULT produced=%d collected=%d received=%d duplicates=%d missing=%d conflicts=%d shed=%d streams=%d gateway_starts=%d peak_rss=%.1fMB peak_goroutines=%d",
		total, collected, a.Received, a.Duplicates, a.Missing, a.Conflicts, a.Shed, a.Streams, starts, float64(peak)/1024, gor)
	if r.proxy != nil {
		r.t.Logf("proxy %+v", r.proxy.Stats())
	}
	if a.ExitErr != nil || a.Missing != 0 || a.Conflicts != 0 || a.Rejected != 0 || a.Result != "OK" {
		r.t.Errorf("audit not clean (collect exit %v):\n%s", a.ExitErr, a.Text)
	}
	switch {
	case !r.opts.AllowShed && a.Shed != 0:
		r.t.Errorf("audit reports %d rows shed without a disk budget being reached", a.Shed)
	case !r.opts.AllowShed && collected != total:
		r.t.Errorf("collected %d unique records, the outbox assigned %d ids", collected, total)
	case r.opts.AllowShed && a.Shed == 0:
		r.t.Errorf("nothing was shed: the outage did not reach the disk budget, so this case tested nothing")
	case r.opts.AllowShed && int64(collected)+a.Shed != int64(total):
		r.t.Errorf("collected %d + shed %d = %d, the outbox assigned %d ids", collected, a.Shed, int64(collected)+a.Shed, total)
	}
	if tail, detail := unreportedTails(r.t, r.dbPath, a.Text); tail > 0 {
		r.t.Errorf("%d records lost at stream tails, which the audit cannot see:\n%s", tail, strings.Join(detail, "\n"))
	}
	if total < minProduced {
		r.t.Errorf("only %d readings produced, want at least %d", total, minProduced)
	}
	if a.Streams < 8 {
		r.t.Errorf("audit covers %d streams, want at least the 8 load cells", a.Streams)
	}
	if peak == 0 {
		r.t.Error("gateway RSS was never sampled")
	} else if peak >= 64<<10 {
		r.t.Errorf("gateway peak RSS %.1f MB, want below 64 MB", float64(peak)/1024)
	}
	if gor == 0 {
		r.t.Error("gateway goroutines were never sampled from /metrics")
	} else if gor > maxGoroutines {
		r.t.Errorf("gateway peak goroutines %d, want at most %d", gor, maxGoroutines)
	}
	return a
}

// collected returns how many unique records the collector wrote so far.
func (r *faultRig) collected() int { return countLines(r.t, r.out) }

// waitDelivering waits until the collector's count grows by at least n
// within d, and returns how long it took.
func (r *faultRig) waitDelivering(what string, n int, d time.Duration) time.Duration {
	r.t.Helper()
	start := time.Now()
	base := r.collected()
	waitUntil(r.t, what, d, func() bool { return r.collected() >= base+n })
	r.mu.Lock()
	first := r.steadyGoroutines == 0
	r.mu.Unlock()
	if first {
		if g, ok := scrapeGoroutines(r.metricsAddr); ok {
			r.mu.Lock()
			r.steadyGoroutines = g
			r.mu.Unlock()
		}
	}
	return time.Since(start)
}

// customBroker is a mosquitto with the test's own configuration (not
// configs/mosquitto-test.conf), on a free loopback port.
type customBroker struct {
	URL  string
	Addr string
	cmd  *exec.Cmd
}

func startCustomBroker(t *testing.T, conf string) *customBroker {
	t.Helper()
	bin := mqtttest.FindMosquitto(t)
	dir := t.TempDir()
	port := mqtttest.FreePort(t)
	b := &customBroker{Addr: "127.0.0.1:" + strconv.Itoa(port)}
	b.URL = "tcp://" + b.Addr
	full := fmt.Sprintf("%s\nlistener %d 127.0.0.1\npersistence_location %s/\nallow_anonymous true\nlog_dest stderr\nlog_type error\n", conf, port, dir)
	if os.Geteuid() == 0 {
		full += "user root\n"
	}
	path := filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(path, []byte(full), 0o600); err != nil {
		t.Fatal(err)
	}
	b.cmd = exec.Command(bin, "-c", path)
	b.cmd.Stdout, b.cmd.Stderr = os.Stderr, os.Stderr
	b.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := b.cmd.Start(); err != nil {
		t.Fatalf("start mosquitto: %v", err)
	}
	t.Cleanup(func() { b.cmd.Process.Signal(syscall.SIGTERM); b.cmd.Wait() })
	if err := mqtttest.WaitListening(b.Addr, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	return b
}

// jitter returns a random duration in [lo, hi).
func jitter(rng *rand.Rand, lo, hi time.Duration) time.Duration {
	return lo + time.Duration(rng.Int64N(int64(hi-lo)))
}

// streamLastSeq returns each stream's last assigned sequence number from
// the outbox (streams.last_seq), which survives delivery.
func streamLastSeq(t *testing.T, path string) map[string]int64 {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT name, last_seq FROM streams`)
	if err != nil {
		t.Fatalf("read streams: %v", err)
	}
	defer rows.Close()
	last := map[string]int64{}
	for rows.Next() {
		var name string
		var seq int64
		if err := rows.Scan(&name, &seq); err != nil {
			t.Fatal(err)
		}
		last[name] = seq
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return last
}

// auditLast returns each stream's last received sequence number and missing
// count from collect's per-stream AUDIT lines (key=value fields).
func auditLast(text string) (last, missing map[string]int64) {
	last, missing = map[string]int64{}, map[string]int64{}
	for _, l := range strings.Split(text, "\n") {
		if !strings.HasPrefix(l, "AUDIT gateway=") {
			continue
		}
		kv := map[string]string{}
		for _, f := range strings.Fields(l) {
			if k, v, ok := strings.Cut(f, "="); ok {
				kv[k] = v
			}
		}
		name := kv["stream"]
		last[name], _ = strconv.ParseInt(kv["last"], 10, 64)
		missing[name], _ = strconv.ParseInt(kv["missing"], 10, 64)
	}
	return last, missing
}

// unreportedTails compares the outbox's last sequence number per stream with
// the audit's last received one and describes every stream whose tail was
// lost without the audit counting it.
func unreportedTails(t *testing.T, dbPath, audit string) (lost int64, detail []string) {
	t.Helper()
	got, _ := auditLast(audit)
	for name, want := range streamLastSeq(t, dbPath) {
		if have := got[name]; have < want {
			lost += want - have
			detail = append(detail, fmt.Sprintf("%s: outbox last_seq=%d, collector last=%d (%d lost after the last one received)", name, want, have, want-have))
		}
	}
	return lost, detail
}

// logCount counts occurrences of s in the gateway's output so far.
func (r *faultRig) logCount(s string) int { return strings.Count(r.gwLog.String(), s) }

// lastLogLine returns the last line of the gateway's output containing s.
func (r *faultRig) lastLogLine(s string) string {
	lines := strings.Split(r.gwLog.String(), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], s) {
			return lines[i]
		}
	}
	return ""
}

// fileSize returns the size of path, 0 if it does not exist.
func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// mountTmpfs mounts a tmpfs of size bytes on a new directory for the test,
// or skips the test when mounting is not permitted (not root, no
// CAP_SYS_ADMIN).
func mountTmpfs(t *testing.T, size int64) string {
	t.Helper()
	dir := t.TempDir()
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+strconv.FormatInt(size, 10), "tmpfs", dir).CombinedOutput()
	if err != nil {
		t.Skipf("cannot mount a small tmpfs for the full-filesystem case (needs root): %v %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Logf("umount %s: %v %s", dir, err, out)
		}
	})
	return dir
}
