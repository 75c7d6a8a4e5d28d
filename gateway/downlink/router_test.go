package downlink

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestMatch(t *testing.T) {
	for _, tc := range []struct {
		filter, topic string
		want          bool
	}{
		{"a/b/c", "a/b/c", true},
		{"a/b/c", "a/b", false},
		{"a/b", "a/b/c", false},
		{"a/+/c", "a/x/c", true},
		{"a/+/c", "a/x/y/c", false},
		{"a/+", "a/", true},
		{"a/#", "a", true},
		{"a/#", "a/b/c", true},
		{"#", "a/b", true},
		{"+/b", "$SYS/b", false},
		{"#", "$SYS/x", false},
		{"shelfgate/v1/s/g/cmd/+", "shelfgate/v1/s/g/cmd/ping", true},
		{"shelfgate/v1/s/g/cmd/+", "shelfgate/v1/s/g/cmd/ping/reply", false},
	} {
		if got := Match(tc.filter, tc.topic); got != tc.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tc.filter, tc.topic, got, tc.want)
		}
	}
}

func TestHandleRejectsBadRegistrations(t *testing.T) {
	r := New(nil)
	h := HandlerFunc(func(context.Context, Message) error { return nil })
	for _, f := range []string{"", "a/#/b", "a/b+"} {
		if err := r.Handle(f, h, Options{}); err == nil {
			t.Errorf("filter %q accepted", f)
		}
	}
	if err := r.Handle("a", h, Options{}); err != nil {
		t.Fatal(err)
	}
	if err := r.Handle("a", h, Options{}); err == nil {
		t.Error("filter registered twice")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	waitFor(t, func() bool {
		err := r.Handle("b", h, Options{})
		return errors.Is(err, ErrStarted)
	})
	cancel()
	<-done
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestSlowHandlerBlocksNothingElse: a handler stuck on its first message
// fills its own queue; further messages for it are rejected as queue_full
// at once, and another handler keeps handling. Everything is counted and
// the rejections are logged once per reason (rate-limited).
func TestSlowHandlerBlocksNothingElse(t *testing.T) {
	var logs syncBuffer
	r := New(slog.New(slog.NewTextHandler(&logs, nil)))
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	if err := r.Handle("slow/#", HandlerFunc(func(ctx context.Context, m Message) error {
		select {
		case started <- struct{}{}:
		default:
		}
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil
	}), Options{Name: "slow", QueueLen: 4, MaxPayload: 8}); err != nil {
		t.Fatal(err)
	}
	var fastMu sync.Mutex
	var fast []string
	if err := r.Handle("fast/+", HandlerFunc(func(ctx context.Context, m Message) error {
		switch string(m.Payload) {
		case "bad":
			return Reject(ReasonMalformed, errors.New("not a number"))
		case "boom":
			return errors.New("exploded")
		}
		fastMu.Lock()
		fast = append(fast, string(m.Payload))
		fastMu.Unlock()
		return nil
	}), Options{Name: "fast"}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	routes := r.Routes()
	if len(routes) != 2 {
		t.Fatalf("routes %v", routes)
	}
	routes["slow/#"]("slow/x", []byte("first"))
	<-started // the slow handler is now stuck
	for range 10 {
		routes["slow/#"]("slow/x", []byte("m")) // 4 queue, 6 rejected; never blocks
	}
	routes["slow/#"]("slow/x", []byte("far too long")) // oversize
	for _, p := range []string{"1", "bad", "2", "boom", "bad", "3"} {
		r.Deliver("fast/a", []byte(p))
	}
	waitFor(t, func() bool {
		fastMu.Lock()
		defer fastMu.Unlock()
		return len(fast) == 3
	})
	st := r.Stats()
	slow, fastSt := st[0], st[1]
	if slow.Name != "slow" || slow.Received != 12 || slow.Queued != 4 || slow.Rejected[ReasonQueueFull] != 6 || slow.Rejected[ReasonOversize] != 1 {
		t.Errorf("slow stats %+v", slow)
	}
	waitFor(t, func() bool { return r.Stats()[1].Rejected[ReasonError] == 1 })
	fastSt = r.Stats()[1]
	if fastSt.Received != 6 || fastSt.Handled != 3 || fastSt.Rejected[ReasonMalformed] != 2 || fastSt.Rejected[ReasonError] != 1 {
		t.Errorf("fast stats %+v", fastSt)
	}
	out := logs.String()
	for _, want := range []string{
		`handler=slow topic=slow/x reason=queue_full bytes=1`,
		`handler=slow topic=slow/x reason=oversize bytes=12`,
		`handler=fast topic=fast/a reason=malformed bytes=3`,
		`handler=fast topic=fast/a reason=handler_error bytes=4`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "reason=queue_full"); n != 1 {
		t.Errorf("%d queue_full lines, want 1 (rate-limited):\n%s", n, out)
	}
	close(release)
	cancel()
	<-done
}

// TestRateLimitReportsSuppressed: after LogEvery the next rejection's line
// carries the count of those not logged.
func TestRateLimitReportsSuppressed(t *testing.T) {
	var logs syncBuffer
	r := New(slog.New(slog.NewTextHandler(&logs, nil)))
	h := &route{filter: "x", opts: Options{Name: "x"}, rejected: map[string]int64{}, logged: map[string]time.Time{}, quiet: map[string]int64{}}
	for range 5 {
		r.reject(h, "x", 1, "forged", errors.New("no"))
	}
	h.logged["forged"] = time.Now().Add(-LogEvery) // as if LogEvery had passed
	r.reject(h, "x", 1, "forged", errors.New("no"))
	out := logs.String()
	if strings.Count(out, "reason=forged") != 2 || !strings.Contains(out, "suppressed=4") || h.rejected["forged"] != 6 {
		t.Fatalf("log:\n%s\ncounted %d", out, h.rejected["forged"])
	}
}

func TestReasonOf(t *testing.T) {
	if got := ReasonOf(Reject("forged", errors.New("x"))); got != "forged" {
		t.Error(got)
	}
	if got := ReasonOf(fmtWrap(Reject("replayed", errors.New("x")))); got != "replayed" {
		t.Error(got)
	}
	if got := ReasonOf(errors.New("x")); got != ReasonError {
		t.Error(got)
	}
}

func fmtWrap(err error) error { return errors.Join(errors.New("ctx"), err) }

// TestQueueBoundedByBytes: a stuck handler's queue holds at most
// MaxQueueBytes of payloads, whatever QueueLen allows, and takes messages
// again as the handler drains it.
func TestQueueBoundedByBytes(t *testing.T) {
	r := New(nil)
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	var handled atomic.Int64
	if err := r.Handle("blocks", HandlerFunc(func(ctx context.Context, m Message) error {
		select {
		case started <- struct{}{}:
		default:
		}
		select {
		case <-release:
		case <-ctx.Done():
		}
		handled.Add(1)
		return nil
	}), Options{Name: "blocks", QueueLen: 64, MaxPayload: 1000, MaxQueueBytes: 2500}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	block := make([]byte, 1000)
	r.Deliver("blocks", block)
	<-started // stuck on the first; it left the queue
	for range 10 {
		r.Deliver("blocks", block) // 2 fit in 2500 bytes, 8 rejected
	}
	st := r.Stats()[0]
	if st.Queued != 2 || st.Rejected[ReasonQueueFull] != 8 {
		t.Fatalf("stats %+v: want 2 queued, 8 rejected by bytes", st)
	}
	close(release)
	waitFor(t, func() bool { return handled.Load() == 3 })
	r.Deliver("blocks", block) // room again
	waitFor(t, func() bool { return handled.Load() == 4 })
}
