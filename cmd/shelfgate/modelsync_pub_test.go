package main

import (
	"context"
	"crypto/ed25519"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/shelfgate/shelfgate/gateway/config"
	"github.com/shelfgate/shelfgate/gateway/downlink"
	"github.com/shelfgate/shelfgate/gateway/modelsync"
	"github.com/shelfgate/shelfgate/gateway/uplink"
)

// fakeModelUplink records publishes; connected and connects are set by the test.
type fakeModelUplink struct {
	mu        sync.Mutex
	connected bool
	connects  int64
	sent      []string // "topic retained? payload"
}

var _ modelUplink = (*fakeModelUplink)(nil)

func (f *fakeModelUplink) pub(topic string, p []byte, retained bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.connected {
		return uplink.ErrNotConnected
	}
	r := ""
	if retained {
		r = " retained"
	}
	f.sent = append(f.sent, topic[strings.LastIndex(topic, "/")+1:]+r+" "+string(p))
	return nil
}
func (f *fakeModelUplink) Publish(t string, p []byte) error         { return f.pub(t, p, false) }
func (f *fakeModelUplink) PublishRetained(t string, p []byte) error { return f.pub(t, p, true) }
func (f *fakeModelUplink) Stats() uplink.Stats {
	f.mu.Lock()
	defer f.mu.Unlock()
	return uplink.Stats{Connected: f.connected, Connects: f.connects}
}

func (f *fakeModelUplink) session(on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.connected = on
	if on {
		f.connects++
	}
}

func (f *fakeModelUplink) take() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.sent
	f.sent = nil
	return s
}

// TestModelPublisherKeepsWhatWaits: requests and the status made while
// disconnected are published, in order, when a session exists; the
// retained status is published again on every new session; a full queue
// drops the oldest request.
func TestModelPublisherKeepsWhatWaits(t *testing.T) {
	ctx := context.Background()
	up := &fakeModelUplink{}
	p := newModelPublisher(up, modelsync.Topics{Site: "s", Gateway: "g"}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	p.RequestBlocks(ctx, modelsync.Request{Name: "m", Version: 2, Blocks: []int{0, 1}})
	p.PublishStatus(ctx, modelsync.Status{State: modelsync.StateTransferring})
	if got := up.take(); len(got) != 0 {
		t.Fatalf("published while disconnected: %v", got)
	}
	up.session(true)
	p.mu.Lock()
	p.flushLocked()
	p.mu.Unlock()
	got := up.take()
	if len(got) != 2 || !strings.HasPrefix(got[0], `status retained {"state":"transferring"`) || got[1] != `request {"name":"m","version":2,"blocks":[0,1],"round":0}` {
		t.Fatalf("after connect: %q", got)
	}
	p.mu.Lock()
	p.flushLocked()
	p.mu.Unlock()
	if got := up.take(); len(got) != 0 {
		t.Fatalf("published again in the same session: %q", got)
	}
	up.session(false)
	up.session(true) // a new session: the retained status again
	p.mu.Lock()
	p.flushLocked()
	p.mu.Unlock()
	if got := up.take(); len(got) != 1 || !strings.HasPrefix(got[0], "status retained") {
		t.Fatalf("new session: %q", got)
	}
	up.session(false)
	for i := range maxQueuedRequest + 3 {
		p.RequestBlocks(ctx, modelsync.Request{Name: "m", Version: 2, Blocks: []int{i}})
	}
	if p.dropped != 3 {
		t.Fatalf("dropped %d, want 3", p.dropped)
	}
	up.session(true)
	p.mu.Lock()
	p.flushLocked()
	p.mu.Unlock()
	got = up.take()
	if len(got) != 1+maxQueuedRequest || !strings.Contains(got[1], `"blocks":[3]`) {
		t.Fatalf("after reconnect: %d messages, first request %q", len(got), got[1])
	}
}

// TestStartModelSyncRefusesAnUntrustedBundledModel: a bundled model not
// signed by a trusted key stops the start with the field named; a trusted
// one becomes active, in the directory beside the outbox by default.
func TestStartModelSyncRefusesAnUntrustedBundledModel(t *testing.T) {
	keys := newMSKeys(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, tc := range []struct {
		name string
		key  ed25519.PrivateKey
		want string
	}{{"untrusted", keys.other, "models.bundled_model"}, {"trusted", keys.priv, ""}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := &config.Config{Gateway: config.Gateway{ID: "g", Site: "s"}, Outbox: config.Outbox{Path: filepath.Join(dir, "outbox.db")},
				Models: config.ModelSync{TrustedKeys: []string{keys.pubPath}, BundledModel: writeFile(t, msModel(t, 1, 8<<10, tc.key))}}
			_, stop, err := startModelSync(context.Background(), cfg, downlink.New(log), &fakeModelUplink{}, nil, nil, nil, log)
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("err %v, want one naming %s", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			stop()
			if _, err := os.Stat(filepath.Join(dir, "models", modelsync.ActiveFile)); err != nil {
				t.Fatal(err)
			}
		})
	}
}
