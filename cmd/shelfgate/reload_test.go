package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shelfgate/shelfgate/gateway"
)

const daemonConfig = `gateway: {id: %s, site: s1}
broker: {urls: [embedded], embedded_addr: "127.0.0.1:0"}
outbox: {path: %q}
uplink: {window: %d, flush_timeout: 1s}
simulation:
  warehouse: {shelves: 1, bins_per_shelf: 2, sample_rate: 80}
log: {level: %s, format: json}
`

// jsonLog collects a process's JSON log lines and lets a test wait for one.
type jsonLog struct {
	mu    sync.Mutex
	lines []map[string]any
	raw   bytes.Buffer
	cond  chan struct{}
}

func newJSONLog(r io.Reader) *jsonLog {
	l := &jsonLog{cond: make(chan struct{}, 1)}
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			var m map[string]any
			l.mu.Lock()
			l.raw.WriteString(sc.Text() + "\n")
			if json.Unmarshal(sc.Bytes(), &m) == nil {
				l.lines = append(l.lines, m)
			}
			l.mu.Unlock()
			select {
			case l.cond <- struct{}{}:
			default:
			}
		}
	}()
	return l
}

// wait returns the first line from index from on for which ok holds, and
// its index.
func (l *jsonLog) wait(t *testing.T, from int, what string, ok func(map[string]any) bool) (map[string]any, int) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		l.mu.Lock()
		for i := from; i < len(l.lines); i++ {
			if ok(l.lines[i]) {
				m := l.lines[i]
				l.mu.Unlock()
				return m, i
			}
		}
		l.mu.Unlock()
		select {
		case <-l.cond:
		case <-time.After(100 * time.Millisecond):
		case <-deadline:
			l.mu.Lock()
			defer l.mu.Unlock()
			t.Fatalf("no log line: %s\nlog:\n%s", what, l.raw.String())
		}
	}
}

func msgIs(msg string) func(map[string]any) bool {
	return func(m map[string]any) bool { return m["msg"] == msg }
}

