package uplink

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/shelfgate/shelfgate/gateway"
	"github.com/shelfgate/shelfgate/gateway/compress"
)

// Store is what the uplink needs of the outbox.
type Store interface {
	Read(ctx context.Context, c gateway.Class, after int64, limit int, buf []gateway.Record) ([]gateway.Record, error)
	Ack(ctx context.Context, c gateway.Class, lo, hi int64) error
	Notify() <-chan struct{}
	// LastID is the highest id committed so far (of any class).
	LastID() int64
}

// Options configure the uplink. Zero values take the defaults noted.
type Options struct {
	Brokers  []string // tcp://host:port, ssl://host:port; tried in turn
	ClientID string   // default "shelfgate-<site>-<gateway>"
	Topics   gateway.Topics
	Username string
	Password string
	TLS      *tls.Config

	KeepAlive      time.Duration // default 10s
	ConnectTimeout time.Duration // default 5s
	AckTimeout     time.Duration // a PUBACK later than this ends the session; default 20s
	BatchRecords   int           // records per telemetry message; default 500
	BatchBytes     int           // soft byte limit of a message; default 256 KiB
	BatchLinger    time.Duration // how long a part-full telemetry batch may wait for more rows; default 20ms, <0 = never
	Window         int           // telemetry messages in flight; default 32
	EventWindow    int           // event messages in flight; default 8
	// ConsumerAcks keeps rows until the cloud consumer confirms them on
	// .../ack (see ConsumerAck), instead of deleting them at the broker's
	// PUBACK. Use it with a broker that acknowledges before it persists
	// (mosquitto saves only every autosave_interval): a broker crash then
	// costs re-sends, not data.
	ConsumerAcks bool
	// ConsumerAckTimeout is how long a row may stay unconfirmed after its
	// PUBACK before it is sent again; default 30s.
	ConsumerAckTimeout time.Duration
	// Compress sends batches as zstd frames (gateway/compress); consumers
	// tell them from JSON by the zstd magic number.
	Compress bool
	// ReplayRate caps the telemetry lane at this many records/s (0 = no
	// cap), with a one-second burst, so a fleet reconnecting after an outage
	// does not flood the broker with its backlogs. Set it above the live
	// rate; events are never limited.
	ReplayRate int
	BackoffMin time.Duration // default 250ms
	BackoffMax time.Duration // default 10s

	// Birth returns extra fields for the retained online status, which is
	// published on connect and again every StatusInterval.
	Birth func() map[string]any
	// StatusInterval is how often the retained status is refreshed while
	// connected (backlog, shed counts, ...); default 60s.
	StatusInterval time.Duration
	// Commands handles downlink commands; nil answers only "ping".
	Commands func(ctx context.Context, name string, payload []byte) (any, error)
	Logger   *slog.Logger
}

