package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/shelfgate/shelfgate/gateway"
	"github.com/shelfgate/shelfgate/gateway/classify"
	"github.com/shelfgate/shelfgate/gateway/config"
	"github.com/shelfgate/shelfgate/gateway/downlink"
	"github.com/shelfgate/shelfgate/gateway/modelsync"
	"github.com/shelfgate/shelfgate/gateway/uplink"
	"github.com/shelfgate/shelfgate/gateway/wire/shelfv1"
	"github.com/shelfgate/shelfgate/model"
)

// Queue bounds of the model handlers: offers are rare; a request asks for
// at most a window of blocks (2 MiB, at most 64 blocks: modelsync's
// default), so 64 blocks or 8 MiB hold a window and its re-sends while a
// flood of large blocks cannot queue 64 × max_block_size.
const (
	modelOfferQueue      = 16
	modelBlockQueue      = 64
	modelBlockQueueBytes = 8 << 20
	maxQueuedRequest     = 64
)

// modelUplink is what model sync needs of the uplink: best-effort QoS1
// publishes (plain and retained) and the session count, to re-publish the
// retained status on each new session.
type modelUplink interface {
	Publish(topic string, payload []byte) error
	PublishRetained(topic string, payload []byte) error
	Stats() uplink.Stats
}

var (
	_ modelUplink         = (*uplink.Uplink)(nil)
	_ modelsync.Requester = (*modelPublisher)(nil)
)

// modelSync is the daemon's model lifecycle: the store, the Syncer and
// the publisher of its requests and status.
type modelSync struct {
	store  *modelsync.Store
	syncer *modelsync.Syncer
	pub    *modelPublisher
	bind   *modelBinder // nil without a plate model holder
	labels *labels
	events *modelEvents // nil without an outbox
}

// useLabels makes the sample book's labelled windows (nil: none) the
// evidence of the shadow evaluation and the health check.
func (ms *modelSync) useLabels(b *sampleBook) {
	if ms != nil && b != nil {
		ms.labels.set(b)
	}
}

// startModelSync opens the model store of cfg.Models (importing the bundled
// model into an empty one), registers the offer and block handlers with r,
// and runs the Syncer and the publisher until the returned stop is called
// (stop joins them and closes the store).
//
// With a plate model holder (nil without plates in model or shadow mode),
// a candidate is shadow-evaluated before promotion (plateEvaluator), a
// promoted model is swapped into the holder, and a promoted model that does
// not load into the classifier or fails its health check is rolled back
// (modelBinder); windows are the plates' recorded change windows.
// Promotions, shadow refusals and rollbacks are also events in ob
// (model_promoted, model_rejected, model_rolled_back; nil ob: none).
func startModelSync(ctx context.Context, cfg *config.Config, r *downlink.Router, up modelUplink, ob appender, holder *classify.Holder, windows modelWindows, log *slog.Logger) (*modelSync, func(), error) {
	return startModelSyncWith(ctx, cfg, r, up, ob, holder, windows, swapFromConfig(cfg.Models.WithDefaults(cfg.Outbox.Path).Shadow), log)
}

