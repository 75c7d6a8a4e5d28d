package uplink

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/shelfgate/shelfgate/gateway"
	"github.com/shelfgate/shelfgate/gateway/compress"
	"github.com/shelfgate/shelfgate/gateway/uplink/connfail"
	"github.com/shelfgate/shelfgate/gateway/wire/shelfv1"
)

// Store is what the uplink needs of the outbox.
type Store interface {
	Read(ctx context.Context, c gateway.Class, after int64, limit int, buf []gateway.Record) ([]gateway.Record, error)
	Ack(ctx context.Context, c gateway.Class, lo, hi int64) error
	Notify() <-chan struct{}
	// LastID is the highest id committed so far (of any class).
	LastID() int64
}

// Codec is the wire protocol the lanes and the status use
// (gateway/wire/shelfv1.Codec is v1).
type Codec interface {
	// BatchTopic is the topic a class's batches are published on.
	BatchTopic(c gateway.Class) string
	// AppendBatch appends the message carrying recs (all of ref.Class) to
	// buf; it must not retain recs.
	AppendBatch(buf []byte, ref gateway.BatchRef, sent time.Time, recs []gateway.Record) []byte
	// StatusTopic is the retained status topic (birth, last will, offline).
	StatusTopic() string
	// Status is a status body; a zero now marks the last will, fixed at connect.
	Status(state, reason string, fields map[string]any, now time.Time) []byte
}

// Downlink receives the messages of its filters (gateway/downlink.Router).
// The uplink subscribes every filter on each session, calls the filter's
// function for each message (it must not block), and runs Run for as long
// as Run of the uplink runs.
type Downlink interface {
	Routes() map[string]func(topic string, payload []byte)
	Run(ctx context.Context) error
}

var _ Codec = shelfv1.Codec{}

// Options configure the uplink. Zero values take the defaults noted.
type Options struct {
	Brokers  []string // tcp://host:port, ssl://host:port; tried in turn
	ClientID string   // default "shelfgate-<site>-<gateway>"
	Topics   shelfv1.Topics
	// Codec encodes batches and statuses; default shelfv1.Codec{Topics}.
	Codec    Codec
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
	// ConsumerAcks keeps rows until the cloud consumer confirms them (see
	// Confirm), instead of deleting them at the broker's PUBACK. Use it
	// with a broker that acknowledges before it persists (mosquitto saves
	// only every autosave_interval): a broker crash then costs re-sends,
	// not data.
	ConsumerAcks bool
	// ConsumerAckTimeout is how long a row may stay unconfirmed after its
	// PUBACK before it is sent again; default 30s.
	ConsumerAckTimeout time.Duration
	// BatchKey (32 bytes, kept across restarts: outbox.Secret) keys the tag
	// each batch carries, which a consumer ack must echo. Without one a
	// random key is made per process, so acks of batches sent before a
	// restart are rejected (their rows are then sent again, not lost).
	BatchKey []byte
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
	// Downlink receives what the broker sends (commands, consumer acks,
	// ...); nil subscribes to nothing.
	Downlink Downlink
	Logger   *slog.Logger
}

