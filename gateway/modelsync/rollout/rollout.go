// Package rollout is the cloud side of model sync (docs/model-sync.md): it
// offers a signed model to gateways over MQTT, canaries first, answers
// their block requests, follows their status topics and reports per
// gateway whether the model was promoted, rejected (with the reason),
// rolled back or timed out. shelfctl push and shelfbench use it.
package rollout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/shelfgate/shelfgate/gateway/modelsync"
	"github.com/shelfgate/shelfgate/gateway/wire/shelfv1"
)

// Outcomes of one gateway.
const (
	Promoted   = "promoted"
	Rejected   = "rejected"
	RolledBack = "rolled-back"
	TimedOut   = "timed-out"
	Stopped    = "stopped"     // the rollout stopped while this gateway was transferring
	NotOffered = "not-offered" // the rollout stopped before this gateway's turn
)

// Plan is one rollout.
type Plan struct {
	Site     string
	Gateways []string // in order: the first Canary are the canaries
	// Offer is the signed offer (modelsync.SignManifest), Manifest its
	// content, File the model file the manifest describes.
	Offer    []byte
	Manifest modelsync.Manifest
	File     []byte
	// Canary is how many gateways go first; the rest follow only when
	// failures stay within MaxFailures. 0 offers to all at once.
	Canary int
	// MaxFailures is how many gateways may fail before the rollout stops.
	MaxFailures int
	// Idle is how long a gateway may stay silent (no request, no status)
	// before it is timed out; default 2 minutes.
	Idle time.Duration
	// Tamper, if set, may replace a block before it is sent (fault
	// injection for tests and drills); nil sends blocks as they are.
	Tamper func(gateway string, index int, block []byte) []byte
	// Progress, if set, is called (from one goroutine at a time) when a
	// gateway's progress or outcome changes.
	Progress func(Progress)
}

// Progress is one gateway's state during the rollout.
type Progress struct {
	Gateway  string
	Blocks   int    // blocks in the model
	Served   int    // distinct blocks sent
	Resent   int    // blocks sent again (asked for more than once)
	State    string // the gateway's last reported state
	Outcome  string // "" while running
	Code     string // status code of a rejection
	Reason   string
	Started  time.Time
	Finished time.Time
}

// Result is the final Progress of every gateway, in Plan order.
type Result []Progress

// AllPromoted reports whether every gateway promoted the model.
func (r Result) AllPromoted() bool {
	for _, p := range r {
		if p.Outcome != Promoted {
			return false
		}
	}
	return len(r) > 0
}

// gw is one gateway's rollout state (Runner.mu held).
type gw struct {
	Progress
	offered  bool
	last     time.Time
	served   map[int]bool
	promoted bool
}

// Runner runs a Plan over an MQTT client.
type Runner struct {
	c       paho.Client
	plan    Plan
	offerID string
	blks    [][]byte

	mu   sync.Mutex
	gws  map[string]*gw
	reqs chan request
	poke chan struct{}
}

type request struct {
	gw  string
	idx []int
}