// startModelSyncWith is startModelSync with the shadow and health-check
// settings sw (zero fields take the defaults).
func startModelSyncWith(ctx context.Context, cfg *config.Config, r *downlink.Router, up modelUplink, ob appender, holder *classify.Holder, windows modelWindows, sw swapConfig, log *slog.Logger) (*modelSync, func(), error) {
	mc := cfg.Models.WithDefaults(cfg.Outbox.Path)
	keys, err := modelsync.LoadTrustedKeys(mc.TrustedKeys)
	if err != nil {
		return nil, nil, fmt.Errorf("models.trusted_keys: %w", err)
	}
	if len(keys) == 0 {
		log.Warn("models.trusted_keys is empty: every model offer will be refused")
	}
	store, err := modelsync.OpenStore(ctx, mc.Dir, modelsync.StoreOptions{
		Decode: model.DecodeOptions{TrustedKeys: keys, MaxSize: int(mc.MaxBytes)},
	})
	if err != nil {
		return nil, nil, fmt.Errorf("models.dir %s: %w", mc.Dir, err)
	}
	for _, fixed := range store.Recovered() {
		log.Warn("model store recovered from an interrupted install", "what", fixed)
	}
	if m, _ := store.Active(); m == nil && mc.BundledModel != "" {
		if err := importBundled(ctx, store, mc.BundledModel); err != nil {
			store.Close()
			return nil, nil, err
		}
		log.Info("bundled model installed", "path", mc.BundledModel)
	}
	topics := modelsync.Topics{Site: cfg.Gateway.Site, Gateway: cfg.Gateway.ID}
	pub := newModelPublisher(up, topics, log)
	scfg := modelsync.Config{
		Site: cfg.Gateway.Site, Gateway: cfg.Gateway.ID, TrustedKeys: keys,
		MaxModelBytes: int64(mc.MaxBytes), MaxBlockSize: int(mc.MaxBlockSize),
		Quiet: mc.Quiet, MaxRounds: mc.MaxRounds,
	}
	tap := &statusTap{Requester: pub}
	var bind *modelBinder
	var eval *plateEvaluator
	lab, basis := &labels{}, &judgedByAccuracy{}
	if holder != nil {
		sw.defaults()
		eval = &plateEvaluator{holder: holder, windows: windows, labelled: lab, basis: basis, cfg: sw}
		scfg.Evaluator = eval
		bind = newModelBinder(store, holder, windows, sw, log)
		bind.labelled, bind.basis = lab, basis
		tap.kick = bind.kick
	}
	var events *modelEvents
	if ob != nil {
		events = newModelEvents(ob, eval, log)
		tap.events = events
	}
	syncer := modelsync.New(store, tap, scfg)
	if err := registerModelSync(r, topics, syncer, int(mc.MaxBlockSize)); err != nil {
		store.Close()
		return nil, nil, err
	}
	ms := &modelSync{store: store, syncer: syncer, pub: pub, bind: bind, labels: lab, events: events}
	if m, v := store.Active(); m != nil {
		log.Info("model", "name", m.Name, "version", v, "dir", mc.Dir)
	}
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := syncer.Run(sctx); err != nil {
			log.Error("model sync", "err", err)
		}
	})
	wg.Go(func() { pub.run(sctx) })
	if bind != nil {
		bind.syncer = syncer
		wg.Go(func() { bind.run(sctx) })
	}
	if events != nil {
		wg.Go(func() { events.run(sctx) })
	}
	stop := func() {
		cancel()
		wg.Wait()
		if err := store.Close(); err != nil {
			log.Error("closing model store", "err", err)
		}
	}
	return ms, stop, nil
}

// importBundled installs the model shipped with the package.
func importBundled(ctx context.Context, store *modelsync.Store, path string) error {
	c, err := store.Import(ctx, path)
	if err != nil {
		return fmt.Errorf("models.bundled_model: %w", err)
	}
	if err := store.Promote(ctx, c); err != nil {
		store.Discard(c)
		return fmt.Errorf("models.bundled_model: %w", err)
	}
	return nil
}

// registerModelSync registers the Syncer's handlers: offers on the
// gateway's and the site's offer topics, blocks on the block topic, each
// with the protocol's payload cap; a refused offer or block is a counted
// rejection under its status code (unknown-key, corrupt-block, ...).
func registerModelSync(r *downlink.Router, t modelsync.Topics, s *modelsync.Syncer, maxBlock int) error {
	offer := downlink.HandlerFunc(func(ctx context.Context, m downlink.Message) error {
		if err := s.Offer(ctx, m.Payload); err != nil {
			return downlink.Reject(modelsync.Code(err), err)
		}
		return nil
	})
	block := downlink.HandlerFunc(func(ctx context.Context, m downlink.Message) error {
		if err := s.Block(ctx, m.Payload); err != nil {
			return downlink.Reject(modelsync.Code(err), err)
		}
		return nil
	})
	if err := r.Handle(t.Offer(), offer, downlink.Options{Name: "model-offers", QueueLen: modelOfferQueue, MaxPayload: modelsync.MaxOfferBytes}); err != nil {
		return err
	}
	if err := r.Handle(t.SiteOffer(), offer, downlink.Options{Name: "model-site-offers", QueueLen: modelOfferQueue, MaxPayload: modelsync.MaxOfferBytes}); err != nil {
		return err
	}
	return r.Handle(t.Block(), block, downlink.Options{Name: "model-blocks", QueueLen: modelBlockQueue,
		MaxPayload: modelsync.BlockHeaderSize + maxBlock, MaxQueueBytes: max(modelBlockQueueBytes, 2*(modelsync.BlockHeaderSize+maxBlock))})
}