func (o *Options) defaults() {
	if o.ClientID == "" {
		o.ClientID = "shelfgate-" + o.Topics.Site + "-" + o.Topics.Gateway
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.KeepAlive, 10*time.Second)
	def(&o.ConnectTimeout, 5*time.Second)
	def(&o.AckTimeout, 20*time.Second)
	def(&o.BackoffMin, 250*time.Millisecond)
	def(&o.BackoffMax, 10*time.Second)
	def(&o.ConsumerAckTimeout, 30*time.Second)
	def(&o.StatusInterval, time.Minute)
	if o.BatchLinger == 0 {
		o.BatchLinger = 20 * time.Millisecond
	}
	if o.BatchRecords <= 0 {
		o.BatchRecords = 500
	}
	if o.BatchBytes <= 0 {
		o.BatchBytes = 256 << 10
	}
	if o.Window <= 0 {
		o.Window = 32
	}
	if o.EventWindow <= 0 {
		o.EventWindow = 8
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Stats are the uplink's counters.
type Stats struct {
	Connected   bool
	Connects    int64 // successful connections
	Messages    int64 // PUBLISHes acknowledged
	Delivered   int64 // records acknowledged (including re-sends)
	Resent      int64 // records sent again after a connection loss
	InFlight    int64 // messages awaiting PUBACK
	CommandsIn  int64
	CommandsBad int64 // dropped: queue full or malformed
	Confirmed   int64 // consumer acks applied
	ConfirmsBad int64 // consumer acks dropped: queue full or malformed
	Rewinds     int64 // lanes rewound to re-send rows the consumer did not confirm
}

// Uplink delivers a Store to an MQTT broker. Create it with New and call Run.
type Uplink struct {
	store Store
	opts  Options
	log   *slog.Logger
	zstd  *compress.Encoder // nil unless Options.Compress

	connected   atomic.Bool
	connects    atomic.Int64
	messages    atomic.Int64
	delivered   atomic.Int64
	resent      atomic.Int64
	inflight    atomic.Int64
	commandsIn  atomic.Int64
	commandsBad atomic.Int64
	confirmed   atomic.Int64
	confirmsBad atomic.Int64
	rewinds     atomic.Int64

	// acked[c] is the highest id of class c below which everything sent was acknowledged.
	ackedMu sync.Mutex
	acked   [2]int64
	sentMax [2]int64
}

// New returns an uplink for store.
func New(store Store, opts Options) (*Uplink, error) {
	opts.defaults()
	if len(opts.Brokers) == 0 {
		return nil, errors.New("uplink: no broker URL")
	}
	if err := gateway.ValidTopicLevel(opts.Topics.Site); err != nil {
		return nil, fmt.Errorf("uplink: site: %w", err)
	}
	if err := gateway.ValidTopicLevel(opts.Topics.Gateway); err != nil {
		return nil, fmt.Errorf("uplink: gateway: %w", err)
	}
	u := &Uplink{store: store, opts: opts, log: opts.Logger}
	if opts.Compress {
		enc, err := compress.NewEncoder()
		if err != nil {
			return nil, fmt.Errorf("uplink: %w", err)
		}
		u.zstd = enc
	}
	return u, nil
}

// Stats returns a snapshot of the counters.
func (u *Uplink) Stats() Stats {
	return Stats{
		Connected: u.connected.Load(), Connects: u.connects.Load(), Messages: u.messages.Load(),
		Delivered: u.delivered.Load(), Resent: u.resent.Load(), InFlight: u.inflight.Load(),
		CommandsIn: u.commandsIn.Load(), CommandsBad: u.commandsBad.Load(),
		Confirmed: u.confirmed.Load(), ConfirmsBad: u.confirmsBad.Load(), Rewinds: u.rewinds.Load(),
	}
}

// Run connects, delivers and reconnects until ctx is done. On the way out it
// publishes a retained offline status and disconnects cleanly; rows not yet
// acknowledged stay in the store for the next run.
func (u *Uplink) Run(ctx context.Context) error {
	backoff := u.opts.BackoffMin
	for attempt := 0; ; attempt++ {
		if ctx.Err() != nil {
			return nil
		}
		url := u.opts.Brokers[attempt%len(u.opts.Brokers)]
		client, lost, conn, err := u.connect(ctx, url)
		if err != nil {
			u.log.Warn("broker connect failed", "broker", url, "err", err, "retry_in", backoff)
		} else {
			start, acked := time.Now(), u.messages.Load()
			u.connected.Store(true)
			u.connects.Add(1)
			u.log.Info("connected to broker", "broker", url)
			err = u.session(ctx, client, lost, conn)
			u.connected.Store(false)
			if ctx.Err() != nil {
				u.goodbye(client)
				return nil
			}
			client.Disconnect(0)
			u.log.Warn("broker session ended", "broker", url, "err", err)
			// A session that delivered something (or lasted) proves the
			// broker works: reconnect quickly, as after a cut link, rather
			// than at the backoff earlier failures had built up.
			if u.messages.Load() > acked || time.Since(start) > u.opts.BackoffMax {
				backoff = u.opts.BackoffMin
			}
			attempt-- // retry the same broker first after a working session
		}
		// Full jitter: a fleet coming back from an outage does not reconnect in step.
		sleep := time.Duration(rand.Int64N(int64(backoff))) + u.opts.BackoffMin/2
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(sleep):
		}
		backoff = min(2*backoff, u.opts.BackoffMax)
	}
}

func (u *Uplink) connect(ctx context.Context, url string) (paho.Client, <-chan struct{}, *watchConn, error) {
	lost := make(chan struct{})
	slot := new(connSlot)
	var once sync.Once
	offline, _ := json.Marshal(map[string]any{"state": "offline", "gateway": u.opts.Topics.Gateway, "site": u.opts.Topics.Site})
	o := paho.NewClientOptions().
		AddBroker(url).
		SetClientID(u.opts.ClientID).
		SetCleanSession(true).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetOrderMatters(false).
		SetKeepAlive(u.opts.KeepAlive).
		SetPingTimeout(max(u.opts.KeepAlive/2, time.Second)).
		SetConnectTimeout(u.opts.ConnectTimeout).
		SetWriteTimeout(u.opts.AckTimeout).
		SetCustomOpenConnectionFn(dialer(slot)).
		SetBinaryWill(u.opts.Topics.Status(), offline, 1, true).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			once.Do(func() { close(lost) })
		})
	if u.opts.Username != "" {
		o.SetUsername(u.opts.Username)
		o.SetPassword(u.opts.Password)
	}
	if u.opts.TLS != nil {
		o.SetTLSConfig(u.opts.TLS)
	}
	c := paho.NewClient(o)
	tok := c.Connect()
	if !waitToken(ctx, tok, u.opts.ConnectTimeout+time.Second) {
		c.Disconnect(0)
		return nil, nil, nil, fmt.Errorf("connect to %s: no answer within %s", url, u.opts.ConnectTimeout+time.Second)
	}
	if err := tok.Error(); err != nil {
		return nil, nil, nil, fmt.Errorf("connect to %s: %w", url, err)
	}
	conn := slot.p.Load()
	if conn == nil { // cannot happen: paho connected through dialer
		c.Disconnect(0)
		return nil, nil, nil, fmt.Errorf("connect to %s: no connection from the dialer", url)
	}
	return c, lost, conn, nil
}

