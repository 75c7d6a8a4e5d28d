package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/shelfgate/shelfgate/gateway"
	"github.com/shelfgate/shelfgate/gateway/collect"
	"github.com/shelfgate/shelfgate/gateway/downlink"
	"github.com/shelfgate/shelfgate/gateway/modelsync"
	"github.com/shelfgate/shelfgate/gateway/mqtttest"
	"github.com/shelfgate/shelfgate/gateway/outbox"
	"github.com/shelfgate/shelfgate/gateway/uplink"
	"github.com/shelfgate/shelfgate/gateway/wire/shelfv1"
)

var dlTopics = shelfv1.Topics{Site: "site-dl", Gateway: "gw-dl"}

// logBuffer collects the gateway's log lines while it runs.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// dlGateway is the gateway's delivery half as run() wires it: a real
// outbox file, an uplink keyed with the outbox's secret, and the router
// with the handlers registerDownlink installs.
type dlGateway struct {
	ob     *outbox.Outbox
	up     *uplink.Uplink
	router *downlink.Router
	logs   *logBuffer
	stop   func() // stops the uplink (waits for Run) and closes the outbox; idempotent
}

type dlConfig struct {
	url  string
	path string // outbox file; default a fresh one
	opts uplink.Options
	cmds map[string]commandFunc
	// cmdsFor adds commands that need the outbox and uplink (after cmds).
	cmdsFor func(ob *outbox.Outbox, up *uplink.Uplink) map[string]commandFunc
	extra   func(r *downlink.Router) // more handlers, before Run
	prefill func(ob *outbox.Outbox)  // before the uplink starts
}

func startDL(t *testing.T, c dlConfig) *dlGateway {
	t.Helper()
	if c.path == "" {
		c.path = filepath.Join(t.TempDir(), "outbox.db")
	}
	ob, err := outbox.Open(c.path, outbox.DefaultOptions)
	if err != nil {
		t.Fatal(err)
	}
	if c.prefill != nil {
		c.prefill(ob)
	}
	g := &dlGateway{ob: ob, logs: &logBuffer{}}
	log := slog.New(slog.NewTextHandler(g.logs, nil))
	g.router = downlink.New(log)
	key, err := ob.Secret(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	opts := c.opts
	opts.Brokers, opts.Topics, opts.BatchKey, opts.Downlink, opts.Logger = []string{c.url}, dlTopics, key, g.router, log
	opts.ClientID = "gw-" + t.Name()
	opts.BackoffMin, opts.BackoffMax = 50*time.Millisecond, 500*time.Millisecond
	if g.up, err = uplink.New(ob, opts); err != nil {
		t.Fatal(err)
	}
	cmds := builtinCommands(func() map[string]any { return map[string]any{"version": "test", "backlog": ob.Backlog()} })
	for k, v := range c.cmds {
		cmds[k] = v
	}
	if c.cmdsFor != nil {
		for k, v := range c.cmdsFor(ob, g.up) {
			cmds[k] = v
		}
	}
	if err := registerDownlink(g.router, dlTopics, ob, g.up, cmds, opts.ConsumerAcks, log); err != nil {
		t.Fatal(err)
	}
	if c.extra != nil {
		c.extra(g.router)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.up.Run(ctx) }()
	var once sync.Once
	g.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("uplink: %v", err)
			}
			if err := ob.Close(); err != nil {
				t.Errorf("close outbox: %v", err)
			}
		})
	}
	t.Cleanup(g.stop)
	return g
}

func (g *dlGateway) handler(t *testing.T, name string) downlink.HandlerStats {
	t.Helper()
	for _, h := range g.router.Stats() {
		if h.Name == name {
			return h
		}
	}
	t.Fatalf("no handler %q in %+v", name, g.router.Stats())
	return downlink.HandlerStats{}
}

// settled reports whether the handler has finished with n messages.
func settled(h downlink.HandlerStats, n int64) bool {
	var rej int64
	for _, v := range h.Rejected {
		rej += v
	}
	return h.Received >= n && h.Handled+rej == h.Received
}