// Run runs plan over c (connected) until every gateway has an outcome or
// ctx is done (the rest are timed out).
func Run(ctx context.Context, c paho.Client, plan Plan) (Result, error) {
	if plan.Idle <= 0 {
		plan.Idle = 2 * time.Minute
	}
	if len(plan.Gateways) == 0 {
		return nil, errors.New("rollout: no gateways")
	}
	r := &Runner{c: c, plan: plan, offerID: modelsync.OfferID(plan.Offer), blks: modelsync.SplitBlocks(plan.Manifest, plan.File), gws: map[string]*gw{},
		reqs: make(chan request, 1024), poke: make(chan struct{}, 1)}
	for _, g := range plan.Gateways {
		if _, dup := r.gws[g]; dup {
			return nil, fmt.Errorf("rollout: gateway %q listed twice", g)
		}
		r.gws[g] = &gw{Progress: Progress{Gateway: g, Blocks: plan.Manifest.Blocks}, served: map[int]bool{}}
	}
	base := shelfv1.TopicRoot + "/" + plan.Site + "/+/model/"
	for _, sub := range []struct {
		filter string
		h      func(string, []byte)
	}{{base + "request", r.onRequest}, {base + "status", r.onStatus}} {
		h := sub.h
		tok := c.Subscribe(sub.filter, 1, func(_ paho.Client, m paho.Message) { h(m.Topic(), m.Payload()) })
		if !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
			return nil, fmt.Errorf("rollout: subscribe %s: %v", sub.filter, tok.Error())
		}
		defer c.Unsubscribe(sub.filter)
	}
	sctx, stopServe := context.WithCancel(ctx)
	serveDone := make(chan struct{})
	go func() { defer close(serveDone); r.serve(sctx) }()
	defer func() { stopServe(); <-serveDone }()

	canary := min(max(plan.Canary, 0), len(plan.Gateways))
	stages := [][]string{plan.Gateways[:canary], plan.Gateways[canary:]}
	if canary == 0 {
		stages = stages[1:]
	}
	for i, stage := range stages {
		if len(stage) == 0 {
			continue
		}
		if err := r.offer(stage); err != nil {
			return r.result(), err
		}
		r.wait(ctx, stage)
		if r.failures() > plan.MaxFailures {
			for _, rest := range stages[i+1:] {
				r.mark(rest, NotOffered, "rollout stopped: failures over --max-failures")
			}
			break
		}
	}
	return r.result(), nil
}

func topicGateway(topic string) string {
	parts := strings.Split(topic, "/")
	if len(parts) < 5 {
		return ""
	}
	return parts[len(parts)-3]
}

func (r *Runner) offer(gws []string) error {
	now := time.Now()
	r.mu.Lock()
	for _, g := range gws {
		s := r.gws[g]
		s.offered, s.last, s.Started, s.State = true, now, now, "offered"
	}
	r.mu.Unlock()
	for _, g := range gws {
		t := modelsync.Topics{Site: r.plan.Site, Gateway: g}
		tok := r.c.Publish(t.Offer(), 1, true, r.plan.Offer)
		if !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
			return fmt.Errorf("rollout: offer to %s: %v", g, tok.Error())
		}
		r.report(g)
	}
	return nil
}

// wait returns when every gateway of the stage has an outcome, stopping
// the others when failures pass the limit.
func (r *Runner) wait(ctx context.Context, stage []string) {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		now := time.Now()
		r.mu.Lock()
		open := 0
		var timedOut []string
		for _, g := range stage {
			s := r.gws[g]
			if s.Outcome != "" {
				continue
			}
			if ctx.Err() != nil || now.Sub(s.last) > r.plan.Idle {
				s.Outcome, s.Finished = TimedOut, now
				s.Reason = fmt.Sprintf("no request or status for %s (last state %q, %d of %d blocks)", r.plan.Idle, s.State, len(s.served), s.Blocks)
				timedOut = append(timedOut, g)
				continue
			}
			open++
		}
		r.mu.Unlock()
		for _, g := range timedOut {
			r.report(g)
		}
		if open == 0 {
			return
		}
		if r.failures() > r.plan.MaxFailures {
			r.mark(stage, Stopped, "rollout stopped: failures over --max-failures")
			return
		}
		select {
		case <-tick.C:
		case <-r.poke:
		case <-ctx.Done():
		}
	}
}

// mark gives every gateway of gws without an outcome this one, and clears
// its retained offer.
func (r *Runner) mark(gws []string, outcome, reason string) {
	for _, g := range gws {
		r.mu.Lock()
		s := r.gws[g]
		set := s.Outcome == ""
		if set {
			s.Outcome, s.Reason, s.Finished = outcome, reason, time.Now()
		}
		offered := s.offered
		r.mu.Unlock()
		if set && offered {
			t := modelsync.Topics{Site: r.plan.Site, Gateway: g}
			r.c.Publish(t.Offer(), 1, true, []byte{}).WaitTimeout(10 * time.Second)
		}
		if set {
			r.report(g)
		}
	}
}

func (r *Runner) failures() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, s := range r.gws {
		if s.Outcome != "" && s.Outcome != Promoted {
			n++
		}
	}
	return n
}

