package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	_ "github.com/mattn/go-sqlite3"

	"github.com/shelfgate/shelfgate/gateway/mqtttest"
)

// buildBinaries builds shelfgate and shelfctl once per test binary.
var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

func binaries(t *testing.T) (gw, ctl string) {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "shelfgate-e2e-bin")
		if buildErr != nil {
			return
		}
		root := mqtttest.ModuleRoot(t)
		for _, cmd := range []string{"shelfgate", "shelfctl"} {
			out, err := exec.Command("go", "build", "-o", filepath.Join(binDir, cmd), filepath.Join(root, "cmd", cmd)).CombinedOutput()
			if err != nil {
				buildErr = fmt.Errorf("go build %s: %v\n%s", cmd, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(binDir, "shelfgate"), filepath.Join(binDir, "shelfctl")
}

const e2eConfig = `
gateway: {id: gw-e2e, site: site-e2e}
broker:
  urls: [%q]
  keepalive: 2s
outbox: {path: %q, commit_interval: 5ms}
uplink: {flush_timeout: 20s, batch_records: 500}
simulation:
  warehouse:
    seed: 7
    shelves: 2
    bins_per_shelf: 4
    sample_rate: 80
    speed: 4
    noise_grams: 0.5
    drift_grams_per_hour: 2
    picks_per_bin_per_hour: 200
    max_units_per_pick: 3
    put_probability: 0.3
metrics: {listen: %q}
log: {level: warn}
`

// TestEndToEndSurvivesKill9 runs the gateway on a simulated warehouse against
// a real mosquitto, SIGKILLs it three times mid-run, restarts it, stops it
// cleanly, and checks with `shelfctl collect`'s audit that every sequence
// number of every stream arrived, duplicates only under their first id.
func TestEndToEndSurvivesKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test builds binaries and runs for ~30s")
	}
	m := mqtttest.StartMosquitto(t)
	gwBin, ctlBin := binaries(t)
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "outbox.db")
	cfgPath := filepath.Join(dir, "shelfgate.yaml")
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", mqtttest.FreePort(t))
	if err := os.WriteFile(cfgPath, fmt.Appendf(nil, e2eConfig, m.URL, dbPath, metricsAddr), 0o600); err != nil {
		t.Fatal(err)
	}

	// The retained status must show the LWT after a SIGKILL.
	statuses := make(chan map[string]any, 64)
	sub := paho.NewClient(paho.NewClientOptions().AddBroker(m.URL).SetClientID("e2e-status"))
	if tok := sub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer sub.Disconnect(0)
	sub.Subscribe("shelfgate/v1/site-e2e/gw-e2e/status", 1, func(_ paho.Client, msg paho.Message) {
		var s map[string]any
		json.Unmarshal(msg.Payload(), &s)
		statuses <- s
	}).Wait()

	// The collector runs throughout with a persistent session.
	out := filepath.Join(dir, "collected.jsonl")
	var auditOut, collectErr lockedBuffer
	collector := exec.Command(ctlBin, "collect", "--broker", m.URL, "--out", out, "--client-id", "e2e-collector", "--site", "site-e2e", "--from-start") // there from the first reading: audit from 1
	collector.Stdout, collector.Stderr = &auditOut, &collectErr
	if err := collector.Start(); err != nil {
		t.Fatal(err)
	}
	defer collector.Process.Kill()
	waitUntil(t, "collector subscribed", 15*time.Second, func() bool { return strings.Contains(collectErr.String(), "subscribed") })

	rng := rand.New(rand.NewPCG(1, 1))
	var gwLog lockedBuffer
	startGateway := func() *exec.Cmd {
		cmd := exec.Command(gwBin, "run", "--config", cfgPath)
		cmd.Stdout, cmd.Stderr = &gwLog, &gwLog
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	for i := range 3 {
		cmd := startGateway()
		time.Sleep(time.Duration(1500+rng.IntN(2000)) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		if i == 0 {
			waitStatus(t, statuses, func(s map[string]any) bool { return s["state"] == "offline" && s["reason"] == nil }, "LWT offline after SIGKILL")
		}
	}
	cmd := startGateway()
	time.Sleep(3 * time.Second)
	// The metrics endpoint reports the connected uplink and the counters.
	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"shelfgate_uplink_connected 1", "shelfgate_readings_committed_total "} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("gateway after SIGTERM: %v\n%s", err, gwLog.String())
	}
	waitStatus(t, statuses, func(s map[string]any) bool { return s["state"] == "offline" && s["reason"] == "shutdown" }, "clean offline status")

	// Every id the outbox ever assigned must reach the collector.
	total, backlog := outboxTotals(t, dbPath)
	if backlog != 0 {
		t.Fatalf("clean shutdown left %d rows undelivered\n%s", backlog, gwLog.String())
	}
	if total < 1000 {
		t.Fatalf("only %d readings produced", total)
	}
	deadline := time.Now().Add(30 * time.Second)
	for countLines(t, out) < total && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	// Stop the collector either way: its audit says what is missing.
	collector.Process.Signal(syscall.SIGINT)
	err = collector.Wait()
	audit := auditOut.String()
	t.Logf("audit:\n%s", audit)
	if err != nil {
		t.Fatalf("collect exited with %v\n%s\n%s", err, audit, collectErr.String())
	}
	if !strings.Contains(audit, "missing=0 shed=0 rejected=0 result=OK") || !strings.Contains(audit, "conflicts=0") {
		t.Fatalf("audit not clean:\n%s", audit)
	}
	if n := countLines(t, out); n != total {
		t.Fatalf("collected %d unique records, outbox assigned %d ids", n, total)
	}
	if got := strings.Count(audit, "stream=loadcell/"); got != 8 {
		t.Errorf("audit covers %d load-cell streams, want 8", got)
	}
}

// lockedBuffer is a bytes.Buffer safe to read while a child process writes it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func waitStatus(t *testing.T, ch <-chan map[string]any, ok func(map[string]any) bool, what string) {
	t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		select {
		case s := <-ch:
			if ok(s) {
				return
			}
		case <-deadline:
			t.Fatalf("no %s within 15s", what)
		}
	}
}

func waitUntil(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// outboxTotals returns the highest id ever assigned and the rows left.
func outboxTotals(t *testing.T, path string) (total, backlog int) {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.QueryRowContext(context.Background(), `SELECT seq FROM sqlite_sequence WHERE name = 'outbox'`).Scan(&total); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(`SELECT count(*) FROM outbox`).Scan(&backlog); err != nil {
		t.Fatal(err)
	}
	return total, backlog
}

func countLines(t *testing.T, path string) int {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		n++
	}
	return n
}