func dlWait(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func mqttClient(t *testing.T, url, id string) paho.Client {
	t.Helper()
	c := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID(id).SetOrderMatters(false))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect %s: %v", id, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(0) })
	return c
}

func dlSubscribe(t *testing.T, c paho.Client, filter string, h func(paho.Message)) {
	t.Helper()
	if tok := c.Subscribe(filter, 1, func(_ paho.Client, m paho.Message) { h(m) }); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe %s: %v", filter, tok.Error())
	}
}

func fillOutbox(t *testing.T, ob *outbox.Outbox, batches, per int) {
	t.Helper()
	for b := range batches {
		recs := make([]gateway.Record, 0, per+1)
		for i := range per {
			recs = append(recs, gateway.Record{Class: gateway.ClassTelemetry, Stream: gateway.StreamID(fmt.Sprintf("loadcell/s/b%d", i%4)), Time: time.Now(), Value: float64(i), Unit: "g"})
		}
		recs = append(recs, gateway.Record{Class: gateway.ClassEvent, Stream: "events/s/b0", Time: time.Now(), Body: []byte(fmt.Sprintf(`{"kind":"pick","qty":%d}`, b+1))})
		if err := ob.Append(context.Background(), recs); err != nil {
			t.Fatal(err)
		}
	}
}

// rows returns the ids stored in the outbox, per class.
func rows(t *testing.T, ob *outbox.Outbox) [2][]int64 {
	t.Helper()
	var out [2][]int64
	for _, c := range []gateway.Class{gateway.ClassTelemetry, gateway.ClassEvent} {
		recs, err := ob.Read(context.Background(), c, 0, 1<<20, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			out[c] = append(out[c], r.ID)
		}
	}
	return out
}

