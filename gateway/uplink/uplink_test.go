package uplink

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/shelfgate/shelfgate/gateway"
	"github.com/shelfgate/shelfgate/gateway/collect"
	"github.com/shelfgate/shelfgate/gateway/downlink"
	"github.com/shelfgate/shelfgate/gateway/mqtttest"
	"github.com/shelfgate/shelfgate/gateway/outbox"
	"github.com/shelfgate/shelfgate/gateway/wire/shelfv1"
)

var topics = shelfv1.Topics{Site: "site-1", Gateway: "gw-1"}

type fixture struct {
	ob     *outbox.Outbox
	col    *collect.Collector
	u      *Uplink
	router *downlink.Router // the uplink's Downlink; with ConsumerAcks it has an ack handler
	stop   func() error     // stops the uplink and returns Run's error; idempotent
}

// ackHandler is the consumer-ack handler as cmd/shelfgate registers it.
func ackHandler(u func() *Uplink) downlink.Handler {
	return downlink.HandlerFunc(func(ctx context.Context, m downlink.Message) error {
		ref, err := shelfv1.DecodeAck(m.Payload)
		if err != nil {
			return downlink.Reject(downlink.ReasonMalformed, err)
		}
		return u().Confirm(ctx, ref)
	})
}

// rig is a test setup: an outbox, a collector subscribed to collectURL, and
// an uplink delivering the outbox.
type rig struct {
	collectURL string
	collect    collect.SubscribeOptions // Broker, ClientID and OnSubscribed are set by start
	opts       Options                  // Brokers defaults to collectURL; Topics and a fast backoff are set
	prefill    func(*outbox.Outbox)     // runs before the uplink starts
}

func (r rig) start(t *testing.T) *fixture {
	t.Helper()
	ob, err := outbox.Open(filepath.Join(t.TempDir(), "outbox.db"), outbox.DefaultOptions)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ob.Close() })
	f := &fixture{ob: ob, col: collect.New()}
	subscribed := make(chan struct{}, 8)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	co := r.collect
	co.Broker, co.ClientID = r.collectURL, "collector-"+t.Name()
	co.OnSubscribed = func() { subscribed <- struct{}{} }
	go collect.Subscribe(ctx, f.col, co)
	select {
	case <-subscribed:
	case <-time.After(15 * time.Second):
		t.Fatal("collector did not subscribe")
	}
	if r.prefill != nil {
		r.prefill(ob)
	}
	opts := r.opts
	if len(opts.Brokers) == 0 {
		opts.Brokers = []string{r.collectURL}
	}
	opts.Topics = topics
	if opts.Downlink == nil {
		f.router = downlink.New(nil)
		if opts.ConsumerAcks {
			if err := f.router.Handle(topics.Ack(), ackHandler(func() *Uplink { return f.u }), downlink.Options{Name: "acks", QueueLen: 1024, MaxPayload: shelfv1.MaxAckBytes}); err != nil {
				t.Fatal(err)
			}
		}
		opts.Downlink = f.router
	}
	if opts.BackoffMin == 0 {
		opts.BackoffMin, opts.BackoffMax = 50*time.Millisecond, 500*time.Millisecond
	}
	f.u, err = New(ob, opts)
	if err != nil {
		t.Fatal(err)
	}
	uctx, ucancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.u.Run(uctx) }()
	var once sync.Once
	var runErr error
	f.stop = func() error {
		once.Do(func() { ucancel(); runErr = <-done })
		return runErr
	}
	t.Cleanup(func() { f.stop() })
	return f
}

// start runs a rig with a persistent collector on url.
func start(t *testing.T, url string, opts Options) *fixture {
	return rig{collectURL: url, collect: collect.SubscribeOptions{Persistent: true}, opts: opts}.start(t)
}