func (o *Options) defaults() {
	if o.ClientID == "" {
		o.ClientID = "shelfgate-" + o.Topics.Site + "-" + o.Topics.Gateway
	}
	if o.Codec == nil {
		o.Codec = shelfv1.Codec{Topics: o.Topics}
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

// Stats are the uplink's counters. Rejected consumer acks are counted by
// the downlink router under the ack handler (reasons in Confirm's errors).
type Stats struct {
	Connected bool
	Connects  int64 // successful connections
	Messages  int64 // PUBLISHes acknowledged
	Delivered int64 // records acknowledged (including re-sends)
	Resent    int64 // records sent again after a connection loss
	InFlight  int64 // messages awaiting PUBACK
	Confirmed int64 // consumer acks applied
	Rewinds   int64 // lanes rewound to re-send rows the consumer did not confirm
	// Takeovers counts sessions the broker closed within 10 s of
	// connecting. Several a minute mean another client uses the same
	// client id (a duplicate gateway.id): logged at ERROR once per episode.
	Takeovers int64
	Flushes   int64 // Flush calls
}

// Uplink delivers a Store to an MQTT broker. Create it with New and call Run.
type Uplink struct {
	store Store
	opts  Options
	codec Codec
	log   *slog.Logger
	zstd  *compress.Encoder // nil unless Options.Compress
	tags  *tagger
	seen  *recent // batch tags confirmed lately, to reject replays

	connected atomic.Bool
	connects  atomic.Int64
	messages  atomic.Int64
	delivered atomic.Int64
	resent    atomic.Int64
	inflight  atomic.Int64
	confirmed atomic.Int64
	rewinds   atomic.Int64
	takeovers atomic.Int64
	live      atomic.Pointer[live] // the session's client, nil between sessions
	// kick carries Flush to Run (a reconnect now) or the session (wake
	// every lane); flushGen tells lanes to skip lingering and the replay
	// bucket for their next batch.
	kick     chan struct{}
	flushGen atomic.Int64
	flushes  atomic.Int64

	// acked[c] is the highest id of class c below which everything sent was acknowledged.
	ackedMu sync.Mutex
	acked   [numClasses]int64
	sentMax [numClasses]int64

	tuned  atomic.Pointer[tuned] // what Tune may change while lanes run (tune.go)
	tuneMu sync.Mutex

	// publishing counts the paho Publish calls in progress (publish),
	// those a session stopped waiting for included; Run waits for them
	// before it returns. publishMu orders publish's check and Add before
	// Run's Wait: after Run closed it, nothing is handed to paho.
	publishing sync.WaitGroup
	publishMu  sync.Mutex
	pubClosed  bool
}

// live is a session's client and its context, done when the session ends.
type live struct {
	c   paho.Client
	ctx context.Context
}

// New returns an uplink for store.
func New(store Store, opts Options) (*Uplink, error) {
	opts.defaults()
	if len(opts.Brokers) == 0 {
		return nil, errors.New("uplink: no broker URL")
	}
	if err := opts.Topics.Validate(); err != nil {
		return nil, fmt.Errorf("uplink: %w", err)
	}
	key := opts.BatchKey
	if len(key) == 0 {
		key = make([]byte, 32)
		rand.Read(key)
	} else if len(key) < 16 {
		return nil, fmt.Errorf("uplink: batch key of %d bytes; want at least 16 (32 from outbox.Secret)", len(key))
	}
	u := &Uplink{store: store, opts: opts, codec: opts.Codec, log: opts.Logger, tags: newTagger(key), seen: newRecent(4096), kick: make(chan struct{}, 1)}
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
		Confirmed: u.confirmed.Load(), Rewinds: u.rewinds.Load(), Takeovers: u.takeovers.Load(), Flushes: u.flushes.Load(),
	}
}

// Flush asks for a delivery attempt now: between sessions the uplink
// reconnects at once instead of waiting out its backoff; in a session
// every lane sends what it has without lingering for a fuller batch or
// waiting for the replay rate's bucket (once). It does not wait; it
// reports whether a session was up.
func (u *Uplink) Flush() (connected bool) {
	u.flushes.Add(1)
	u.flushGen.Add(1)
	select {
	case u.kick <- struct{}{}:
	default:
	}
	return u.connected.Load()
}

// ErrNotConnected is returned by Publish between sessions.
var ErrNotConnected = errors.New("uplink: not connected")

// Publish sends payload on topic at QoS 1 without waiting for the PUBACK:
// best effort, for messages whose durable copy goes through the outbox
// (command replies). It fails with ErrNotConnected between sessions and
// when the session ends before paho took the message.
func (u *Uplink) Publish(topic string, payload []byte) error {
	return u.publishLive(topic, false, payload)
}

// PublishRetained is Publish with the retain flag (the model status).
func (u *Uplink) PublishRetained(topic string, payload []byte) error {
	return u.publishLive(topic, true, payload)
}

// publishLive publishes on the current session's client. A message the
// session ended before paho took is ErrNotConnected, so the caller keeps
// it for the next session; so is a publish paho refused at once.
func (u *Uplink) publishLive(topic string, retained bool, payload []byte) error {
	l := u.live.Load()
	if l == nil {
		return ErrNotConnected
	}
	tok := u.publish(l.ctx, l.c, topic, retained, payload)
	if isDone(tok) && tok.Error() != nil {
		return fmt.Errorf("%w: %v", ErrNotConnected, tok.Error())
	}
	return nil
}

// Run connects, delivers and reconnects until ctx is done. On the way out it
// publishes a retained offline status and disconnects cleanly; rows not yet
// acknowledged stay in the store for the next run. It runs the Downlink
// alongside and returns after it returned.
func (u *Uplink) Run(ctx context.Context) error {
	u.publishMu.Lock()
	u.pubClosed = false
	u.publishMu.Unlock()
	defer func() {
		u.publishMu.Lock()
		u.pubClosed = true
		u.publishMu.Unlock()
		u.publishing.Wait()
	}()
	var wg sync.WaitGroup
	defer wg.Wait()
	if u.opts.Downlink != nil {
		dctx, stop := context.WithCancel(ctx)
		defer stop() // before wg.Wait: deferred calls run last-in first-out
		wg.Go(func() {
			if err := u.opts.Downlink.Run(dctx); err != nil {
				u.log.Error("downlink", "err", err)
			}
		})
	}
	backoff := u.opts.BackoffMin
	var (
		tw        takeoverWatch
		failures  int       // connection attempts failed since the last session
		downSince time.Time // when the last session ended (zero before the first)
	)
	for attempt := 0; ; attempt++ {
		if ctx.Err() != nil {
			return nil
		}
		url := u.opts.Brokers[attempt%len(u.opts.Brokers)]
		u.log.Debug("connecting to broker", "broker", url, "failures", failures, "client_id", u.opts.ClientID)
		client, lost, conn, err := u.connect(ctx, url)
		// Full jitter: a fleet coming back from an outage does not reconnect in step.
		sleep := time.Duration(mrand.Int64N(int64(backoff))) + u.opts.BackoffMin/2
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			failures++
			u.logConnectFailure(url, err, sleep, failures)
		} else {
			start, acked, records := time.Now(), u.messages.Load(), u.delivered.Load()
			u.connected.Store(true)
			u.connects.Add(1)
			args := []any{"broker", url, "failed_attempts", failures}
			if !downSince.IsZero() {
				args = append(args, "down_for", start.Sub(downSince).Round(time.Millisecond))
			}
			u.log.Info("connected to broker", args...)
			failures = 0
			err = u.session(ctx, client, lost, conn)
			u.connected.Store(false)
			if ctx.Err() != nil {
				u.goodbye(client)
				return nil
			}
			client.Disconnect(0)
			end := time.Now()
			lasted := end.Sub(start)
			downSince = end
			takeover, alarm := tw.note(end, lasted, lost.byBroker(err, lasted))
			if takeover {
				u.takeovers.Add(1)
			}
			if alarm {
				u.log.Error("likely duplicate gateway.id: the broker keeps closing this client's sessions right after they start, as it does when another client connects with the same client id (else something on the way closes connections)",
					"client_id", u.opts.ClientID, "broker", url, "takeovers", tw.count(), "within", takeoverPeriod)
			}
			// A session that delivered something (or lasted) proves the
			// broker works: reconnect quickly, as after a cut link, rather
			// than at the backoff earlier failures had built up.
			if u.messages.Load() > acked || lasted > u.opts.BackoffMax {
				backoff = u.opts.BackoffMin
				sleep = time.Duration(mrand.Int64N(int64(backoff))) + u.opts.BackoffMin/2
			}
			u.log.Warn("broker session ended", "broker", url, "err", err, "connected_for", lasted.Round(time.Millisecond), "retry_in", sleep.Round(time.Millisecond))
			u.log.Debug("session summary", "broker", url, "messages", u.messages.Load()-acked, "records", u.delivered.Load()-records, "inflight_at_end", u.inflight.Load())
			attempt-- // retry the same broker first after a working session
		}
		select {
		case <-ctx.Done():
			return nil
		case <-u.kick:
			u.log.Info("flush: reconnecting now instead of waiting", "retry_in_was", sleep.Round(time.Millisecond))
			backoff = u.opts.BackoffMin
			continue
		case <-time.After(sleep):
		}
		backoff = min(2*backoff, u.opts.BackoffMax)
	}
}