// waitToken waits for tok up to d or until ctx is done; it reports whether tok completed.
func waitToken(ctx context.Context, tok paho.Token, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-tok.Done():
		return true
	case <-t.C:
		return false
	case <-ctx.Done():
		return false
	}
}

func (u *Uplink) birth() []byte { return u.status("online", "") }

// status is the retained status body: Birth's fields, then state, reason,
// gateway, site and time.
func (u *Uplink) status(state, reason string) []byte {
	m := map[string]any{}
	if u.opts.Birth != nil {
		for k, v := range u.opts.Birth() {
			m[k] = v
		}
	}
	m["state"] = state
	if reason != "" {
		m["reason"] = reason
	}
	m["gateway"] = u.opts.Topics.Gateway
	m["site"] = u.opts.Topics.Site
	m["time"] = time.Now().UTC().Format(time.RFC3339Nano)
	p, _ := json.Marshal(m)
	return p
}

// goodbye publishes the retained offline status of a clean shutdown (with
// Birth's fields as they are now) and disconnects.
func (u *Uplink) goodbye(c paho.Client) {
	tok := c.Publish(u.opts.Topics.Status(), 1, true, u.status("offline", "shutdown"))
	tok.WaitTimeout(2 * time.Second)
	c.Disconnect(250)
}