func produce(t *testing.T, ob *outbox.Outbox, batches, per int, evEvery int) {
	t.Helper()
	for b := range batches {
		recs := make([]gateway.Record, 0, per+1)
		for i := range per {
			recs = append(recs, gateway.Record{Class: gateway.ClassTelemetry, Stream: gateway.StreamID(fmt.Sprintf("loadcell/s/b%d", i%4)), Time: time.Now(), Value: float64(i), Unit: "g"})
		}
		if evEvery > 0 && b%evEvery == 0 {
			recs = append(recs, gateway.Record{Class: gateway.ClassEvent, Stream: "events/loadcell/s/b0", Time: time.Now(), Body: []byte(`{"kind":"pick","qty":1}`)})
		}
		if err := ob.Append(context.Background(), recs); err != nil {
			t.Fatal(err)
		}
	}
}

func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func brokers(t *testing.T) map[string]func(t *testing.T) string {
	return map[string]func(t *testing.T) string{
		"embedded":  func(t *testing.T) string { return mqtttest.StartEmbedded(t) },
		"mosquitto": func(t *testing.T) string { return mqtttest.StartMosquitto(t).URL },
	}
}

func TestDeliversCompressed(t *testing.T) {
	f := start(t, mqtttest.StartEmbedded(t), Options{Compress: true})
	produce(t, f.ob, 10, 500, 2)
	waitFor(t, "compressed batches collected", 15*time.Second, func() bool {
		return f.col.Audit(false).Received == 5005 && f.ob.Backlog() == 0
	})
	if a := f.col.Audit(false); !a.OK() {
		t.Fatalf("audit %+v", a)
	}
}