// logConnectFailure logs a failed connection attempt: at ERROR when only an
// operator can fix it (credentials, certificates), at WARN otherwise.
// retry_in is the wait actually slept before the next attempt.
func (u *Uplink) logConnectFailure(url string, err error, retryIn time.Duration, failures int) {
	args := []any{"broker", url, "err", err, "retry_in", retryIn.Round(time.Millisecond), "failures", failures}
	switch connfail.Classify(err) {
	case connfail.Auth:
		u.log.Error("broker refused the credentials (check broker.username and the password)", append(args, "username", u.opts.Username)...)
	case connfail.TLS:
		u.log.Error("TLS with the broker failed (check broker.tls: CA, client certificate, server name)", args...)
	default:
		u.log.Warn("broker connect failed", args...)
	}
}

func (u *Uplink) connect(ctx context.Context, url string) (paho.Client, *loss, *watchConn, error) {
	lost := &loss{done: make(chan struct{})}
	slot := new(connSlot)
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
		SetBinaryWill(u.codec.StatusTopic(), u.codec.Status(shelfv1.StateOffline, "", nil, time.Time{}), 1, true).
		SetProtocolVersion(4). // no silent fallback to 3.1, which turns "not authorized" into "bad protocol version"
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			lost.report(err)
		})
	if u.opts.Username != "" {
		o.SetUsername(u.opts.Username)
		o.SetPassword(u.opts.Password)
	}
	probe := new(connfail.CertProbe)
	if u.opts.TLS != nil || isTLSURL(url) {
		o.SetTLSConfig(probe.Wrap(u.opts.TLS))
	}
	c := paho.NewClient(o)
	tok := c.Connect()
	if !waitToken(ctx, tok, u.opts.ConnectTimeout+time.Second) {
		c.Disconnect(0)
		return nil, nil, nil, fmt.Errorf("connect to %s: no answer within %s", url, u.opts.ConnectTimeout+time.Second)
	}
	if err := tok.Error(); err != nil {
		return nil, nil, nil, fmt.Errorf("connect to %s: %w", url, probe.Explain(err))
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

// status is the retained status body: Birth's fields, then state, reason,
// gateway, site and time.
func (u *Uplink) status(state, reason string) []byte {
	var fields map[string]any
	if u.opts.Birth != nil {
		fields = u.opts.Birth()
	}
	return u.codec.Status(state, reason, fields, time.Now())
}

// goodbye publishes the retained offline status of a clean shutdown (with
// Birth's fields as they are now) and disconnects.
func (u *Uplink) goodbye(c paho.Client) {
	tok := c.Publish(u.codec.StatusTopic(), 1, true, u.status(shelfv1.StateOffline, "shutdown"))
	tok.WaitTimeout(2 * time.Second)
	c.Disconnect(250)
}

// session runs the lanes on a connected client until the connection is lost
// or falls silent (see watch), a publish fails or times out, or ctx is done.
// Every goroutine it starts has returned when it returns.
func (u *Uplink) session(ctx context.Context, c paho.Client, lost *loss, conn *watchConn) error {
	var wg sync.WaitGroup
	defer wg.Wait() // after cancel: deferred calls run last-in first-out
	sctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	fail := func(err error) { cancel(err) }
	u.live.Store(&live{c: c, ctx: sctx})
	defer u.live.Store(nil)
	wg.Go(func() { watch(sctx, conn, u.opts.KeepAlive, cancel) })
	wg.Go(func() {
		select {
		case <-lost.done:
			cancel(&lostError{lost.err})
		case <-sctx.Done():
		}
	})
	if tok := u.publish(sctx, c, u.codec.StatusTopic(), true, u.status(shelfv1.StateOnline, "")); !waitToken(sctx, tok, u.opts.AckTimeout) || tok.Error() != nil {
		if sctx.Err() != nil {
			return context.Cause(sctx)
		}
		return fmt.Errorf("publish birth status: %v", errOr(tok.Error(), "timed out"))
	}
	if err := u.subscribe(c); err != nil {
		return err
	}
	var wake [numClasses]chan struct{}
	for _, class := range []gateway.Class{gateway.ClassEvent, gateway.ClassTelemetry, gateway.ClassSamples} {
		wake[class] = make(chan struct{}, 1)
		l := u.newLane(c, class, wake[class])
		wg.Go(func() {
			if err := l.run(sctx); err != nil {
				fail(err)
			}
		})
	}
	wg.Go(func() { u.refreshStatus(sctx, c) })
	for {
		select {
		case <-u.kick:
			for _, w := range wake {
				select {
				case w <- struct{}{}:
				default:
				}
			}
		case <-u.store.Notify():
			for _, w := range wake {
				select {
				case w <- struct{}{}:
				default:
				}
			}
		case <-sctx.Done():
			return context.Cause(sctx)
		}
	}
}

// subscribe subscribes the downlink's filters, each with its own route, in
// one SUBSCRIBE packet: subscribed one at a time, a retained message on
// one filter (a model offer) could make the gateway ask for what arrives
// on another (its blocks) before that one was subscribed, and the answer
// was lost until the next re-request.
func (u *Uplink) subscribe(c paho.Client) error {
	if u.opts.Downlink == nil {
		return nil
	}
	routes := u.opts.Downlink.Routes()
	if len(routes) == 0 {
		return nil
	}
	filters := make(map[string]byte, len(routes))
	for filter, deliver := range routes {
		c.AddRoute(filter, func(_ paho.Client, m paho.Message) { deliver(m.Topic(), m.Payload()) })
		filters[filter] = 1
	}
	tok := c.SubscribeMultiple(filters, nil)
	if !tok.WaitTimeout(u.opts.AckTimeout) || tok.Error() != nil {
		return fmt.Errorf("subscribe to %d filters: %v", len(filters), errOr(tok.Error(), "timed out"))
	}
	if st, ok := tok.(*paho.SubscribeToken); ok {
		for filter, qos := range st.Result() {
			if qos == 0x80 {
				return fmt.Errorf("subscribe to %s: refused by the broker (check its ACL for this gateway)", filter)
			}
		}
	}
	return nil
}

// refreshStatus republishes the retained online status every StatusInterval.
func (u *Uplink) refreshStatus(ctx context.Context, c paho.Client) {
	t := time.NewTicker(u.opts.StatusInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			u.publish(ctx, c, u.codec.StatusTopic(), true, u.status(shelfv1.StateOnline, "")) // best effort; the next refresh follows
		}
	}
}

