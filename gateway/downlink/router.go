// Package downlink routes MQTT messages from the broker to handlers: each
// handler registers a topic filter and runs on its own goroutine behind a
// bounded queue with a payload cap, so a slow or hostile topic never blocks
// the MQTT client, the uplink's acks or another handler. Every message is
// either handled or rejected, and every rejection (oversize, queue full,
// malformed, handler error, or a reason the handler names) is counted per
// handler and reason and logged with topic, reason and size, rate-limited.
//
// The uplink (gateway/uplink) subscribes the Router's filters on every
// session and feeds it through Routes; the Router does not know MQTT.
package downlink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Rejection reasons the Router counts itself. Handlers name their own
// through Reject.
const (
	ReasonOversize  = "oversize"      // payload above the handler's MaxPayload
	ReasonQueueFull = "queue_full"    // the handler's queue was full
	ReasonMalformed = "malformed"     // a handler's Reject(ReasonMalformed, ...)
	ReasonError     = "handler_error" // the handler returned an error without a reason
)

// LogEvery is the most often one handler's rejections of one reason are
// logged; the first is logged at once, the rest are counted in the next
// line's "suppressed".
const LogEvery = 10 * time.Second

// Message is one message from the broker.
type Message struct {
	Topic   string
	Payload []byte
}

// Handler handles the messages of one filter, one at a time, on its own
// goroutine. An error rejects the message: its reason is counted (see
// Reject; other errors count as ReasonError) and logged.
type Handler interface {
	Handle(ctx context.Context, m Message) error
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, m Message) error

// Handle calls f.
func (f HandlerFunc) Handle(ctx context.Context, m Message) error { return f(ctx, m) }

// Options bound one handler. Zero values take the defaults noted.
type Options struct {
	Name       string // label in stats and logs; default the filter
	QueueLen   int    // messages waiting for the handler; default 64
	MaxPayload int    // larger payloads are rejected before queueing; default 64 KiB
	// MaxQueueBytes bounds the payload bytes waiting for the handler, so a
	// flood of large payloads (model blocks of up to 1 MiB) cannot hold
	// QueueLen × MaxPayload; default the larger of 4 MiB and 2 × MaxPayload.
	MaxQueueBytes int
}

// reasoned is an error that names its rejection reason.
type reasoned struct {
	reason string
	err    error
}

func (r *reasoned) Error() string  { return r.reason + ": " + r.err.Error() }
func (r *reasoned) Unwrap() error  { return r.err }
func (r *reasoned) Reason() string { return r.reason }

// Reject returns an error that rejects a message for reason (a short
// snake_case word such as "malformed", "forged", "replayed").
func Reject(reason string, err error) error { return &reasoned{reason: reason, err: err} }

// ReasonOf returns the rejection reason of err: the first Reason() string
// method in its chain, else ReasonError.
func ReasonOf(err error) string {
	var r interface{ Reason() string }
	if errors.As(err, &r) && r.Reason() != "" {
		return r.Reason()
	}
	return ReasonError
}

// ErrStarted is returned by Handle once Run has started.
var ErrStarted = errors.New("downlink: handlers must be registered before Run")

// HandlerStats are one handler's counters.
type HandlerStats struct {
	Name     string
	Filter   string
	Received int64            // messages routed to the handler (all, rejected included)
	Handled  int64            // messages the handler returned nil for
	Queued   int              // messages waiting now
	Rejected map[string]int64 // by reason
}

// Router routes messages to handlers. Register handlers with Handle, then
// call Run (the uplink does, when it is given the Router).
type Router struct {
	log      *slog.Logger
	mu       sync.Mutex
	started  bool
	handlers []*route
}

// New returns a Router that logs rejections to log (nil: discarded).
func New(log *slog.Logger) *Router {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Router{log: log}
}

type route struct {
	filter string
	opts   Options
	h      Handler
	queue  chan Message
	bytes  atomic.Int64 // payload bytes in queue

	received atomic.Int64
	handled  atomic.Int64

	mu       sync.Mutex
	rejected map[string]int64
	logged   map[string]time.Time // reason -> last log line
	quiet    map[string]int64     // reason -> rejections not logged since
}