// TestDaemonReloadLockNotify runs the built binary under a fake systemd
// (NOTIFY_SOCKET, WATCHDOG_USEC) and checks: READY=1 comes once the first
// reading is committed; WATCHDOG=1 pings follow while it runs; a second
// instance on the same outbox is refused while the first runs; SIGHUP
// applies a new log level live and names what needs a restart; a broken
// file is refused at ERROR with its errors and the gateway keeps running;
// SIGTERM sends STOPPING=1 and exits 0; durations in the JSON log are
// strings.
func TestDaemonReloadLockNotify(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the daemon")
	}
	gw, _ := binaries(t)
	dir := t.TempDir()
	cfgPath, dbPath := filepath.Join(dir, "shelfgate.yaml"), filepath.Join(dir, "outbox.db")
	write := func(s string) {
		if err := os.WriteFile(cfgPath, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(fmt.Sprintf(daemonConfig, "gw-1", dbPath, 32, "info"))

	sockPath := filepath.Join(dir, "notify.sock")
	sock, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sockPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	notes := make(chan string, 10000)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := sock.Read(buf)
			if err != nil {
				close(notes)
				return
			}
			notes <- string(buf[:n])
		}
	}()

	cmd := exec.Command(gw, "run", "--config", cfgPath)
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sockPath, "WATCHDOG_USEC=400000")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	log := newJSONLog(stderr)

	next := func(want string) {
		t.Helper()
		select {
		case n := <-notes:
			if n != want {
				t.Fatalf("notification %q, want %q", n, want)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("no %s notification", want)
		}
	}
	next("READY=1")
	if _, err := os.Stat(dbPath); err != nil {
		t.Fatalf("READY=1 before the outbox exists: %v", err)
	}
	next("WATCHDOG=1")
	next("WATCHDOG=1")

	// A second instance on the same outbox is refused, in the configured
	// (JSON) format, and leaves the first running.
	var out2 bytes.Buffer
	second := exec.Command(gw, "run", "--config", cfgPath)
	second.Stderr = &out2
	if err := second.Run(); err == nil || !strings.Contains(out2.String(), `"level":"ERROR","msg":"fatal"`) || !strings.Contains(out2.String(), "locked by another shelfgate process") {
		t.Fatalf("second instance: %v\n%s", err, out2.String())
	}

	// SIGHUP with a new log level, window and flush timeout: the level and
	// the window apply live, the flush timeout needs a restart.
	write(strings.Replace(fmt.Sprintf(daemonConfig, "gw-1", dbPath, 64, "debug"), "flush_timeout: 1s", "flush_timeout: 2s", 1))
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	m, i := log.wait(t, 0, "reload applied", msgIs("reload: applied"))
	if fmt.Sprint(m["fields"]) != "[log.level uplink.window]" {
		t.Errorf("applied %v", m["fields"])
	}
	m, i = log.wait(t, i, "reload restart", msgIs("reload: these changes take effect only after a restart (systemctl restart shelfgate)"))
	if fmt.Sprint(m["fields"]) != "[uplink.flush_timeout]" {
		t.Errorf("restart %v", m["fields"])
	}
	// Debug logs now appear: the level applied for real.
	log.wait(t, i, "a debug line after the reload", func(m map[string]any) bool { return m["level"] == "DEBUG" })

	// A broken file is refused; the gateway keeps running the old one.
	write(fmt.Sprintf(daemonConfig, "gw/1", dbPath, 5000, "debug"))
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	m, i = log.wait(t, i, "reload refused", msgIs("reload refused: the new configuration has errors; still running the previous one"))
	if m["level"] != "ERROR" || !strings.Contains(fmt.Sprint(m["errors"]), "gateway.id") || !strings.Contains(fmt.Sprint(m["errors"]), "uplink.window") {
		t.Errorf("refusal %v", m)
	}
	next("WATCHDOG=1") // still committing

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(20 * time.Second)
	for stopping := false; !stopping; {
		select {
		case n := <-notes:
			stopping = n == "STOPPING=1"
			if !stopping && n != "WATCHDOG=1" {
				t.Fatalf("notification %q while stopping", n)
			}
		case <-deadline:
			t.Fatal("no STOPPING=1")
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit: %v\n%s", err, log.raw.String())
	}
	m, _ = log.wait(t, i, "stopped", msgIs("stopped"))
	if s, ok := m["uptime"].(string); !ok || !strings.HasSuffix(s, "s") {
		t.Errorf("uptime %#v is not a duration string", m["uptime"])
	}
}

// The watchdog pings only while the pipeline commits; a gateway of
// event-driven sensors is healthy idle, but not with readings stuck.
func TestWatchdogProgress(t *testing.T) {
	var c gateway.Counters
	log := slog.New(slog.DiscardHandler)
	p := progress(func() gateway.Counters { return c }, true, log)
	if p() {
		t.Error("sampling, nothing committed: progressed")
	}
	c.Produced, c.Accepted = 10, 10
	if !p() {
		t.Error("sampling, committed: no progress")
	}
	c.Produced = 20
	if p() {
		t.Error("sampling, produced but not committed: progressed")
	}
	c = gateway.Counters{}
	e := progress(func() gateway.Counters { return c }, false, log)
	if !e() {
		t.Error("event-driven idle: no progress")
	}
	c.Produced = 1
	if e() {
		t.Error("event-driven with a reading stuck: progressed")
	}
	c.Accepted = 1
	if !e() {
		t.Error("event-driven after the commit: no progress")
	}
	c.Events++
	if !e() {
		t.Error("event committed: no progress")
	}
}

// In-process: run reloads on the signal channel too, and a config with no
// load cells (a scanner whose device is missing) runs, logging the
// scanner's retries.
func TestScannerOnlyRunsAndLogsRetries(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "c.yaml")
	os.WriteFile(cfgPath, []byte(fmt.Sprintf(`gateway: {id: gw-1, site: s1}
broker: {urls: [embedded], embedded_addr: "127.0.0.1:0"}
outbox: {path: %q}
uplink: {flush_timeout: 1s}
sensors:
  - {name: scan, type: scanner, port: %q}
log: {level: debug}
`, filepath.Join(dir, "o.db"), filepath.Join(dir, "ttyACM-missing"))), 0o644)
	sig := make(chan os.Signal, 1)
	var out, errOut bytes.Buffer
	done := make(chan int)
	go func() {
		done <- mainWith([]string{"run", "--config", cfgPath, "--duration", "2500ms"}, &out, &errOut, newHostCheck(), sig)
	}()
	time.Sleep(1200 * time.Millisecond)
	sig <- syscall.SIGHUP
	if code := <-done; code != 0 {
		t.Fatalf("exit %d\n%s", code, errOut.String())
	}
	for _, want := range []string{"msg=\"scanner unavailable; retrying until it is back\"", "sensor=scan", "retry_in=1s", "msg=\"scanner still unavailable\"", "attempt=2",
		"msg=\"SIGHUP: reloading the configuration\"", "msg=\"reload: the configuration is unchanged\""} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("log lacks %s:\n%s", want, errOut.String())
		}
	}
}