// modelPublisher is the Syncer's Requester over the uplink. Nothing is
// dropped silently between sessions: block requests wait in a bounded
// queue (the oldest is dropped, counted and logged, when it is full; the
// quiet-period re-request asks again), and the latest status is kept and
// published retained as soon as a session exists, and again on every new
// session. Publishes are QoS1 without waiting for the PUBACK; a request
// lost with a session is asked again after the quiet period.
type modelPublisher struct {
	up     modelUplink
	topics modelsync.Topics
	log    *slog.Logger

	mu         sync.Mutex
	status     []byte
	statusSent bool
	session    int64 // uplink connects when the status was last published
	queue      [][]byte
	dropped    int64
}

func newModelPublisher(up modelUplink, t modelsync.Topics, log *slog.Logger) *modelPublisher {
	return &modelPublisher{up: up, topics: t, log: log}
}

// RequestBlocks publishes r, or queues it until the next session.
func (p *modelPublisher) RequestBlocks(_ context.Context, r modelsync.Request) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.queue) == maxQueuedRequest {
		p.queue = p.queue[1:]
		p.dropped++
		p.log.Warn("model block request queue full while disconnected; oldest dropped (asked again after the quiet period)", "dropped", p.dropped)
	}
	p.queue = append(p.queue, r.Payload())
	p.flushLocked()
	return nil
}

// PublishStatus publishes st retained, now or when a session exists.
func (p *modelPublisher) PublishStatus(_ context.Context, st modelsync.Status) error {
	b, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("model status: %w", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.status, p.statusSent = b, false
	p.flushLocked()
	return nil
}

// flushLocked publishes what waits: the status when not yet published in
// this session, then the queued requests in order.
func (p *modelPublisher) flushLocked() {
	st := p.up.Stats()
	if !st.Connected {
		return
	}
	if p.status != nil && (!p.statusSent || p.session != st.Connects) {
		if err := p.up.PublishRetained(p.topics.Status(), p.status); err != nil {
			p.logErr("model status", err)
			return
		}
		p.statusSent, p.session = true, st.Connects
	}
	for len(p.queue) > 0 {
		if err := p.up.Publish(p.topics.Request(), p.queue[0]); err != nil {
			p.logErr("model block request", err)
			return
		}
		p.queue[0] = nil
		p.queue = p.queue[1:]
	}
}

func (p *modelPublisher) logErr(what string, err error) {
	if !errors.Is(err, uplink.ErrNotConnected) {
		p.log.Warn(what, "err", err)
	}
}

// run retries what waits every 200ms until ctx is done.
func (p *modelPublisher) run(ctx context.Context) {
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			p.mu.Lock()
			p.flushLocked()
			p.mu.Unlock()
		}
	}
}

// modelWindows is where the plate model's shadow evaluation and health
// check find change windows (windowSet: the plates' WindowRecorders).
type modelWindows interface {
	// Recent is up to n of the latest windows across plates.
	Recent(n int) [][]float32
	// Since is up to n windows of changes after t, oldest first.
	Since(t time.Time, n int) [][]float32
}

var (
	_ modelWindows        = windowSet(nil)
	_ modelsync.Evaluator = (*plateEvaluator)(nil)
)

