package uplink

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/shelfgate/shelfgate/gateway"
	"github.com/shelfgate/shelfgate/gateway/outbox"
)

// ackingClient is a paho client whose every publish is acknowledged before
// Publish returns, as when PUBACKs come back faster than the lane runs.
type ackingClient struct {
	paho.Client // nil: a lane calls only Publish
	published   atomic.Int64
}

func (c *ackingClient) Publish(string, byte, bool, any) paho.Token {
	c.published.Add(1)
	return doneToken{} // completed, no error: acked
}

// TestLaneDrainsAStoredBacklogWithoutWaking: a backlog already stored (a
// replay after an outage: no new rows, so no wake) is sent window after
// window as the PUBACKs come, not one window per poll tick. The lane here
// is never woken and its poll tick never comes: before the fix it sent one
// window and waited for good.
func TestLaneDrainsAStoredBacklogWithoutWaking(t *testing.T) {
	for _, window := range []int{1, 2, 4} {
		t.Run(fmt.Sprintf("window=%d", window), func(t *testing.T) {
			ob, err := outbox.Open(filepath.Join(t.TempDir(), "outbox.db"), outbox.DefaultOptions)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { ob.Close() })
			const batches, per = 12, 10
			produce(t, ob, batches, per, 0)
			u, err := New(ob, Options{Brokers: []string{"tcp://127.0.0.1:1"}, Topics: topics, BatchRecords: per, Window: window})
			if err != nil {
				t.Fatal(err)
			}
			c := &ackingClient{}
			l := u.newLane(c, gateway.ClassTelemetry, make(chan struct{}))
			l.pollEvery = time.Hour
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- l.run(ctx) }()
			deadline := time.Now().Add(20 * time.Second)
			for ob.Backlog() > 0 && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			cancel()
			if err := <-done; err != nil {
				t.Fatalf("lane: %v", err)
			}
			if n := ob.Backlog(); n != 0 {
				t.Fatalf("%d of %d rows left after %d messages: the lane waited for a wake with its window empty", n, batches*per, c.published.Load())
			}
			if got := c.published.Load(); got != batches {
				t.Errorf("%d messages for %d batches of %d", got, batches, per)
			}
		})
	}
}