// TestForgedAcksDeleteNothing publishes forged, widened, replayed and
// malformed acks (the issue's {"class":"telemetry","lo":1,"hi":2^53-1}
// first) against a gateway in consumer-ack mode with a backlog: exactly
// the rows of the one genuinely acked batch leave the outbox, every other
// ack is rejected, counted per reason in the router's stats and /metrics,
// and logged with topic, reason and size.
func TestForgedAcksDeleteNothing(t *testing.T) {
	for name, broker := range map[string]func(t *testing.T) string{
		"mosquitto": func(t *testing.T) string { return mqtttest.StartMosquitto(t).URL },
		"embedded":  func(t *testing.T) string { return mqtttest.StartEmbedded(t) },
	} {
		t.Run(name, func(t *testing.T) {
			url := broker(t)
			spy := mqttClient(t, url, "spy-"+t.Name())
			var mu sync.Mutex
			var batches []*shelfv1.Batch // in arrival order, which paho does not keep
			var maxHi int64
			dlSubscribe(t, spy, dlTopics.Telemetry(), func(m paho.Message) {
				b, err := shelfv1.DecodeBatch(m.Payload())
				if err != nil {
					t.Errorf("spy: %v", err)
					return
				}
				mu.Lock()
				batches = append(batches, b)
				maxHi = max(maxHi, b.Hi)
				mu.Unlock()
			})
			g := startDL(t, dlConfig{url: url,
				opts:    uplink.Options{ConsumerAcks: true, ConsumerAckTimeout: time.Hour, BatchRecords: 100},
				prefill: func(ob *outbox.Outbox) { fillOutbox(t, ob, 20, 100) }})
			lastTel := func() int64 { r := rows(t, g.ob)[gateway.ClassTelemetry]; return r[len(r)-1] }()
			dlWait(t, "every telemetry row sent once", 30*time.Second, func() bool {
				mu.Lock()
				defer mu.Unlock()
				return maxHi == lastTel
			})
			before := rows(t, g.ob)
			if len(before[gateway.ClassTelemetry]) != 2000 || len(before[gateway.ClassEvent]) != 20 {
				t.Fatalf("backlog %d+%d rows, want 2000+20", len(before[0]), len(before[1]))
			}
			// The fourth batch by id, never the first: the "shifted" attack
			// below starts at id 1, and would be the genuine ack itself if
			// the genuine batch started there too.
			mu.Lock()
			slices.SortFunc(batches, func(a, b *shelfv1.Batch) int { return int(a.Lo - b.Lo) })
			genuine := batches[3]
			mu.Unlock()
			if genuine.Lo <= 1 {
				t.Fatalf("the fourth batch starts at id %d", genuine.Lo)
			}
			ref, ok := genuine.Ref()
			if !ok {
				t.Fatalf("batch without a ref: %+v", genuine)
			}
			ack := func(r gateway.BatchRef) string { return string(shelfv1.AppendAck(nil, r)) }
			widened, shifted, otherClass := ref, ref, ref
			widened.Hi += 500
			shifted.Lo, shifted.Hi = 1, ref.Hi
			otherClass.Class = gateway.ClassEvent
			attacks := []string{
				`{"class":"telemetry","lo":1,"hi":9007199254740991}`,                                  // malformed: the pre-tag format
				`{"class":"telemetry","lo":1,"hi":9007199254740991,"batch":"AAAAAAAAAAAAAAAAAAAAAA"}`, // forged
				ack(widened), ack(shifted), ack(otherClass), // forged: a genuine tag on other rows
				`null`, `{}`, `[]`, `{"class":"telemetry","lo":"1"}`, // malformed
				`{"class":"telemetry","lo":1,"hi":2,"batch":"` + strings.Repeat("A", 600) + `"}`, // oversize
				ack(ref), ack(ref), // genuine, then replayed
			}
			attacker := mqttClient(t, url, "attacker-"+t.Name())
			for _, p := range attacks {
				if tok := attacker.Publish(dlTopics.Ack(), 1, false, p); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
					t.Fatalf("publish: %v", tok.Error())
				}
			}
			dlWait(t, "every ack handled or rejected", 20*time.Second, func() bool { return settled(g.handler(t, "acks"), int64(len(attacks))) })
			dlWait(t, "the genuine ack applied", 10*time.Second, func() bool {
				return len(rows(t, g.ob)[gateway.ClassTelemetry]) <= len(before[gateway.ClassTelemetry])-len(genuine.Records)
			})
			// The outbox applies acks in its next commit: append a marker
			// event and wait for its commit, which applies every ack queued
			// before it; then leave the marker out of the comparison.
			if err := g.ob.Append(context.Background(), []gateway.Record{{Class: gateway.ClassEvent, Stream: "events/test/marker", Time: time.Now(), Body: []byte(`{"kind":"marker"}`)}}); err != nil {
				t.Fatal(err)
			}
			after := rows(t, g.ob)
			if ev, bev := after[gateway.ClassEvent], before[gateway.ClassEvent]; len(ev) > 0 && ev[len(ev)-1] > bev[len(bev)-1] {
				after[gateway.ClassEvent] = ev[:len(ev)-1]
			}
			var want []int64
			carried := 0
			for _, id := range before[gateway.ClassTelemetry] {
				if id >= ref.Lo && id <= ref.Hi {
					carried++
					continue
				}
				want = append(want, id)
			}
			if carried != len(genuine.Records) {
				t.Fatalf("the acked batch carried %d records but its range holds %d rows", len(genuine.Records), carried)
			}
			if !slices.Equal(after[gateway.ClassTelemetry], want) || !slices.Equal(after[gateway.ClassEvent], before[gateway.ClassEvent]) {
				t.Fatalf("outbox after the acks: %d telemetry, %d events; want %d, %d (only batch %d-%d gone)",
					len(after[0]), len(after[1]), len(want), len(before[1]), ref.Lo, ref.Hi)
			}

			h := g.handler(t, "acks")
			wantRej := map[string]int64{downlink.ReasonMalformed: 5, uplink.ReasonForged: 4, downlink.ReasonOversize: 1, uplink.ReasonReplayed: 1}
			for reason, n := range wantRej {
				if h.Rejected[reason] != n {
					t.Errorf("rejected[%s] = %d, want %d (stats %+v)", reason, h.Rejected[reason], n, h)
				}
			}
			if h.Handled != 1 || g.up.Stats().Confirmed != 1 {
				t.Errorf("handled %d, confirmed %d; want 1, 1", h.Handled, g.up.Stats().Confirmed)
			}
			logs := g.logs.String()
			for reason := range wantRej {
				if !strings.Contains(logs, "handler=acks topic="+dlTopics.Ack()+" reason="+reason+" bytes=") {
					t.Errorf("no log line for reason %s:\n%s", reason, logs)
				}
			}
			// And /metrics shows them.
			ms := newMetrics(&gateway.Gateway{}, g.ob, g.up, g.router, &sensorSet{}, slog.New(slog.DiscardHandler))
			rec := httptest.NewRecorder()
			ms.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
			body, _ := io.ReadAll(rec.Body)
			for reason, n := range wantRej {
				series := fmt.Sprintf(`shelfgate_downlink_rejected_total{handler="acks",reason=%q} %d`, reason, n)
				if !strings.Contains(string(body), series) {
					t.Errorf("/metrics lacks %s:\n%s", series, grepLines(string(body), "downlink"))
				}
			}
		})
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// replies collects command replies: best-effort ones from .../cmd/+/reply
// and durable ones from command_reply events on the events topic.
type replies struct {
	mu      sync.Mutex
	direct  map[string][]byte // id -> last reply payload
	durable map[string][]byte // id -> reply event body
	noID    int
}

func watchReplies(t *testing.T, url string) *replies {
	r := &replies{direct: map[string][]byte{}, durable: map[string][]byte{}}
	c := mqttClient(t, url, "replies-"+t.Name())
	dlSubscribe(t, c, dlTopics.Reply("+"), func(m paho.Message) {
		rep, err := shelfv1.DecodeReply(m.Payload())
		if err != nil {
			t.Errorf("reply %s: %v", m.Payload(), err)
			return
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		if rep.ID == "" {
			r.noID++
			return
		}
		r.direct[rep.ID] = m.Payload()
	})
	dlSubscribe(t, c, dlTopics.Events(), func(m paho.Message) {
		b, err := shelfv1.DecodeBatch(m.Payload())
		if err != nil {
			t.Errorf("events: %v", err)
			return
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, rec := range b.Records {
			if rec.Stream == string(gateway.StreamCommandReplies) {
				rep, err := shelfv1.DecodeReply(rec.Event)
				if err != nil {
					t.Errorf("reply event %s: %v", rec.Event, err)
					continue
				}
				r.durable[rep.ID] = rec.Event
			}
		}
	})
	return r
}

func (r *replies) get(id string) (direct, durable []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.direct[id], r.durable[id]
}

// TestCommandReplayedAfterRestartRunsOnce: a command is run once and its
// reply recorded with its id; the same id sent again in the same session,
// and after the gateway restarted (outbox closed and reopened, a new
// uplink), is answered with the recorded reply without running again.
func TestCommandReplayedAfterRestartRunsOnce(t *testing.T) {
	url := mqtttest.StartEmbedded(t)
	path := filepath.Join(t.TempDir(), "outbox.db")
	var runs atomic.Int64
	cmds := map[string]commandFunc{"count": func(context.Context, json.RawMessage) (any, []gateway.Record, error) {
		return map[string]int64{"runs": runs.Add(1)}, nil, nil
	}}
	rep := watchReplies(t, url)
	cloud := mqttClient(t, url, "cloud-"+t.Name())
	// send publishes a command until its reply (best effort and durable)
	// arrives: repeating is safe, that is the point.
	send := func(name, id string) (direct, durable []byte) {
		t.Helper()
		dlWait(t, "reply to "+id, 20*time.Second, func() bool {
			cloud.Publish(dlTopics.Base()+"/cmd/"+name, 1, false, `{"id":"`+id+`"}`).Wait()
			time.Sleep(100 * time.Millisecond)
			direct, durable = rep.get(id)
			return direct != nil && durable != nil
		})
		return direct, durable
	}

	g := startDL(t, dlConfig{url: url, path: path, cmds: cmds})
	first, firstDurable := send("count", "once-1")
	if !bytes.Equal(first, firstDurable) {
		t.Fatalf("best-effort reply %s differs from the durable one %s", first, firstDurable)
	}
	r, err := shelfv1.DecodeReply(first)
	if err != nil || !r.OK || r.Name != "count" || string(r.Result) != `{"runs":1}` {
		t.Fatalf("reply %s (%v)", first, err)
	}
	// Redelivered in the same session.
	cloud.Publish(dlTopics.Base()+"/cmd/count", 1, false, `{"id":"once-1"}`).Wait()
	dlWait(t, "the repeat handled", 10*time.Second, func() bool {
		return settled(g.handler(t, "commands"), g.handler(t, "commands").Received) && g.handler(t, "commands").Received >= 2
	})
	g.stop()

	g2 := startDL(t, dlConfig{url: url, path: path, cmds: cmds})
	before := g2.handler(t, "commands").Received
	cloud.Publish(dlTopics.Base()+"/cmd/count", 1, false, `{"id":"once-1"}`).Wait()
	dlWait(t, "the replay after restart answered", 20*time.Second, func() bool {
		h := g2.handler(t, "commands")
		if h.Received == before { // still subscribing: send again
			cloud.Publish(dlTopics.Base()+"/cmd/count", 1, false, `{"id":"once-1"}`).Wait()
			time.Sleep(100 * time.Millisecond)
			return false
		}
		return settled(h, before+1)
	})
	if n := runs.Load(); n != 1 {
		t.Fatalf("command ran %d times, want once", n)
	}
	if !strings.Contains(g2.logs.String(), "answered from its record") {
		t.Errorf("replay not logged:\n%s", g2.logs.String())
	}
	// A new id still runs, so the handler was live.
	if _, durable := send("count", "once-2"); !strings.Contains(string(durable), `"result":{"runs":2}`) {
		t.Fatalf("second command: %s", durable)
	}
	if direct, _ := rep.get("once-1"); !bytes.Equal(direct, first) {
		t.Fatalf("replayed reply %s, want the recorded %s", direct, first)
	}
}

// TestBlockedHandlerDelaysNothing: one handler blocked for 10 s (and its
// queue flooded) while telemetry and events are produced: every row is
// delivered and confirmed by the consumer (acks go through their own
// handler) before the blocked handler returns.
func TestBlockedHandlerDelaysNothing(t *testing.T) {
	url := mqtttest.StartEmbedded(t)
	col := collect.New()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	subscribed := make(chan struct{}, 4)
	go collect.Subscribe(ctx, col, collect.SubscribeOptions{Broker: url, ClientID: "col-" + t.Name(), Persistent: true, Ack: true,
		Site: dlTopics.Site, Gateway: dlTopics.Gateway, OnSubscribed: func() { subscribed <- struct{}{} }})
	<-subscribed
	var blocked atomic.Bool
	entered := make(chan struct{}, 1)
	slow := downlink.HandlerFunc(func(ctx context.Context, m downlink.Message) error {
		blocked.Store(true)
		defer blocked.Store(false)
		select {
		case entered <- struct{}{}:
		default:
		}
		select {
		case <-time.After(10 * time.Second):
		case <-ctx.Done():
		}
		return nil
	})
	g := startDL(t, dlConfig{url: url, opts: uplink.Options{ConsumerAcks: true, ConsumerAckTimeout: time.Minute},
		extra: func(r *downlink.Router) {
			if err := r.Handle(dlTopics.Base()+"/slow/#", slow, downlink.Options{Name: "slow", QueueLen: 8}); err != nil {
				t.Fatal(err)
			}
		}})
	cloud := mqttClient(t, url, "cloud-"+t.Name())
	dlWait(t, "the slow handler blocked", 20*time.Second, func() bool {
		cloud.Publish(dlTopics.Base()+"/slow/x", 1, false, "block").Wait()
		select {
		case <-entered:
			return true
		case <-time.After(100 * time.Millisecond):
			return false
		}
	})
	for range 100 {
		cloud.Publish(dlTopics.Base()+"/slow/x", 1, false, "more")
	}
	fillOutbox(t, g.ob, 10, 500)
	dlWait(t, "all rows delivered and confirmed", 60*time.Second, func() bool {
		return col.Audit(false).Received >= 5010 && g.ob.Backlog() == 0
	})
	if !blocked.Load() {
		t.Fatal("the slow handler returned before delivery finished: the test proves nothing")
	}
	if c := g.up.Stats().Confirmed; c == 0 {
		t.Fatalf("no consumer acks applied")
	}
	if h := g.handler(t, "slow"); h.Rejected[downlink.ReasonQueueFull] == 0 {
		t.Errorf("flooding a blocked handler rejected nothing: %+v", h)
	}
	if a := col.Audit(false); !a.OK() {
		t.Fatalf("audit %+v", a)
	}
}

// TestCommandFlood sends 300 commands at once (queue of 64) and a few
// malformed ones: every command is answered (a durable reply with its id)
// or counted as rejected, and each rejection reason is logged.
func TestCommandFlood(t *testing.T) {
	url := mqtttest.StartMosquitto(t).URL
	rep := watchReplies(t, url)
	g := startDL(t, dlConfig{url: url})
	cloud := mqttClient(t, url, "cloud-"+t.Name())
	dlWait(t, "commands subscribed", 20*time.Second, func() bool {
		cloud.Publish(dlTopics.Base()+"/cmd/ping", 1, false, `{"id":"warmup"}`).Wait()
		time.Sleep(100 * time.Millisecond)
		_, d := rep.get("warmup")
		return d != nil
	})
	malformed := []string{`null`, `{}`, `{"id":""}`, `not json`}
	for _, p := range malformed {
		cloud.Publish(dlTopics.Base()+"/cmd/ping", 1, false, p).Wait()
	}
	base := g.handler(t, "commands")
	dlWait(t, "malformed commands rejected", 20*time.Second, func() bool {
		base = g.handler(t, "commands")
		return base.Rejected[downlink.ReasonMalformed] == int64(len(malformed)) && settled(base, base.Received)
	})
	const n = 300
	var toks []paho.Token
	for i := range n {
		toks = append(toks, cloud.Publish(dlTopics.Base()+"/cmd/ping", 1, false, fmt.Sprintf(`{"id":"flood-%03d"}`, i)))
	}
	for _, tok := range toks {
		if !tok.WaitTimeout(20*time.Second) || tok.Error() != nil {
			t.Fatalf("publish: %v", tok.Error())
		}
	}
	dlWait(t, "every command handled or rejected", 60*time.Second, func() bool { return settled(g.handler(t, "commands"), base.Received+n) })
	h := g.handler(t, "commands")
	if got := h.Received - base.Received; got != n {
		t.Fatalf("router received %d commands, want %d", got, n)
	}
	answered := h.Handled - base.Handled
	if h.Rejected[downlink.ReasonMalformed] != int64(len(malformed)) {
		t.Errorf("malformed rejections %d, want %d", h.Rejected[downlink.ReasonMalformed], len(malformed))
	}
	full := h.Rejected[downlink.ReasonQueueFull] - base.Rejected[downlink.ReasonQueueFull]
	if answered+full != n {
		t.Fatalf("answered %d + queue_full %d != %d", answered, full, n)
	}
	dlWait(t, "every answered command's durable reply", 30*time.Second, func() bool {
		rep.mu.Lock()
		defer rep.mu.Unlock()
		k := int64(0)
		for id := range rep.durable {
			if strings.HasPrefix(id, "flood-") {
				k++
			}
		}
		return k == answered
	})
	logs := g.logs.String()
	if full > 0 && !strings.Contains(logs, "reason=queue_full") {
		t.Errorf("queue_full rejections not logged:\n%s", logs)
	}
	if !strings.Contains(logs, "reason=malformed") {
		t.Errorf("malformed commands not logged:\n%s", logs)
	}
	dlWait(t, "error replies to malformed commands", 10*time.Second, func() bool {
		rep.mu.Lock()
		defer rep.mu.Unlock()
		return rep.noID == len(malformed)
	})
	t.Logf("answered %d, rejected queue_full %d, malformed %d", answered, full, len(malformed))
}

// TestMosquittoACLExample runs mosquitto with configs/mosquitto.acl.example:
// a gateway can publish only its own data and read only its own commands and
// acks; only the collector can ack and only the operator can command.
func TestMosquittoACLExample(t *testing.T) {
	bin, err := exec.LookPath("mosquitto_passwd")
	if err != nil {
		mqtttest.FindMosquitto(t) // skips (or fails under REQUIRE_MOSQUITTO=1) like the broker
		t.Skip("mosquitto_passwd not found")
	}
	dir := t.TempDir()
	pw := filepath.Join(dir, "passwd")
	for i, user := range []string{"gw-1", "gw-2", "collector", "operator", "intruder"} {
		args := []string{"-b", pw, user, "pw-" + user}
		if i == 0 {
			args = append([]string{"-c"}, args...)
		}
		if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
			t.Fatalf("mosquitto_passwd: %v: %s", err, out)
		}
	}
	acl := filepath.Join(mqtttest.ModuleRoot(t), "configs", "mosquitto.acl.example")
	// A finite max_queued_messages, as in configs/acl/mosquitto-tls.conf.example:
	// with the test config's 0 (no limit) mosquitto 2.0.11 closes a client's
	// connection after each denied QoS 1 publish (its quota check takes 0 as
	// full), and the allowed publish that races the reconnect is delivered
	// twice (checked: the broker's log shows "Bad socket read/write" after
	// each "Denied PUBLISH").
	m := mqtttest.StartMosquittoWith(t, "max_queued_messages 100000\nallow_anonymous false\npassword_file "+pw+"\nacl_file "+acl)
	login := func(user string) paho.Client {
		c := paho.NewClient(paho.NewClientOptions().AddBroker(m.URL).SetClientID(user + "-" + t.Name()).SetUsername(user).SetPassword("pw-" + user))
		if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("connect as %s: %v", user, tok.Error())
		}
		t.Cleanup(func() { c.Disconnect(0) })
		return c
	}
	gw1, gw2, col, op, intruder := login("gw-1"), login("gw-2"), login("collector"), login("operator"), login("intruder")
	gw1Topics := shelfv1.Topics{Site: "s1", Gateway: "gw-1"}
	gw2Topics := shelfv1.Topics{Site: "s1", Gateway: "gw-2"}

	// got collects what a client receives on a filter.
	type inbox struct {
		mu  sync.Mutex
		got []string
	}
	listen := func(c paho.Client, filter string) *inbox {
		in := &inbox{}
		if tok := c.Subscribe(filter, 1, func(_ paho.Client, m paho.Message) {
			in.mu.Lock()
			in.got = append(in.got, string(m.Payload()))
			in.mu.Unlock()
		}); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("subscribe %s: %v", filter, tok.Error())
		}
		return in
	}
	publish := func(c paho.Client, topic, payload string) {
		if tok := c.Publish(topic, 1, false, payload); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("publish %s: %v", topic, tok.Error())
		}
	}
	// check publishes the denied messages, then an allowed one; once the
	// allowed one arrived, the denied ones would have too.
	check := func(what string, in *inbox, denied func(), allowed func(), want string) {
		t.Helper()
		denied()
		allowed()
		dlWait(t, what, 10*time.Second, func() bool {
			in.mu.Lock()
			defer in.mu.Unlock()
			return slices.Contains(in.got, want)
		})
		in.mu.Lock()
		defer in.mu.Unlock()
		if len(in.got) != 1 {
			t.Errorf("%s: received %q, want only %q", what, in.got, want)
		}
	}

	tel := listen(col, "shelfgate/v1/+/+/telemetry")
	check("telemetry only from its gateway", tel,
		func() {
			publish(gw1, gw2Topics.Telemetry(), "gw-1 posing as gw-2")
			publish(intruder, gw1Topics.Telemetry(), "intruder")
		},
		func() { publish(gw1, gw1Topics.Telemetry(), "gw-1 own") }, "gw-1 own")

	acks := listen(gw1, gw1Topics.Ack())
	check("acks only from the collector", acks,
		func() {
			publish(intruder, gw1Topics.Ack(), "intruder ack")
			publish(gw2, gw1Topics.Ack(), "gw-2 ack")
			publish(op, gw1Topics.Ack(), "operator ack")
		},
		func() { publish(col, gw1Topics.Ack(), "collector ack") }, "collector ack")

	cmds := listen(gw1, gw1Topics.Commands())
	check("commands only from the operator", cmds,
		func() {
			publish(intruder, gw1Topics.Base()+"/cmd/ping", "intruder cmd")
			publish(col, gw1Topics.Base()+"/cmd/ping", "collector cmd")
		},
		func() { publish(op, gw1Topics.Base()+"/cmd/ping", "operator cmd") }, "operator cmd")

	// A gateway cannot read another's acks.
	spy := listen(gw1, gw2Topics.Ack())
	theirs := listen(gw2, gw2Topics.Ack())
	publish(col, gw2Topics.Ack(), "for gw-2")
	dlWait(t, "gw-2's ack", 10*time.Second, func() bool {
		theirs.mu.Lock()
		defer theirs.mu.Unlock()
		return len(theirs.got) == 1
	})
	spy.mu.Lock()
	defer spy.mu.Unlock()
	if len(spy.got) != 0 {
		t.Errorf("gw-1 read gw-2's acks: %q", spy.got)
	}

	// Every filter a gateway subscribes (the uplink sends them in one
	// SUBSCRIBE and fails the session on a refusal) is granted to it, and
	// the operator may publish on each (the desired config and model
	// offers are retained).
	mt := modelsync.Topics{Site: "s1", Gateway: "gw-1"}
	filters := map[string]byte{gw1Topics.Commands(): 1, gw1Topics.Ack(): 1, gw1Topics.Config(): 1, gw1Topics.SiteConfig(): 1,
		mt.Offer(): 1, mt.SiteOffer(): 1, mt.Block(): 1}
	tok := gw1.SubscribeMultiple(filters, func(paho.Client, paho.Message) {})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("gateway subscribe: %v", tok.Error())
	}
	for f, q := range tok.(*paho.SubscribeToken).Result() {
		if q == 0x80 {
			t.Errorf("the example ACL refuses the gateway's filter %s", f)
		}
	}
	// Only the operator's desired config reaches the gateway, and only
	// that gateway (mosquitto grants the subscription and filters at
	// delivery).
	cfgSpy := listen(gw2, gw1Topics.Config())
	cfgs := listen(gw1, gw1Topics.Config())
	check("desired config only from the operator", cfgs,
		func() { publish(intruder, gw1Topics.Config(), "intruder config") },
		func() { publish(op, gw1Topics.Config(), "operator config") }, "operator config")
	cfgSpy.mu.Lock()
	defer cfgSpy.mu.Unlock()
	if len(cfgSpy.got) != 0 {
		t.Errorf("gw-2 read gw-1's desired config: %q", cfgSpy.got)
	}
}
