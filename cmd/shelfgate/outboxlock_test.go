package main

import (
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