// Recent implements modelWindows over every rate group's recorder.
func (ws windowSet) Recent(n int) [][]float32 {
	var out [][]float32
	for _, w := range ws {
		out = append(out, w.Recent(n)...)
	}
	return out[max(0, len(out)-n):]
}

// Since implements modelWindows over every rate group's recorder.
func (ws windowSet) Since(t time.Time, n int) [][]float32 {
	var out [][]float32
	for _, w := range ws {
		out = append(out, w.Since(t, n)...)
	}
	return out[:min(n, len(out))]
}

// swapConfig is the shadow evaluation before a plate model is promoted and
// the health check after: the models.shadow keys (config.ModelShadow,
// whose defaults zero fields take) and the health check's poll interval.
type swapConfig struct {
	// MinAgreement is the top-1 agreement with the active model a
	// candidate needs on the recent windows when there are too few
	// labelled ones.
	MinAgreement float64
	// MinWindows is how many recent windows make agreement evidence.
	// With fewer, a candidate is promoted on fit and latency alone (the
	// status note says so) and the health check judges it on live changes.
	MinWindows int
	// Windows is the most recent windows compared.
	Windows int
	// MaxLatency is the longest mean inference per window.
	MaxLatency time.Duration
	// MinLabelled is how many labelled windows make accuracy the rule.
	MinLabelled int
	// AccuracyMargin is how far below the serving model's accuracy on the
	// labelled windows a candidate's (or a new model's) may be.
	AccuracyMargin float64
	// HealthChanges is how many live changes after a swap the health check
	// waits for (M).
	HealthChanges int
	// HealthAgreement is the agreement with the model swapped out, over
	// those changes, below which the new model is rolled back.
	HealthAgreement float64
	// Poll is how often the health check looks for new changes; 1s.
	Poll time.Duration
}

// swapFromConfig is the swap settings of the models.shadow keys.
func swapFromConfig(c config.ModelShadow) swapConfig {
	return swapConfig{MinAgreement: c.MinAgreement, MinWindows: c.MinWindows, Windows: c.Windows, MaxLatency: c.MaxLatency,
		MinLabelled: c.MinLabelled, AccuracyMargin: c.AccuracyMargin, HealthChanges: c.HealthChanges, HealthAgreement: c.HealthMinAgreement}
}

func (c *swapConfig) defaults() {
	d := swapFromConfig(config.ModelShadow{}.WithDefaults())
	setZero(&c.MinAgreement, d.MinAgreement)
	setZero(&c.MinWindows, d.MinWindows)
	setZero(&c.Windows, d.Windows)
	setZero(&c.MaxLatency, d.MaxLatency)
	setZero(&c.MinLabelled, d.MinLabelled)
	setZero(&c.AccuracyMargin, d.AccuracyMargin)
	setZero(&c.HealthChanges, d.HealthChanges)
	setZero(&c.HealthAgreement, d.HealthAgreement)
	setZero(&c.Poll, time.Second)
}

func setZero[T int | float64 | time.Duration](f *T, def T) {
	if *f <= 0 {
		*f = def
	}
}

// labelledSource is where the evaluation and the health check find
// labelled windows (the sample book: scan-confirmed and corrected samples).
type labelledSource interface {
	// Labelled is up to n of the latest labelled windows, or with after
	// set the first n of changes after it; oldest first.
	Labelled(after time.Time, n int) []labelledWindow
}

// labels is the labelled windows of a gateway, set once the sample book
// exists (after model sync starts); nil until then.
type labels struct {
	mu  sync.Mutex
	src labelledSource
}

func (l *labels) set(src labelledSource) {
	l.mu.Lock()
	l.src = src
	l.mu.Unlock()
}

func (l *labels) get(after time.Time, n int) []labelledWindow {
	l.mu.Lock()
	src := l.src
	l.mu.Unlock()
	if src == nil {
		return nil
	}
	return src.Labelled(after, n)
}

