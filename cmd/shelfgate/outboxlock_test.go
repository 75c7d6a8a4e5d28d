package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// One gateway per outbox: a second claim fails while the first holds the
// lock; the gateway id is recorded on the first start; another id is
// refused unless it adopts the outbox, which records the new id.
func TestClaimOutbox(t *testing.T) {
	path := filepath.Join(t.TempDir(), "outbox.db")
	first, adopted, err := claimOutbox(path, "gw-1", false)
	if err != nil || adopted != "" {
		t.Fatalf("first claim: %v %q", err, adopted)
	}
	if id, _ := os.ReadFile(path + ".gateway"); string(id) != "gw-1\n" {
		t.Fatalf("recorded id %q", id)
	}
	if _, _, err := claimOutbox(path, "gw-1", false); !errors.Is(err, errOutboxInUse) || !strings.Contains(err.Error(), "pid ") {
		t.Fatalf("second claim while the first holds it: %v", err)
	}
	first.release()
	c, _, err := claimOutbox(path, "gw-1", false)
	if err != nil {
		t.Fatalf("claim after release: %v", err)
	}
	c.release()
	_, _, err = claimOutbox(path, "gw-2", false)
	if !errors.Is(err, errOutboxOtherGateway) || !strings.Contains(err.Error(), `gateway "gw-1"`) || !strings.Contains(err.Error(), "--adopt-outbox") {
		t.Fatalf("other gateway: %v", err)
	}
	c, adopted, err = claimOutbox(path, "gw-2", true)
	if err != nil || adopted != "gw-1" {
		t.Fatalf("adopt: %v %q", err, adopted)
	}
	c.release()
	if id, _ := os.ReadFile(path + ".gateway"); string(id) != "gw-2\n" {
		t.Fatalf("recorded id after adopting %q", id)
	}
}

// Through run: an outbox left by gateway gw-1 is refused to gw-2 before
// anything is delivered, and taken over with --adopt-outbox.
func TestRunRefusesAnotherGatewaysOutbox(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "o.db")
	conf := func(id string) string {
		p := filepath.Join(dir, id+".yaml")
		os.WriteFile(p, []byte(`gateway: {id: `+id+`, site: s1}
broker: {urls: [embedded], embedded_addr: "127.0.0.1:0"}
outbox: {path: `+db+`}
uplink: {flush_timeout: 1s}
simulation:
  warehouse: {shelves: 1, bins_per_shelf: 1}
`), 0o644)
		return p
	}
	run := func(args ...string) (int, string) {
		var out, errOut bytes.Buffer
		code := Main(append([]string{"run", "--duration", "300ms"}, args...), &out, &errOut)
		return code, errOut.String()
	}
	if code, log := run("--config", conf("gw-1")); code != 0 {
		t.Fatalf("gw-1: exit %d\n%s", code, log)
	}
	code, log := run("--config", conf("gw-2"))
	if code != 1 || !strings.Contains(log, `holds the backlog of gateway \"gw-1\"`) || !strings.Contains(log, "--adopt-outbox") {
		t.Fatalf("gw-2 on gw-1's outbox: exit %d\n%s", code, log)
	}
	if code, log := run("--config", conf("gw-2"), "--adopt-outbox"); code != 0 || !strings.Contains(log, "previous_gateway=gw-1") {
		t.Fatalf("gw-2 adopting: exit %d\n%s", code, log)
	}
	if id, _ := os.ReadFile(db + ".gateway"); string(id) != "gw-2\n" {
		t.Fatalf("recorded id %q", id)
	}
}