// Handle registers h for the messages matching filter (an MQTT filter with
// + and # wildcards). Overlapping filters each get their own copy.
func (r *Router) Handle(filter string, h Handler, opts Options) error {
	if err := validFilter(filter); err != nil {
		return fmt.Errorf("downlink: filter %q: %w", filter, err)
	}
	if h == nil {
		return fmt.Errorf("downlink: filter %q: nil handler", filter)
	}
	if opts.Name == "" {
		opts.Name = filter
	}
	if opts.QueueLen <= 0 {
		opts.QueueLen = 64
	}
	if opts.MaxPayload <= 0 {
		opts.MaxPayload = 64 << 10
	}
	if opts.MaxQueueBytes <= 0 {
		opts.MaxQueueBytes = max(4<<20, 2*opts.MaxPayload)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.started {
		return ErrStarted
	}
	for _, o := range r.handlers {
		if o.filter == filter {
			return fmt.Errorf("downlink: filter %q registered twice", filter)
		}
	}
	r.handlers = append(r.handlers, &route{filter: filter, opts: opts, h: h, queue: make(chan Message, opts.QueueLen),
		rejected: map[string]int64{}, logged: map[string]time.Time{}, quiet: map[string]int64{}})
	return nil
}

// Routes returns each filter with the function that queues its messages.
// The functions never block: a message that does not fit is rejected.
func (r *Router) Routes() map[string]func(topic string, payload []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := make(map[string]func(string, []byte), len(r.handlers))
	for _, h := range r.handlers {
		m[h.filter] = func(topic string, payload []byte) { r.deliver(h, topic, payload) }
	}
	return m
}

// Deliver queues a message for every handler whose filter matches topic
// (for tests and for callers without per-filter subscriptions).
func (r *Router) Deliver(topic string, payload []byte) {
	r.mu.Lock()
	hs := slices.Clone(r.handlers)
	r.mu.Unlock()
	for _, h := range hs {
		if Match(h.filter, topic) {
			r.deliver(h, topic, payload)
		}
	}
}

func (r *Router) deliver(h *route, topic string, payload []byte) {
	h.received.Add(1)
	if len(payload) > h.opts.MaxPayload {
		r.reject(h, topic, len(payload), ReasonOversize, fmt.Errorf("payload of %d bytes exceeds %d", len(payload), h.opts.MaxPayload))
		return
	}
	if n := h.bytes.Add(int64(len(payload))); n > int64(h.opts.MaxQueueBytes) {
		h.bytes.Add(-int64(len(payload)))
		r.reject(h, topic, len(payload), ReasonQueueFull, fmt.Errorf("%d bytes already waiting (at most %d)", n-int64(len(payload)), h.opts.MaxQueueBytes))
		return
	}
	select {
	case h.queue <- Message{Topic: topic, Payload: payload}:
	default:
		h.bytes.Add(-int64(len(payload)))
		r.reject(h, topic, len(payload), ReasonQueueFull, fmt.Errorf("%d messages already waiting", cap(h.queue)))
	}
}

// reject counts a rejection and logs it: the first of each reason at once,
// then at most one line per reason every LogEvery with the count of those
// not logged in between.
func (r *Router) reject(h *route, topic string, size int, reason string, err error) {
	now := time.Now()
	h.mu.Lock()
	h.rejected[reason]++
	last, seen := h.logged[reason]
	if seen && now.Sub(last) < LogEvery {
		h.quiet[reason]++
		h.mu.Unlock()
		return
	}
	suppressed := h.quiet[reason]
	h.logged[reason], h.quiet[reason] = now, 0
	h.mu.Unlock()
	r.log.Warn("downlink message rejected", "handler", h.opts.Name, "topic", topic, "reason", reason, "bytes", size, "err", err, "suppressed", suppressed)
}

// Run runs every handler on its own goroutine until ctx is done and waits
// for them. Messages still queued then are dropped (not counted: the broker
// redelivers nothing to a clean session, and each handler's protocol
// tolerates a lost message: an ack is re-earned by a re-send, a command is
// retried by its sender with the same id).
func (r *Router) Run(ctx context.Context) error {
	r.mu.Lock()
	r.started = true
	hs := slices.Clone(r.handlers)
	r.mu.Unlock()
	var wg sync.WaitGroup
	for _, h := range hs {
		wg.Go(func() { r.serve(ctx, h) })
	}
	wg.Wait()
	return nil
}

func (r *Router) serve(ctx context.Context, h *route) {
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-h.queue:
			h.bytes.Add(-int64(len(m.Payload)))
			if err := h.h.Handle(ctx, m); err != nil {
				if ctx.Err() != nil {
					return
				}
				r.reject(h, m.Topic, len(m.Payload), ReasonOf(err), err)
				continue
			}
			h.handled.Add(1)
		}
	}
}

// Stats returns a snapshot of every handler's counters, in registration order.
func (r *Router) Stats() []HandlerStats {
	r.mu.Lock()
	hs := slices.Clone(r.handlers)
	r.mu.Unlock()
	out := make([]HandlerStats, 0, len(hs))
	for _, h := range hs {
		h.mu.Lock()
		rej := maps.Clone(h.rejected)
		h.mu.Unlock()
		out = append(out, HandlerStats{Name: h.opts.Name, Filter: h.filter, Received: h.received.Load(),
			Handled: h.handled.Load(), Queued: len(h.queue), Rejected: rej})
	}
	return out
}

// Match reports whether topic matches the MQTT filter (+ one level, #
// the rest). Topics starting with $ match no wildcard at the first level.
func Match(filter, topic string) bool {
	if strings.HasPrefix(topic, "$") && (strings.HasPrefix(filter, "+") || strings.HasPrefix(filter, "#")) {
		return false
	}
	for {
		f, frest, fmore := strings.Cut(filter, "/")
		if f == "#" {
			return true
		}
		t, trest, tmore := strings.Cut(topic, "/")
		if f != "+" && f != t {
			return false
		}
		if !fmore || !tmore {
			return fmore == tmore || (!tmore && frest == "#")
		}
		filter, topic = frest, trest
	}
}

func validFilter(f string) error {
	if f == "" {
		return errors.New("empty")
	}
	levels := strings.Split(f, "/")
	for i, l := range levels {
		if l == "#" && i != len(levels)-1 {
			return errors.New("# is not the last level")
		}
		if len(l) > 1 && strings.ContainsAny(l, "+#") {
			return fmt.Errorf("level %q mixes a wildcard with text", l)
		}
	}
	return nil
}