// accuracy is the share of ws that m labels correctly (top-1 class label
// equal to the window's label) and how many it could not infer (counted
// as wrong).
func accuracy(m *classify.Loaded, ws []labelledWindow) (acc float64, failed int, err error) {
	if len(ws) == 0 {
		return 0, 0, nil
	}
	s, err := m.M.NewSessionWith()
	if err != nil {
		return 0, 0, fmt.Errorf("model %q v%d: %w", m.M.Name, m.Version, err)
	}
	right := 0
	for _, w := range ws {
		out, err := s.Infer(w.x)
		switch {
		case err != nil:
			failed++
		case m.M.Output.Labels[out.Class] == w.label:
			right++
		}
	}
	return float64(right) / float64(len(ws)), failed, nil
}

// judgedByAccuracy records the versions promoted on labelled accuracy,
// whose health check is then by accuracy too.
type judgedByAccuracy struct {
	mu sync.Mutex
	v  map[uint64]bool
}

func (j *judgedByAccuracy) set(v uint64) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.v == nil {
		j.v = map[uint64]bool{}
	}
	j.v[v] = true
}

func (j *judgedByAccuracy) get(v uint64) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.v[v]
}

// plateEvaluator is the Syncer's Evaluator for a gateway with a plate
// model: a candidate must be a plate model (feature window, labels) and,
// run in shadow on the recent change windows beside the serving model,
// infer within the latency limit and then either be at least as accurate
// as the serving model (less the margin) on the labelled windows, when
// there are MinLabelled of them, or else agree with it.
type plateEvaluator struct {
	holder   *classify.Holder
	windows  modelWindows // nil: no windows, promoted on fit and latency
	labelled *labels
	basis    *judgedByAccuracy
	cfg      swapConfig

	mu   sync.Mutex
	last modelsync.ModelRef // the candidate evaluated last
}

// lastCandidate is the name and version of the candidate evaluated last.
func (e *plateEvaluator) lastCandidate() (string, uint64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.last.Name, e.last.Version
}

// Evaluate implements modelsync.Evaluator; the refusal says why.
func (e *plateEvaluator) Evaluate(_ context.Context, c *modelsync.Candidate) error {
	e.mu.Lock()
	e.last = modelsync.ModelRef{Name: c.Model.Name, Version: c.Model.Version}
	e.mu.Unlock()
	cand, err := classify.NewLoaded(c.Model)
	if err != nil {
		return fmt.Errorf("does not fit the plate classifier: %w", err)
	}
	active := e.holder.Load()
	var ws [][]float32
	if e.windows != nil {
		ws = e.windows.Recent(e.cfg.Windows)
	}
	res, err := classify.Shadow(cand, active, ws)
	if err != nil {
		return err
	}
	if res.Failed > 0 {
		return fmt.Errorf("shadow: inference failed on %d of %d recent windows", res.Failed, res.Windows)
	}
	if res.Latency > e.cfg.MaxLatency {
		return fmt.Errorf("shadow: inference takes %s per window, limit %s", res.Latency, e.cfg.MaxLatency)
	}
	if lw := e.labelled.get(time.Time{}, e.cfg.Windows); len(lw) >= e.cfg.MinLabelled {
		ca, _, err := accuracy(cand, lw)
		if err != nil {
			return err
		}
		sa, _, err := accuracy(active, lw)
		if err != nil {
			return err
		}
		if ca < sa-e.cfg.AccuracyMargin {
			return fmt.Errorf("shadow: accuracy %.3f on %d labelled windows, active v%d has %.3f (margin %.2f)",
				ca, len(lw), active.Version, sa, e.cfg.AccuracyMargin)
		}
		e.basis.set(cand.Version)
		c.Note = fmt.Sprintf("shadow: accuracy %.3f on %d labelled windows, active v%d %.3f; top-1 agreement %.3f on %d windows, %s per window",
			ca, len(lw), active.Version, sa, res.Agreement, res.Windows, res.Latency)
		return nil
	}
	if res.Windows < e.cfg.MinWindows {
		c.Note = fmt.Sprintf("shadow: only %d of %d windows recorded, promoted on fit and latency (%s per window); health check over the next %d changes",
			res.Windows, e.cfg.MinWindows, res.Latency, e.cfg.HealthChanges)
		return nil
	}
	if res.Agreement < e.cfg.MinAgreement {
		return fmt.Errorf("shadow: top-1 agreement %.3f with active v%d on %d recent windows, need %.2f",
			res.Agreement, active.Version, res.Windows, e.cfg.MinAgreement)
	}
	c.Note = fmt.Sprintf("shadow: top-1 agreement %.3f with v%d on %d windows, %s per window", res.Agreement, active.Version, res.Windows, res.Latency)
	return nil
}