// session runs the lanes on a connected client until the connection is lost
// or falls silent (see watch), a publish fails or times out, or ctx is done.
func (u *Uplink) session(ctx context.Context, c paho.Client, lost <-chan struct{}, conn *watchConn) error {
	sctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go watch(sctx, conn, u.opts.KeepAlive, cancel)
	go func() {
		select {
		case <-lost:
			cancel(errors.New("connection lost"))
		case <-sctx.Done():
		}
	}()
	if tok := c.Publish(u.opts.Topics.Status(), 1, true, u.birth()); !tok.WaitTimeout(u.opts.AckTimeout) || tok.Error() != nil {
		return fmt.Errorf("publish birth status: %v", errOr(tok.Error(), "timed out"))
	}
	cmds := make(chan paho.Message, 64)
	sub := c.Subscribe(u.opts.Topics.Commands(), 1, func(_ paho.Client, m paho.Message) {
		select { // never block paho's router
		case cmds <- m:
		default:
			u.commandsBad.Add(1)
		}
	})
	if !sub.WaitTimeout(u.opts.AckTimeout) || sub.Error() != nil {
		return fmt.Errorf("subscribe to commands: %v", errOr(sub.Error(), "timed out"))
	}
	if u.opts.ConsumerAcks {
		confirms := make(chan paho.Message, 1024)
		sub := c.Subscribe(u.opts.Topics.Ack(), 1, func(_ paho.Client, m paho.Message) {
			select { // never block paho's router; a dropped ack only means a re-send
			case confirms <- m:
			default:
				u.confirmsBad.Add(1)
			}
		})
		if !sub.WaitTimeout(u.opts.AckTimeout) || sub.Error() != nil {
			return fmt.Errorf("subscribe to consumer acks: %v", errOr(sub.Error(), "timed out"))
		}
		go u.consumerAcks(sctx, confirms)
	}
	wake := [2]chan struct{}{make(chan struct{}, 1), make(chan struct{}, 1)}
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for _, c2 := range []gateway.Class{gateway.ClassEvent, gateway.ClassTelemetry} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := u.lane(sctx, c, c2, wake[c2]); err != nil {
				errs <- err
				cancel(err)
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		u.commands(sctx, c, cmds)
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(u.opts.StatusInterval)
		defer t.Stop()
		for {
			select {
			case <-sctx.Done():
				return
			case <-t.C:
				c.Publish(u.opts.Topics.Status(), 1, true, u.birth()) // best effort; the next refresh follows
			}
		}
	}()
	for {
		select {
		case <-u.store.Notify():
			for _, w := range wake {
				select {
				case w <- struct{}{}:
				default:
				}
			}
			continue
		case <-sctx.Done():
		}
		break
	}
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
	}
	return context.Cause(sctx)
}

func errOr(err error, s string) any {
	if err != nil {
		return err
	}
	return s
}

type flight struct {
	lo, hi int64
	n      int
	tok    paho.Token
	sent   time.Time
}

