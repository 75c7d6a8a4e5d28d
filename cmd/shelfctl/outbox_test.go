package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shelfgate/shelfgate/gateway"
	"github.com/shelfgate/shelfgate/gateway/outbox"
)

func writeOutbox(t *testing.T, path string, n int) *outbox.Outbox {
	t.Helper()
	o, err := outbox.Open(path, outbox.Options{ReserveBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	recs := make([]gateway.Record, n)
	for i := range recs {
		recs[i] = gateway.Record{Stream: "loadcell/a", Class: gateway.ClassTelemetry, Time: time.UnixMicro(int64(i + 1)), Value: float64(i)}
	}
	if err := o.Append(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	return o
}

func TestOutboxInspectWhileRunning(t *testing.T) {
	path := filepath.Join(t.TempDir(), "outbox.db")
	o := writeOutbox(t, path, 300)
	defer o.Close()
	// The gateway is running: rows sit in the WAL, not yet checkpointed.
	before, _ := os.ReadFile(path)
	var out, errOut bytes.Buffer
	if code := Main(context.Background(), []string{"outbox", "inspect", path}, nil, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	for _, want := range []string{"integrity   ok", "backlog     300 rows", "loadcell/a", "1-300", "high-water 300"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("inspect output lacks %q:\n%s", want, out.String())
		}
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) {
		t.Error("inspect changed the database file")
	}
	// The running outbox goes on.
	if err := o.Append(context.Background(), []gateway.Record{{Stream: "loadcell/a", Time: time.Now()}}); err != nil {
		t.Fatal(err)
	}
}

func TestOutboxSalvageRequeues(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "old.db")
	o := writeOutbox(t, src, 2000)
	o.Close()
	// Damage one page in the middle.
	f, _ := os.OpenFile(src, os.O_RDWR, 0)
	fi, _ := f.Stat()
	f.WriteAt(bytes.Repeat([]byte{0x5a}, 64), (fi.Size()/4096/2)*4096)
	f.Close()
	dst := filepath.Join(dir, "outbox.db")
	var out, errOut bytes.Buffer
	if code := Main(context.Background(), []string{"outbox", "salvage", "--into", dst, src}, nil, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s\n%s", code, errOut.String(), out.String())
	}
	if !strings.Contains(out.String(), "re-queued") || !strings.Contains(out.String(), "unreadable  ids") {
		t.Fatalf("salvage output:\n%s", out.String())
	}
	out.Reset()
	if code := Main(context.Background(), []string{"outbox", "salvage", "--into", dst, src}, nil, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "already salvaged") {
		t.Fatalf("second salvage: exit %d, %s", code, errOut.String())
	}
	if code := Main(context.Background(), []string{"outbox", "salvage", src}, nil, &out, &errOut); code != 2 {
		t.Fatalf("salvage without --into: exit %d", code)
	}
}