// statusTap passes the Syncer's requests and statuses on; at each status
// it wakes the binder (a promotion or rollback changes the store; nil
// kick: no binder) and turns the lifecycle steps into events (nil events:
// none).
type statusTap struct {
	modelsync.Requester
	kick   chan struct{}
	events *modelEvents
}

// PublishStatus implements modelsync.Requester.
func (k *statusTap) PublishStatus(ctx context.Context, st modelsync.Status) error {
	err := k.Requester.PublishStatus(ctx, st)
	if k.events != nil {
		k.events.status(st)
	}
	if k.kick != nil {
		select {
		case k.kick <- struct{}{}:
		default:
		}
	}
	return err
}

// modelEventQueue bounds the model events waiting for the outbox (they
// are a few per rollout).
const modelEventQueue = 16

// modelEvents turns the Syncer's lifecycle steps into events in the
// outbox, through the normal event path (class events, stream
// events/model: durable, numbered, delivered and acknowledged like every
// event): a promotion (model_promoted), a verified candidate the shadow
// evaluation refused (model_rejected, code not-promoted) and a rollback
// (model_rolled_back, with its code). Each step makes one event: a status
// published again for the same step is recognised by its key. status is
// called with the Syncer's lock held, so it only queues; run appends.
type modelEvents struct {
	ob   appender
	eval *plateEvaluator // names the refused candidate; nil without plates
	log  *slog.Logger
	q    chan gateway.Record

	mu      sync.Mutex
	last    string // key of the last step turned into an event
	dropped int64
}

func newModelEvents(ob appender, eval *plateEvaluator, log *slog.Logger) *modelEvents {
	return &modelEvents{ob: ob, eval: eval, log: log, q: make(chan gateway.Record, modelEventQueue)}
}