// lane delivers one class: it keeps up to a window of messages in flight and
// acks rows to the store in order as PUBACKs arrive.
func (u *Uplink) lane(ctx context.Context, c paho.Client, class gateway.Class, wake <-chan struct{}) error {
	window, limit := u.opts.Window, u.opts.BatchRecords
	if class == gateway.ClassEvent {
		window, limit = u.opts.EventWindow, min(limit, 100)
	}
	topic := u.opts.Topics.For(class)
	u.ackedMu.Lock()
	cursor := u.acked[class]
	resendTo := u.sentMax[class]
	u.ackedMu.Unlock()
	if u.opts.ConsumerAcks {
		cursor = 0 // every row still stored is unconfirmed: send it all again
	}
	// sentAt remembers the cursor over time, so a row still unconfirmed
	// ConsumerAckTimeout after it was sent can be found and sent again.
	var sentAt []checkpoint
	var (
		inflight     []flight
		buf          []gateway.Record
		poll         = time.NewTicker(time.Second)
		pendingSince time.Time // when a part-full batch was first seen
		linger       <-chan time.Time
		throttle     <-chan time.Time
		bucket       = newBucket(u.opts.ReplayRate, limit)
	)
	defer poll.Stop()
	defer func() { u.inflight.Add(-int64(len(inflight))) }()
	for {
		// Fill the window.
		for len(inflight) < window {
			if cursor >= u.store.LastID() {
				pendingSince = time.Time{}
				break // nothing new: skip the query
			}
			if linger != nil && u.store.LastID()-cursor < int64(limit) {
				break // still lingering and a full batch cannot exist yet
			}
			var err error
			buf, err = u.store.Read(ctx, class, cursor, limit, buf)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
			if len(buf) == 0 {
				pendingSince = time.Time{}
				break
			}
			if class == gateway.ClassTelemetry && len(buf) < limit && u.opts.BatchLinger > 0 {
				now := time.Now()
				if pendingSince.IsZero() {
					pendingSince = now
				}
				if wait := pendingSince.Add(u.opts.BatchLinger).Sub(now); wait > 0 {
					linger = time.After(wait)
					break
				}
			}
			pendingSince, linger = time.Time{}, nil
			if class == gateway.ClassTelemetry && bucket != nil {
				if wait := bucket.take(len(buf), time.Now()); wait > 0 {
					throttle = time.After(wait)
					break
				}
			}
			recs := buf
			payload := gateway.AppendBatch(make([]byte, 0, len(recs)*96+128), u.opts.Topics.Site, u.opts.Topics.Gateway, class, time.Now(), recs)
			for len(payload) > u.opts.BatchBytes && len(recs) > 1 {
				recs = recs[:len(recs)/2]
				payload = gateway.AppendBatch(payload[:0], u.opts.Topics.Site, u.opts.Topics.Gateway, class, time.Now(), recs)
			}
			if u.zstd != nil {
				payload = u.zstd.Compress(make([]byte, 0, len(payload)/4), payload)
			}
			lo, hi := recs[0].ID, recs[len(recs)-1].ID
			if lo <= resendTo {
				u.resent.Add(int64(len(recs)))
			}
			// payload is a fresh buffer per message: paho may still be writing
			// it after Publish returns, so it is never reused.
			tok := c.Publish(topic, 1, false, payload)
			inflight = append(inflight, flight{lo: cursor + 1, hi: hi, n: len(recs), tok: tok, sent: time.Now()})
			u.inflight.Add(1)
			cursor = hi
			u.ackedMu.Lock()
			u.sentMax[class] = max(u.sentMax[class], hi)
			u.ackedMu.Unlock()
		}
		// Retire completed messages at the front, in order.
		for len(inflight) > 0 {
			f := inflight[0]
			select {
			case <-f.tok.Done():
			default:
			}
			if !isDone(f.tok) {
				break
			}
			if err := f.tok.Error(); err != nil {
				return fmt.Errorf("publish %s ids %d-%d: %w", class, f.lo, f.hi, err)
			}
			if !u.opts.ConsumerAcks {
				if err := u.store.Ack(ctx, class, f.lo, f.hi); err != nil {
					if ctx.Err() != nil {
						return nil
					}
					return fmt.Errorf("ack %s ids %d-%d: %w", class, f.lo, f.hi, err)
				}
			}
			u.ackedMu.Lock()
			u.acked[class] = f.hi
			u.ackedMu.Unlock()
			u.messages.Add(1)
			u.delivered.Add(int64(f.n))
			u.inflight.Add(-1)
			inflight = inflight[1:]
		}
		// Wait for progress.
		var front <-chan struct{}
		var timeout <-chan time.Time
		if len(inflight) > 0 {
			front = inflight[0].tok.Done()
			d := time.Until(inflight[0].sent.Add(u.opts.AckTimeout))
			if d <= 0 {
				return fmt.Errorf("no PUBACK for %s ids %d-%d within %s", class, inflight[0].lo, inflight[0].hi, u.opts.AckTimeout)
			}
			timeout = time.After(d)
		}
		var more <-chan struct{}
		if len(inflight) < window && throttle == nil {
			more = wake
		}
		select {
		case <-ctx.Done():
			return nil
		case <-front:
		case <-timeout:
		case <-more:
		case <-linger:
			linger = nil
		case <-throttle:
			throttle = nil
		case now := <-poll.C:
			if !u.opts.ConsumerAcks {
				continue
			}
			sentAt = append(sentAt, checkpoint{now, cursor})
			// The cursor as it was ConsumerAckTimeout ago: rows at or below
			// it were sent long enough ago to have been confirmed.
			old := int64(0)
			for len(sentAt) > 0 && now.Sub(sentAt[0].at) >= u.opts.ConsumerAckTimeout {
				old = sentAt[0].cursor
				sentAt = sentAt[1:]
			}
			if old == 0 {
				continue
			}
			oldest, err := u.store.Read(ctx, class, 0, 1, nil)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
			if len(oldest) > 0 && oldest[0].ID <= old && oldest[0].ID <= cursor {
				cursor = oldest[0].ID - 1
				u.rewinds.Add(1)
				sentAt = sentAt[:0]
			}
		}
	}
}