func (r *Runner) result() Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(Result, 0, len(r.plan.Gateways))
	for _, g := range r.plan.Gateways {
		out = append(out, r.gws[g].Progress)
	}
	return out
}

func (r *Runner) report(g string) {
	if r.plan.Progress == nil {
		return
	}
	r.mu.Lock()
	p := r.gws[g].Progress
	r.mu.Unlock()
	r.plan.Progress(p)
}

func (r *Runner) wakeWait() {
	select {
	case r.poke <- struct{}{}:
	default:
	}
}

// onRequest queues a gateway's block request for the server goroutine.
func (r *Runner) onRequest(topic string, payload []byte) {
	g := topicGateway(topic)
	var req modelsync.Request
	if err := json.Unmarshal(payload, &req); err != nil || req.Version != r.plan.Manifest.Version || req.Name != r.plan.Manifest.Name {
		return
	}
	r.mu.Lock()
	s, ok := r.gws[g]
	live := ok && s.offered && s.Outcome == ""
	if live {
		s.last = time.Now()
	}
	r.mu.Unlock()
	if !live {
		return
	}
	select {
	case r.reqs <- request{gw: g, idx: req.Blocks}:
	default: // full: the gateway asks again after its quiet period
	}
}

// onStatus follows a gateway's retained status.
func (r *Runner) onStatus(topic string, payload []byte) {
	g := topicGateway(topic)
	var st modelsync.Status
	if len(payload) == 0 || json.Unmarshal(payload, &st) != nil {
		return
	}
	switch st.State {
	case modelsync.StateIdle, modelsync.StateWaitingClock, modelsync.StateTransferring, modelsync.StatePromoted,
		modelsync.StateRejected, modelsync.StateFailed, modelsync.StateRolledBack:
	default:
		return // not a model status
	}
	v := r.plan.Manifest.Version
	r.mu.Lock()
	s, ok := r.gws[g]
	if !ok || !s.offered || s.Outcome != "" {
		r.mu.Unlock()
		return
	}
	s.last, s.State = time.Now(), st.State
	// A rejection is ours when it names our offer (or, from a gateway
	// that does not say, when it is newer than the offer).
	fresh := st.OfferID == r.offerID || (st.OfferID == "" && !st.Time.Before(s.Started))
	switch {
	case st.Active.Version == v && st.Active.Name == r.plan.Manifest.Name && st.State != modelsync.StateRolledBack:
		s.Outcome, s.promoted = Promoted, true
	case st.State == modelsync.StateRolledBack && fresh:
		s.Outcome, s.Code, s.Reason = RolledBack, st.Code, st.Reason
	case (st.State == modelsync.StateRejected || st.State == modelsync.StateFailed) && fresh:
		s.Outcome, s.Code, s.Reason = Rejected, st.Code, st.Reason
	}
	if s.Outcome != "" {
		s.Finished = time.Now()
	}
	r.mu.Unlock()
	r.report(g)
	r.wakeWait()
}

// serve publishes the requested blocks (QoS1), keeping at most inflight
// PUBACKs outstanding: a sliding window (it waits for the oldest, not for
// a whole batch, so publishing never pauses for a full round trip).
func (r *Runner) serve(ctx context.Context) {
	const inflight = 64
	var toks []paho.Token // oldest first
	for {
		select {
		case <-ctx.Done():
			return
		case q := <-r.reqs:
			t := modelsync.Topics{Site: r.plan.Site, Gateway: q.gw}
			for _, i := range q.idx {
				if i < 0 || i >= len(r.blks) {
					continue
				}
				r.mu.Lock()
				s := r.gws[q.gw]
				if s.Outcome != "" {
					r.mu.Unlock()
					break
				}
				if s.served[i] {
					s.Resent++
				}
				s.served[i] = true
				s.Served = len(s.served)
				r.mu.Unlock()
				blk := r.blks[i]
				if r.plan.Tamper != nil {
					blk = r.plan.Tamper(q.gw, i, blk)
				}
				if len(toks) >= inflight {
					toks[0].WaitTimeout(30 * time.Second)
					toks = toks[1:]
				}
				toks = append(toks, r.c.Publish(t.Block(), 1, false, blk))
			}
			r.report(q.gw)
		}
	}
}