func TestDeliversEverythingAndDeletesAcked(t *testing.T) {
	for name, startBroker := range brokers(t) {
		t.Run(name, func(t *testing.T) {
			url := startBroker(t)
			f := start(t, url, Options{BatchRecords: 200, Window: 8})
			u := f.u
			const batches, per = 50, 400
			produce(t, f.ob, batches, per, 5)
			want := int64(batches*per + batches/5)
			waitFor(t, "all records collected and acked", 30*time.Second, func() bool {
				return f.col.Audit(false).Received == want && f.ob.Backlog() == 0
			})
			a := f.col.Audit(false)
			if !a.OK() || a.Duplicates != 0 {
				t.Fatalf("audit %+v", a)
			}
			if len(a.Streams) != 5 {
				t.Errorf("streams = %d, want 4 telemetry + 1 event", len(a.Streams))
			}
			if st := u.Stats(); st.Delivered != want || st.Connects != 1 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

// TestBrokerRestartLosesNothing restarts mosquitto (clean stop, persistence
// kept) twice while the outbox keeps filling; every row must arrive.
func TestBrokerRestartLosesNothing(t *testing.T) {
	m := mqtttest.StartMosquitto(t)
	f := start(t, m.URL, Options{BatchRecords: 100, Window: 16, KeepAlive: 2 * time.Second})
	u := f.u
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 40 {
			produce(t, f.ob, 5, 200, 2)
			time.Sleep(20 * time.Millisecond)
		}
	}()
	for range 2 {
		time.Sleep(300 * time.Millisecond)
		m.Stop()
		time.Sleep(500 * time.Millisecond)
		m.Start()
	}
	wg.Wait()
	want := int64(40 * (5*200 + 3))
	waitFor(t, "every record after broker restarts", 60*time.Second, func() bool {
		return f.col.Audit(false).Received == want && f.ob.Backlog() == 0
	})
	a := f.col.Audit(false)
	if !a.OK() {
		t.Fatalf("audit %+v", a)
	}
	if st := u.Stats(); st.Connects < 2 {
		t.Errorf("connects = %d, want a reconnect after the restarts", st.Connects)
	}
	t.Logf("duplicates %d, resent %d", a.Duplicates, u.Stats().Resent)
}

func TestStatusBirthAndShutdown(t *testing.T) {
	url := mqtttest.StartEmbedded(t)
	var births atomic.Int64
	f := start(t, url, Options{StatusInterval: 100 * time.Millisecond, Birth: func() map[string]any {
		return map[string]any{"version": "test", "n": births.Add(1)}
	}})
	statuses := make(chan map[string]any, 8)
	sub := subscriber(t, url, topics.Status(), func(m paho.Message) {
		var s map[string]any
		json.Unmarshal(m.Payload(), &s)
		statuses <- s
	})
	defer sub.Disconnect(0)
	s := <-statuses
	if s["state"] != "online" || s["version"] != "test" || s["gateway"] != "gw-1" {
		t.Fatalf("birth = %v", s)
	}
	// The status is refreshed while connected.
	waitFor(t, "a refreshed status", 10*time.Second, func() bool {
		select {
		case s = <-statuses:
			return s["state"] == "online" && s["n"].(float64) >= 3
		default:
			return false
		}
	})
	f.stop()
	for s["state"] != "offline" {
		select {
		case s = <-statuses:
		case <-time.After(5 * time.Second):
			t.Fatal("no status after shutdown")
		}
	}
	if s["reason"] != "shutdown" {
		t.Fatalf("shutdown status = %v", s)
	}
}

func subscriber(t *testing.T, url, filter string, h func(paho.Message)) paho.Client {
	t.Helper()
	c := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID("sub-" + t.Name()))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	if tok := c.Subscribe(filter, 1, func(_ paho.Client, m paho.Message) { h(m) }); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	return c
}

func TestBucket(t *testing.T) {
	t0 := time.Unix(0, 0)
	b := newBucket(1000, 100)
	if w := b.take(1000, t0); w != 0 {
		t.Fatalf("full burst: wait %v", w)
	}
	if w := b.take(500, t0); w != 500*time.Millisecond {
		t.Fatalf("empty bucket: wait %v, want 500ms", w)
	}
	if w := b.take(500, t0.Add(500*time.Millisecond)); w != 0 {
		t.Fatalf("after refill: wait %v", w)
	}
	if newBucket(0, 100) != nil {
		t.Fatal("rate 0 must mean no bucket")
	}
}

// TestReplayRateCapsBacklogReplay replays a 6000-record backlog at 2000
// records/s: it cannot finish in less than (6000-2000 burst)/2000 = 2 s,
// while events still flow.
func TestReplayRateCapsBacklogReplay(t *testing.T) {
	var start time.Time
	f := rig{collectURL: mqtttest.StartEmbedded(t), opts: Options{ReplayRate: 2000, BatchRecords: 500},
		prefill: func(ob *outbox.Outbox) {
			produce(t, ob, 12, 500, 4) // the backlog, before the uplink starts
			start = time.Now()
		}}.start(t)
	col := f.col
	waitFor(t, "events while telemetry is throttled", 10*time.Second, func() bool {
		for _, s := range col.Audit(false).Streams {
			if strings.HasPrefix(s.Stream, "events/") && s.Received == 3 {
				return true
			}
		}
		return false
	})
	waitFor(t, "the whole backlog", 30*time.Second, func() bool { return col.Audit(false).Received == 6003 })
	if el := time.Since(start); el < 1900*time.Millisecond {
		t.Fatalf("6000 records at 2000/s (burst 2000) took only %v", el)
	}
}

// TestConsumerAcksSurviveBrokerKill SIGKILLs mosquitto three times while the
// outbox fills. mosquitto PUBACKs before it persists, so deleting at PUBACK
// could lose what it held; with consumer acks every row stays until the
// collector confirms it, and the audit must come out whole.
func TestConsumerAcksSurviveBrokerKill(t *testing.T) {
	m := mqtttest.StartMosquitto(t)
	f := rig{collectURL: m.URL, collect: collect.SubscribeOptions{Persistent: true, Ack: true},
		opts: Options{ConsumerAcks: true, ConsumerAckTimeout: 2 * time.Second, KeepAlive: 2 * time.Second, BatchRecords: 200}}.start(t)
	ob, col, u := f.ob, f.col, f.u
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 60 {
			produce(t, ob, 2, 250, 1)
			time.Sleep(15 * time.Millisecond)
		}
	}()
	for range 3 {
		time.Sleep(250 * time.Millisecond)
		m.Kill()
		time.Sleep(300 * time.Millisecond)
		m.Start()
	}
	wg.Wait()
	want := int64(60 * (2*250 + 2))
	waitFor(t, "every record confirmed after broker kills", 90*time.Second, func() bool {
		return col.Audit(false).Received == want && ob.Backlog() == 0
	})
	a := col.Audit(false)
	if !a.OK() {
		t.Fatalf("audit %+v", a)
	}
	st := u.Stats()
	if st.Confirmed == 0 {
		t.Fatalf("no consumer acks applied: %+v", st)
	}
	t.Logf("duplicates %d, confirmed %d, rewinds %d, connects %d", a.Duplicates, st.Confirmed, st.Rewinds, st.Connects)
}

// TestConsumerAcksKeepRowsUntilConfirmed: a consumer that never confirms
// leaves every row in the outbox, and they are sent again after the timeout.
func TestConsumerAcksKeepRowsUntilConfirmed(t *testing.T) {
	f := rig{collectURL: mqtttest.StartEmbedded(t), opts: Options{ConsumerAcks: true, ConsumerAckTimeout: time.Second}}.start(t)
	ob, col, u := f.ob, f.col, f.u
	produce(t, ob, 2, 100, 0)
	waitFor(t, "a re-send of unconfirmed rows", 20*time.Second, func() bool { return col.Audit(false).Duplicates >= 200 })
	if ob.Backlog() != 200 {
		t.Fatalf("backlog %d, want all 200 rows kept", ob.Backlog())
	}
	if u.Stats().Rewinds == 0 {
		t.Fatalf("stats %+v", u.Stats())
	}
}

// TestRunJoinsItsGoroutines: once Run returned, no goroutine the uplink
// started (session watchers, lanes, status refresher, downlink handlers)
// is left, after sessions ended both by a broker loss and by shutdown.
func TestRunJoinsItsGoroutines(t *testing.T) {
	m := mqtttest.StartMosquitto(t)
	router := downlink.New(nil)
	if err := router.Handle(topics.Base()+"/x/#", downlink.HandlerFunc(func(ctx context.Context, _ downlink.Message) error {
		<-ctx.Done()                       // a handler that only stops when told to,
		time.Sleep(200 * time.Millisecond) // and takes its time: Run must wait for it
		return nil
	}), downlink.Options{}); err != nil {
		t.Fatal(err)
	}
	f := rig{collectURL: m.URL, opts: Options{Downlink: router, KeepAlive: 2 * time.Second}}.start(t)
	produce(t, f.ob, 4, 100, 1)
	waitFor(t, "delivery", 15*time.Second, func() bool { return f.col.Audit(false).Received == 404 })
	pub := subscriber(t, m.URL, topics.Base()+"/nothing", func(paho.Message) {})
	waitFor(t, "the handler busy", 10*time.Second, func() bool {
		pub.Publish(topics.Base()+"/x/y", 1, false, "hi").Wait()
		return router.Stats()[0].Received > 0
	})
	m.Kill() // one session ends by losing the broker
	m.Start()
	waitFor(t, "a second session", 30*time.Second, func() bool { return f.u.Stats().Connects >= 2 && f.u.Stats().Connected })
	if err := f.stop(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1<<20)
	stacks := string(buf[:runtime.Stack(buf, true)])
	for _, g := range strings.Split(stacks, "\n\n") {
		// Any frame in the uplink's or the router's non-test code.
		for _, line := range strings.Split(g, "\n") {
			line = strings.TrimSpace(line)
			if (strings.Contains(line, "/gateway/uplink/") || strings.Contains(line, "/gateway/downlink/")) && !strings.Contains(line, "_test.go") {
				t.Errorf("goroutine left after Run returned:\n%s", g)
				break
			}
		}
	}
}