// status queues the event of st's step, if it is one and not yet queued.
func (e *modelEvents) status(st modelsync.Status) {
	ev, key, ok := e.event(st)
	if !ok {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if key == e.last {
		return
	}
	e.last = key
	rec, err := ev.Record()
	if err != nil {
		e.log.Error("model event not made", "kind", ev.Kind, "err", err)
		return
	}
	select {
	case e.q <- rec:
	default:
		e.dropped++
		e.log.Error("model event queue full; event dropped (the model status topic still has the step)", "kind", ev.Kind, "dropped", e.dropped)
	}
}

// event is the model event of st and its key, or false for a status that
// is no lifecycle step.
func (e *modelEvents) event(st modelsync.Status) (shelfv1.ModelEvent, string, bool) {
	ev := shelfv1.ModelEvent{Model: st.Active.Name, ModelVersion: st.Active.Version, Code: st.Code, Reason: st.Reason, OfferID: st.OfferID, Time: st.Time}
	switch {
	case st.State == modelsync.StatePromoted:
		ev.Kind, ev.PreviousVersion, ev.Note, ev.Code = shelfv1.EventModelPromoted, st.Previous, st.Note, ""
		ev.Detail = fmt.Sprintf("%s v%d promoted (was v%d)", ev.Model, ev.ModelVersion, st.Previous)
		return ev, fmt.Sprintf("promoted/%d", st.Active.Version), true
	case st.State == modelsync.StateRejected && st.Code == modelsync.Code(modelsync.ErrNotPromoted):
		ev.Kind = shelfv1.EventModelRejected
		if e.eval != nil {
			ev.Model, ev.CandidateVersion = e.eval.lastCandidate()
		}
		if ev.CandidateVersion == 0 {
			ev.CandidateVersion = st.Highest // not known: the offer's version is above it
		}
		ev.Detail = fmt.Sprintf("%s v%d not promoted; v%d keeps serving", ev.Model, ev.CandidateVersion, ev.ModelVersion)
		return ev, fmt.Sprintf("rejected/%s/%d", st.OfferID, ev.CandidateVersion), true
	case st.State == modelsync.StateRolledBack:
		ev.Kind, ev.RolledBackVersion = shelfv1.EventModelRolledBack, st.Highest
		ev.Detail = fmt.Sprintf("%s v%d rolled back; v%d serves again", ev.Model, st.Highest, ev.ModelVersion)
		return ev, fmt.Sprintf("rolled-back/%d", st.Highest), true
	}
	return shelfv1.ModelEvent{}, "", false
}

// run appends the queued events until ctx is done, then what is still
// queued (the outbox closes after model sync stops).
func (e *modelEvents) run(ctx context.Context) {
	for {
		select {
		case rec := <-e.q:
			e.append(ctx, rec)
		case <-ctx.Done():
			dctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			for {
				select {
				case rec := <-e.q:
					e.append(dctx, rec)
				default:
					return
				}
			}
		}
	}
}

func (e *modelEvents) append(ctx context.Context, rec gateway.Record) {
	if err := e.ob.Append(ctx, []gateway.Record{rec}); err != nil {
		e.log.Error("model event not committed (the model status topic still has the step)", "err", err)
	}
}

// modelBinder keeps the plate classifier serving the store's active model.
// When the store's model changes (a promotion) it loads it into the
// holder (an atomic swap: each plate picks it up at its next change, no
// reading waits) and watches its first HealthChanges live changes: run
// beside the model it replaced, the new one must infer on them and agree
// on at least HealthAgreement of them. A promoted model that does not
// load into the classifier or fails that check is rolled back in the
// store (Syncer.Rollback, reported on the status topic) and in the holder.
type modelBinder struct {
	store   *modelsync.Store
	syncer  *modelsync.Syncer // set before run
	holder  *classify.Holder
	windows modelWindows
	cfg     swapConfig
	log     *slog.Logger
	kick    chan struct{}
	// labelled and basis: the health check of a model promoted on labelled
	// accuracy is by accuracy (nil: by agreement).
	labelled *labels
	basis    *judgedByAccuracy

	// Owned by run.
	seen  uint64           // store version last handled
	prev  *classify.Loaded // the model swapped out while watching
	since time.Time        // when the watched model was swapped in
}

// newModelBinder returns a binder of store to holder. A store model newer
// than the holder's (promoted before a restart) is served at once.
func newModelBinder(store *modelsync.Store, holder *classify.Holder, windows modelWindows, cfg swapConfig, log *slog.Logger) *modelBinder {
	b := &modelBinder{store: store, holder: holder, windows: windows, cfg: cfg, log: log, kick: make(chan struct{}, 1)}
	m, v := store.Active()
	b.seen = v
	if m != nil && v > holder.Version() {
		if l, err := classify.NewLoaded(m); err != nil {
			log.Warn("the model store's active model is not a plate model; the classifier keeps its own", "version", v, "err", err)
		} else {
			log.Info("plate model from the model store", "name", m.Name, "version", v, "was", holder.Version())
			holder.Swap(l)
		}
	}
	return b
}

// run follows the store until ctx is done.
func (b *modelBinder) run(ctx context.Context) {
	t := time.NewTicker(b.cfg.Poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-b.kick:
		case <-t.C:
		}
		b.step(ctx)
	}
}