// publish is c.Publish at QoS 1 that stops waiting when ctx is done.
// paho's Publish hands the message to the connection's writer and waits up
// to its write timeout (AckTimeout) for it to take it; when the connection
// dies at that moment the writer may already be gone, and the call blocks
// for the whole timeout. A session waiting for its lanes could then not
// reconnect for that long (seen: a reset link reconnected after 20 s, when
// a model transfer had given up). A call given up on returns a failed
// token and finishes in the background; Run waits for it.
func (u *Uplink) publish(ctx context.Context, c paho.Client, topic string, retained bool, payload []byte) paho.Token {
	u.publishMu.Lock()
	if ctx.Err() != nil || u.pubClosed {
		// The session is over (or Run is): nothing to hand paho, and no
		// call for Run, which may be waiting already, to count.
		u.publishMu.Unlock()
		cause := ErrNotConnected
		if ctx.Err() != nil {
			cause = context.Cause(ctx)
		}
		return doneToken{fmt.Errorf("publish on %s: %w", topic, cause)}
	}
	u.publishing.Add(1)
	u.publishMu.Unlock()
	done := make(chan paho.Token, 1)
	go func() {
		defer u.publishing.Done()
		done <- c.Publish(topic, 1, retained, payload)
	}()
	select {
	case tok := <-done:
		return tok
	case <-ctx.Done():
		return doneToken{fmt.Errorf("publish on %s: %w", topic, context.Cause(ctx))}
	}
}

// doneToken is a completed paho.Token carrying err: a publish given up
// on, or (nil) a success in tests.
type doneToken struct{ err error }

func (t doneToken) Wait() bool                     { return true }
func (t doneToken) WaitTimeout(time.Duration) bool { return true }
func (t doneToken) Error() error                   { return t.err }
func (t doneToken) Done() <-chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}

func errOr(err error, s string) any {
	if err != nil {
		return err
	}
	return s
}

func isDone(t paho.Token) bool {
	select {
	case <-t.Done():
		return true
	default:
		return false
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
