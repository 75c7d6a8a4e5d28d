package statuspage

import (
	"context"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/shelfgate/shelfgate/gateway"
)

// 100 SSE clients at once all get the hello and live updates; the heap
// stays bounded (each client holds at most ClientBuffer shared messages);
// when they leave, the hub forgets them.
func TestHundredClients(t *testing.T) {
	r := newRig(t, func(o *Options) { o.MaxClients = 128 })
	stopFeed := make(chan struct{})
	var feedWG sync.WaitGroup
	feedWG.Add(1)
	go func() {
		defer feedWG.Done()
		for {
			select {
			case <-stopFeed:
				return
			default:
			}
			for _, b := range testBins {
				r.feed(gateway.StreamID(b.Stream), 123, time.Now())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	defer func() { close(stopFeed); feedWG.Wait() }()

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	got := make(chan int, 100)
	for range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			msgs, err := sseClient(t, ctx, r.ts.URL)
			if err != nil {
				t.Error(err)
				return
			}
			n := 0
			for m := range msgs {
				if m[0] == "update" {
					n++
				}
				if n == 5 {
					break
				}
			}
			got <- n
			for range msgs { // keep reading until cancelled
			}
		}()
	}
	for range 100 {
		select {
		case n := <-got:
			if n < 5 {
				t.Fatalf("a client got %d updates", n)
			}
		case <-time.After(60 * time.Second):
			t.Fatalf("clients stalled: %+v", r.srv.Stats())
		}
	}
	if st := r.srv.Stats(); st.Clients != 100 {
		t.Errorf("hub has %d clients, want 100 (%+v)", st.Clients, st)
	}
	runtime.GC()
	var during runtime.MemStats
	runtime.ReadMemStats(&during)
	grew := int64(during.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("heap grew by %d KB with 100 clients", grew/1024)
	if grew > 64<<20 {
		t.Errorf("heap grew by %d MB with 100 clients", grew>>20)
	}
	cancel()
	wg.Wait()
	waitFor(t, "clients to be forgotten", func() bool { return r.srv.Stats().Clients == 0 })
}

// A client over MaxClients is refused, not queued.
func TestClientLimit(t *testing.T) {
	r := newRig(t, func(o *Options) { o.MaxClients = 2 })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for range 2 {
		if _, err := sseClient(t, ctx, r.ts.URL); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := sseClient(t, ctx, r.ts.URL); err == nil || r.srv.Stats().Refused != 1 {
		t.Fatalf("third client: %v, %+v", err, r.srv.Stats())
	}
}

// A client that connects and never reads is dropped by the hub (counted)
// once its buffer is full, and neither the Tap nor other clients wait.
func TestClientThatNeverReads(t *testing.T) {
	r := newRig(t, func(o *Options) { o.ClientBuffer = 4; o.WriteTimeout = 500 * time.Millisecond })
	conn, err := net.Dial("tcp", r.ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetReadBuffer(4096)
	}
	conn.Write([]byte("GET /api/stream HTTP/1.1\r\nHost: x\r\n\r\n"))
	waitFor(t, "the silent client to connect", func() bool { return r.srv.Stats().Clients == 1 })
	// Big updates fill the socket buffers, then the client's buffer.
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for k := 0; ; k++ {
			select {
			case <-stop:
				return
			default:
			}
			for s := range 200 {
				r.tap.Observe(readingAt(s, k))
			}
			time.Sleep(time.Millisecond)
		}
	}()
	waitFor(t, "the silent client to be dropped", func() bool { return r.srv.Stats().Dropped >= 1 && r.srv.Stats().Clients == 0 })
	close(stop)
	<-done
	// The page still works for others.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	msgs, err := sseClient(t, ctx, r.ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	if m := <-msgs; m[0] != "hello" {
		t.Fatalf("after the drop: %q", m[0])
	}
}

// waitFor polls cond for up to 30 s (a bound for a loaded machine, not a
// timing assertion).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