// step swaps a newly promoted model in, or judges the watched one.
func (b *modelBinder) step(ctx context.Context) {
	m, v := b.store.Active()
	if m == nil {
		return
	}
	if v != b.seen {
		b.seen = v
		cur := b.holder.Load()
		l, err := classify.NewLoaded(m)
		if err != nil {
			b.prev = cur
			b.rollback(ctx, fmt.Errorf("promoted model v%d does not load into the plate classifier: %w: %w", v, modelsync.ErrHealthCheck, err))
			return
		}
		b.holder.Swap(l)
		b.prev, b.since = cur, time.Now()
		b.log.Info("plate model swapped", "name", m.Name, "version", v, "was", cur.Version)
		return
	}
	if b.prev == nil {
		return
	}
	cur := b.holder.Load()
	if b.basis != nil && b.basis.get(cur.Version) {
		b.checkAccuracy(ctx, cur)
		return
	}
	if b.windows == nil {
		return
	}
	ws := b.windows.Since(b.since, b.cfg.HealthChanges)
	if len(ws) < b.cfg.HealthChanges {
		return
	}
	res, err := classify.Shadow(cur, b.prev, ws)
	switch {
	case err != nil:
		b.rollback(ctx, fmt.Errorf("model v%d: %w: %w", cur.Version, modelsync.ErrHealthCheck, err))
	case res.Failed == res.Windows:
		b.rollback(ctx, fmt.Errorf("model v%d: inference failed on all of its first %d changes: %w", cur.Version, res.Windows, modelsync.ErrHealthCheck))
	case res.Agreement < b.cfg.HealthAgreement:
		b.rollback(ctx, fmt.Errorf("model v%d: top-1 agreement %.3f with v%d over its first %d changes, below %.2f: %w",
			cur.Version, res.Agreement, b.prev.Version, res.Windows, b.cfg.HealthAgreement, modelsync.ErrHealthCheck))
	default:
		b.log.Info("plate model healthy", "version", cur.Version, "agreement", res.Agreement, "changes", res.Windows)
		b.prev = nil
	}
}

// checkAccuracy is the health check of a model promoted on labelled
// accuracy: over its first HealthChanges labelled changes it must be at
// least as accurate as the model it replaced, less the margin. (Agreement
// with a poor model it was promoted to replace is no evidence.)
func (b *modelBinder) checkAccuracy(ctx context.Context, cur *classify.Loaded) {
	lw := b.labelled.get(b.since, b.cfg.HealthChanges)
	if len(lw) < b.cfg.HealthChanges {
		return
	}
	na, failed, err := accuracy(cur, lw)
	if err != nil {
		b.rollback(ctx, fmt.Errorf("model v%d: %w: %w", cur.Version, modelsync.ErrHealthCheck, err))
		return
	}
	pa, _, err := accuracy(b.prev, lw)
	if err != nil {
		pa = 0 // the old model cannot judge: the new one stands on its own
	}
	switch {
	case failed == len(lw):
		b.rollback(ctx, fmt.Errorf("model v%d: inference failed on all of its first %d labelled changes: %w", cur.Version, len(lw), modelsync.ErrHealthCheck))
	case na < pa-b.cfg.AccuracyMargin:
		b.rollback(ctx, fmt.Errorf("model v%d: accuracy %.3f over its first %d labelled changes, v%d had %.3f (margin %.2f): %w",
			cur.Version, na, len(lw), b.prev.Version, pa, b.cfg.AccuracyMargin, modelsync.ErrHealthCheck))
	default:
		b.log.Info("plate model healthy", "version", cur.Version, "accuracy", na, "was", pa, "labelled_changes", len(lw))
		b.prev = nil
	}
}

// rollback makes the store's previous model active again (reporting
// reason on the status topic) and serves it; the holder goes back to the
// model it served before the promotion.
func (b *modelBinder) rollback(ctx context.Context, reason error) {
	b.log.Error("plate model rolled back", "reason", reason)
	if err := b.syncer.Rollback(ctx, reason); err != nil {
		b.log.Error("model store rollback", "err", err)
	}
	_, b.seen = b.store.Active()
	if b.prev != nil {
		b.holder.Swap(b.prev)
	}
	b.prev = nil
}

// modelWindows is where model sync finds the plates' windows: nil without
// plates.
func (st *plateStats) modelWindows() modelWindows {
	if st == nil || len(st.windows) == 0 {
		return nil
	}
	return st.windows
}
