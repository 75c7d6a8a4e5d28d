package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/shelfgate/shelfgate/gateway/modelsync"
	"github.com/shelfgate/shelfgate/gateway/mqtttest"
)

const pushConfig = `
gateway: {id: %s, site: site-push}
broker:
  urls: [%q]
  keepalive: 2s
outbox: {path: %q, commit_interval: 5ms}
uplink: {flush_timeout: 10s}
models:
  trusted_keys: [%q]
  bundled_model: %q
  quiet: 1s
simulation:
  warehouse: {seed: %d, shelves: 1, bins_per_shelf: 2, sample_rate: 10, speed: 2}
log: {level: warn}
`

// TestPushCommandRollsOutToRunningGateways runs three shelfgate processes
// (the real run wiring) and `shelfctl push`: a newer model is promoted
// everywhere (exit 0, a table of promoted rows, plain progress lines when
// stdout is not a terminal); pushing an older one exits 1 with each
// gateway rejected for rollback.
func TestPushCommandRollsOutToRunningGateways(t *testing.T) {
	if testing.Short() {
		t.Skip("builds binaries")
	}
	m := mqtttest.StartMosquitto(t)
	gwBin, ctlBin := binaries(t)
	dir := t.TempDir()
	keys := newMSKeys(t)
	privPEM, err := modelsync.MarshalPrivateKeyPEM(keys.priv)
	if err != nil {
		t.Fatal(err)
	}
	keyPath := filepath.Join(dir, "signer")
	if err := os.WriteFile(keyPath, privPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	bundled := writeFile(t, msModel(t, 1, 16<<10, keys.priv))
	ids := []string{"gw-a", "gw-b", "gw-c"}
	for i, id := range ids {
		gdir := filepath.Join(dir, id)
		if err := os.Mkdir(gdir, 0o755); err != nil {
			t.Fatal(err)
		}
		cfg := filepath.Join(gdir, "shelfgate.yaml")
		if err := os.WriteFile(cfg, fmt.Appendf(nil, pushConfig, id, m.URL, filepath.Join(gdir, "outbox.db"), keys.pubPath, bundled, i+1), 0o600); err != nil {
			t.Fatal(err)
		}
		var log lockedBuffer
		cmd := exec.Command(gwBin, "run", "--config", cfg)
		cmd.Stdout, cmd.Stderr = &log, &log
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			cmd.Process.Signal(os.Interrupt)
			cmd.Wait()
			if t.Failed() {
				t.Logf("%s log:\n%s", id, log.String())
			}
		})
	}
	push := func(v uint64, size int) (string, int) {
		model := writeFile(t, msModel(t, v, size, keys.other)) // push re-signs with --key
		args := []string{"push", "--broker", m.URL, "--site", "site-push", "--canary", "1", "--idle", "15s", "--key", keyPath}
		for _, id := range ids {
			args = append(args, "--gateway", id)
		}
		var out bytes.Buffer
		cmd := exec.Command(ctlBin, append(args, model)...)
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatal(err)
		}
		return out.String(), cmd.ProcessState.ExitCode()
	}
	time.Sleep(2 * time.Second) // gateways connect and subscribe
	out, code := push(2, 1<<20)
	t.Logf("push v2:\n%s", out)
	row := regexp.MustCompile(`(?m)^gw-. +(\S+) +\d+/\d+ +\d+ +[-0-9.]+ `)
	outcomes := func(out string) (o []string) {
		for _, m := range row.FindAllStringSubmatch(out, -1) {
			o = append(o, m[1])
		}
		return o
	}
	if got := outcomes(out); code != 0 || strings.Join(got, ",") != "promoted,promoted,promoted" {
		t.Fatalf("push v2: exit %d\n%s", code, out)
	}
	if !strings.Contains(out, "blocks") || strings.Contains(out, "\x1b[") {
		t.Errorf("want plain progress lines without escape codes:\n%s", out)
	}
	out, code = push(1, 16<<10)
	t.Logf("push v1:\n%s", out)
	if got := outcomes(out); code != 1 || strings.Join(got, ",") != "rejected,not-offered,not-offered" || !strings.Contains(out, "rollback: manifest: version 1") {
		t.Fatalf("push v1: exit %d, want 1 with the canary rejected for rollback\n%s", code, out)
	}
}
