package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/shelfgate/shelfgate/gateway/config"
	"github.com/shelfgate/shelfgate/gateway/downlink"
	"github.com/shelfgate/shelfgate/gateway/modelsync"
	"github.com/shelfgate/shelfgate/gateway/uplink"
	"github.com/shelfgate/shelfgate/model"
)

// Queue bounds of the model handlers: offers are rare; a request asks for
// at most a window (16) of blocks, so 64 holds several answers.
const (
	modelOfferQueue  = 16
	modelBlockQueue  = 64
	maxQueuedRequest = 64
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
}

// startModelSync opens the model store of cfg.Models (importing the bundled
// model into an empty one), registers the offer and block handlers with r,
// and runs the Syncer and the publisher until the returned stop is called
// (stop joins them and closes the store).
func startModelSync(ctx context.Context, cfg *config.Config, r *downlink.Router, up modelUplink, log *slog.Logger) (*modelSync, func(), error) {
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
	syncer := modelsync.New(store, pub, modelsync.Config{
		Site: cfg.Gateway.Site, Gateway: cfg.Gateway.ID, TrustedKeys: keys,
		MaxModelBytes: int64(mc.MaxBytes), MaxBlockSize: int(mc.MaxBlockSize),
		Quiet: mc.Quiet, MaxRounds: mc.MaxRounds,
	})
	if err := registerModelSync(r, topics, syncer, int(mc.MaxBlockSize)); err != nil {
		store.Close()
		return nil, nil, err
	}
	ms := &modelSync{store: store, syncer: syncer, pub: pub}
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
	return r.Handle(t.Block(), block, downlink.Options{Name: "model-blocks", QueueLen: modelBlockQueue, MaxPayload: modelsync.BlockHeaderSize + maxBlock})
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
