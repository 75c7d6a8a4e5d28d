package handoff

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

var errStopped = errors.New("stopped")

func TestAskBeforeStartIsRefused(t *testing.T) {
	var r Requests
	if err := r.Ask(context.Background(), errStopped, nil); !errors.Is(err, errStopped) {
		t.Fatalf("Ask = %v, want the not-running error", err)
	}
}

// TestServeAnswersEveryWaiter: requests made together are served by one
// attempt and all get its answer; a stop answers what is still waiting.
func TestServeAnswersEveryWaiter(t *testing.T) {
	var r Requests
	r.Start()
	boom := errors.New("boom")
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for range 3 {
		wg.Go(func() { errs <- r.Ask(context.Background(), errStopped, nil) })
	}
	for !waiting(&r, 3) {
		time.Sleep(time.Millisecond)
	}
	select {
	case <-r.Kick():
	default:
		t.Fatal("no kick for the owner")
	}
	calls := 0
	r.Serve(func() error { calls++; return boom })
	wg.Wait()
	close(errs)
	for err := range errs {
		if !errors.Is(err, boom) {
			t.Errorf("answer %v, want boom", err)
		}
	}
	r.Serve(func() error { calls++; return nil })
	if calls != 1 || r.Pending() {
		t.Errorf("do ran %d times (want 1: nothing waited the second time), pending %v", calls, r.Pending())
	}

	done := make(chan error, 1)
	go func() { done <- r.Ask(context.Background(), errStopped, func() {}) }()
	for !waiting(&r, 1) {
		time.Sleep(time.Millisecond)
	}
	r.Stop(errStopped)
	if err := <-done; !errors.Is(err, errStopped) {
		t.Errorf("after Stop: %v", err)
	}
}

func TestAskEndsWithContext(t *testing.T) {
	var r Requests
	r.Start()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := r.Ask(ctx, errStopped, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Ask = %v, want the deadline", err)
	}
}

func waiting(r *Requests, n int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.waiters) == n
}
