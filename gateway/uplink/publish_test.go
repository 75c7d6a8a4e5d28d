package uplink

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/shelfgate/shelfgate/gateway"
	"github.com/shelfgate/shelfgate/gateway/outbox"
)

// stuckClient is a paho client whose Publish blocks until released, as
// paho's does for its whole write timeout when the connection dies while
// it hands the message to the writer.
type stuckClient struct {
	paho.Client // nil: a lane calls only Publish
	entered     chan struct{}
	release     chan struct{}
}

func (c *stuckClient) Publish(string, byte, bool, any) paho.Token {
	c.entered <- struct{}{}
	<-c.release
	return doneToken{errors.New("publish was broken by timeout")}
}

// TestLaneLetsGoOfAStuckPublish: a lane whose session ended returns while
// paho's Publish is still blocked (else the uplink reconnects only after
// the write timeout, 20 s), and Run's wait group still counts the call.
func TestLaneLetsGoOfAStuckPublish(t *testing.T) {
	ob, err := outbox.Open(filepath.Join(t.TempDir(), "outbox.db"), outbox.DefaultOptions)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ob.Close() })
	produce(t, ob, 1, 1, 1) // one event to send
	u, err := New(ob, Options{Brokers: []string{"tcp://127.0.0.1:1"}, Topics: topics})
	if err != nil {
		t.Fatal(err)
	}
	c := &stuckClient{entered: make(chan struct{}, 1), release: make(chan struct{})}
	released := false
	release := func() {
		if !released {
			released = true
			close(c.release)
		}
	}
	defer release()
	l := u.newLane(c, gateway.ClassEvent, make(chan struct{}))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- l.run(ctx) }()
	select {
	case <-c.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the lane did not publish its event")
	}
	cancel() // the session ends: the link died under the Publish
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("lane: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the lane waited for paho's blocked Publish after its session ended")
	}
	waited := make(chan struct{})
	go func() { u.publishing.Wait(); close(waited) }()
	select {
	case <-waited:
		t.Fatal("Run would not wait for the Publish still in progress")
	case <-time.After(50 * time.Millisecond):
	}
	release()
	select {
	case <-waited:
	case <-time.After(10 * time.Second):
		t.Fatal("the released Publish was not counted done")
	}
}

// TestPublishWhenTheSessionEnds: a command reply or model request whose
// session ends while paho's Publish is blocked returns ErrNotConnected at
// once (the caller keeps it for the next session), and between sessions
// Publish fails the same way.
func TestPublishWhenTheSessionEnds(t *testing.T) {
	ob, err := outbox.Open(filepath.Join(t.TempDir(), "outbox.db"), outbox.DefaultOptions)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ob.Close() })
	u, err := New(ob, Options{Brokers: []string{"tcp://127.0.0.1:1"}, Topics: topics})
	if err != nil {
		t.Fatal(err)
	}
	if err := u.Publish("t", nil); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("between sessions: %v, want ErrNotConnected", err)
	}
	c := &stuckClient{entered: make(chan struct{}, 1), release: make(chan struct{})}
	released := false
	defer func() {
		if !released {
			close(c.release)
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	u.live.Store(&live{c: c, ctx: ctx})
	done := make(chan error, 1)
	go func() { done <- u.PublishRetained("t", []byte("status")) }()
	<-c.entered
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, ErrNotConnected) {
			t.Fatalf("session ended under the publish: %v, want ErrNotConnected", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Publish waited for paho's blocked Publish after its session ended")
	}
	// A publish after the session ended does not reach paho at all.
	if err := u.Publish("t", nil); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("after the session ended: %v, want ErrNotConnected", err)
	}
	released = true
	close(c.release)
	u.publishing.Wait()
	if len(c.entered) != 0 {
		t.Fatal("a publish after the session ended was handed to paho")
	}
}

// TestPublishAfterRunReturned: a caller holding a session's client and a
// context that is not done (a command reply racing shutdown) publishes
// after Run returned. Nothing reaches paho and no call is counted that Run
// could no longer wait for.
func TestPublishAfterRunReturned(t *testing.T) {
	ob, err := outbox.Open(filepath.Join(t.TempDir(), "outbox.db"), outbox.DefaultOptions)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ob.Close() })
	u, err := New(ob, Options{Brokers: []string{"tcp://127.0.0.1:1"}, Topics: topics})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := u.Run(ctx); err != nil {
		t.Fatalf("Run: %v", err)
	}
	c := &ackingClient{}
	tok := u.publish(context.Background(), c, "t", false, nil)
	if n := c.published.Load(); n != 0 {
		t.Fatal("a publish after Run returned was handed to paho")
	}
	if !isDone(tok) || !errors.Is(tok.Error(), ErrNotConnected) {
		t.Fatalf("publish after Run returned: done %v, err %v; want done with ErrNotConnected", isDone(tok), tok.Error())
	}
}