type checkpoint struct {
	at     time.Time
	cursor int64
}

// consumerAcks applies consumer acks: the confirmed rows leave the outbox.
func (u *Uplink) consumerAcks(ctx context.Context, in <-chan paho.Message) {
	for {
		var m paho.Message
		select {
		case <-ctx.Done():
			return
		case m = <-in:
		}
		var a gateway.BatchAck
		if len(m.Payload()) > 1024 || json.Unmarshal(m.Payload(), &a) != nil || a.Lo <= 0 || a.Hi < a.Lo {
			u.confirmsBad.Add(1)
			continue
		}
		var class gateway.Class
		switch a.Class {
		case gateway.ClassTelemetry.String():
			class = gateway.ClassTelemetry
		case gateway.ClassEvent.String():
			class = gateway.ClassEvent
		default:
			u.confirmsBad.Add(1)
			continue
		}
		if err := u.store.Ack(ctx, class, a.Lo, a.Hi); err != nil {
			return // closed or cancelled
		}
		u.confirmed.Add(1)
	}
}

func isDone(t paho.Token) bool {
	select {
	case <-t.Done():
		return true
	default:
		return false
	}
}

// Command is the JSON request body of a downlink command; ID is echoed in the reply.
type Command struct {
	ID string `json:"id"`
}

// Reply is the JSON body published on .../cmd/<name>/reply.
type Reply struct {
	ID     string `json:"id"`
	OK     bool   `json:"ok"`
	Error  string `json:"error,omitempty"`
	Result any    `json:"result,omitempty"`
}

// MaxCommandBytes bounds a downlink command payload.
const MaxCommandBytes = 64 << 10

func (u *Uplink) commands(ctx context.Context, c paho.Client, in <-chan paho.Message) {
	for {
		var m paho.Message
		select {
		case <-ctx.Done():
			return
		case m = <-in:
		}
		u.commandsIn.Add(1)
		name := m.Topic()[strings.LastIndexByte(m.Topic(), '/')+1:]
		var cmd Command
		reply := Reply{}
		switch {
		case len(m.Payload()) > MaxCommandBytes:
			u.commandsBad.Add(1)
			reply.Error = fmt.Sprintf("payload of %d bytes exceeds %d", len(m.Payload()), MaxCommandBytes)
		case json.Unmarshal(m.Payload(), &cmd) != nil:
			u.commandsBad.Add(1)
			reply.Error = "payload is not a JSON object with an \"id\""
		default:
			reply.ID = cmd.ID
			var res any
			var err error
			switch {
			case u.opts.Commands != nil:
				res, err = u.opts.Commands(ctx, name, m.Payload())
			case name == "ping":
				res = "pong"
			default:
				err = fmt.Errorf("unknown command %q", name)
			}
			reply.OK, reply.Result = err == nil, res
			if err != nil {
				reply.Error = err.Error()
			}
		}
		p, _ := json.Marshal(reply)
		c.Publish(u.opts.Topics.Reply(name), 1, false, p) // best effort; not waited on
	}
}

// bucket is a token bucket of records per second with a one-second burst
// (at least one full batch).
type bucket struct {
	rate   float64
	burst  float64
	tokens float64
	last   time.Time
}

func newBucket(rate, batch int) *bucket {
	if rate <= 0 {
		return nil
	}
	b := float64(max(rate, batch))
	return &bucket{rate: float64(rate), burst: b, tokens: b}
}

// take spends n tokens and returns 0, or returns how long to wait before
// n tokens are there (spending nothing).
func (b *bucket) take(n int, now time.Time) time.Duration {
	if !b.last.IsZero() {
		b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	}
	b.last = now
	if b.tokens >= float64(n) {
		b.tokens -= float64(n)
		return 0
	}
	return time.Duration((float64(n) - b.tokens) / b.rate * float64(time.Second))
}
