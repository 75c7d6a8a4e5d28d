package modelsync

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Requester publishes what the gateway sends to the cloud about a model
// transfer (the daemon implements it with the uplink: QoS1 on
// .../model/request and retained QoS1 on .../model/status).
type Requester interface {
	RequestBlocks(ctx context.Context, r Request) error
	PublishStatus(ctx context.Context, st Status) error
}

// Evaluator decides whether a verified candidate is promoted (shadow
// evaluation plugs in here). A nil Evaluator promotes at once.
type Evaluator interface {
	Evaluate(ctx context.Context, c *Candidate) error
}

// Config configures a Syncer. Zero values take the defaults named.
type Config struct {
	Site, Gateway string
	// TrustedKeys sign offers (and the model files themselves, through
	// the Store's decode options). None means every offer is refused.
	TrustedKeys []ed25519.PublicKey
	// MaxModelBytes is the longest model file accepted; DefaultMaxModelBytes.
	MaxModelBytes int64
	// MaxBlockSize is the largest block size an offer may name (the
	// router's cap on block payloads is BlockHeaderSize more); MaxBlockSize.
	MaxBlockSize int
	// Window is how many blocks the gateway keeps asked for at once.
	// 0: as many as fit in 2 MiB, between 2 and 64 (64 blocks of the
	// default 32 KiB). The block handler's queue must hold a window.
	Window int
	// Quiet is how long without a new block before the missing blocks of
	// the window are requested again; 30s.
	Quiet time.Duration
	// MaxRounds is how many consecutive unanswered requests fail the
	// transfer; 5.
	MaxRounds int
	// MaxHashFailures is how many times an assembled file may fail its
	// SHA-256 (every block is fetched again each time) before the offer
	// is rejected; 2.
	MaxHashFailures int
	// ClockFloor is the earliest plausible time; DefaultClockFloor.
	ClockFloor time.Time
	// Headroom is the free space kept beyond the model's length; 8 MiB.
	Headroom uint64
	// Now is the clock; time.Now.
	Now func() time.Time
	// FreeSpace reports the bytes available in a directory; statfs.
	FreeSpace func(dir string) (uint64, error)
	// Evaluator decides promotion; nil promotes a verified model at once.
	Evaluator Evaluator
}

func (c *Config) defaults() {
	if c.MaxModelBytes <= 0 {
		c.MaxModelBytes = DefaultMaxModelBytes
	}
	if c.MaxBlockSize <= 0 || c.MaxBlockSize > MaxBlockSize {
		c.MaxBlockSize = MaxBlockSize
	}
	if c.Quiet <= 0 {
		c.Quiet = 30 * time.Second
	}
	if c.MaxRounds <= 0 {
		c.MaxRounds = 5
	}
	if c.MaxHashFailures <= 0 {
		c.MaxHashFailures = 2
	}
	if c.ClockFloor.IsZero() {
		c.ClockFloor = DefaultClockFloor
	}
	if c.Headroom == 0 {
		c.Headroom = 8 << 20
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.FreeSpace == nil {
		c.FreeSpace = statfsAvail
	}
}

// States reported in Status.State.
const (
	StateIdle         = "idle"
	StateWaitingClock = "waiting-clock"
	StateTransferring = "transferring"
	StatePromoted     = "promoted"
	StateRejected     = "rejected"
	StateFailed       = "failed"
	StateRolledBack   = "rolled-back"
)

// ModelRef names a model.
type ModelRef struct {
	Name    string `json:"name,omitempty"`
	Version uint64 `json:"version"`
}

// OfferStatus is the progress of the offer being handled.
type OfferStatus struct {
	Name     string `json:"name"`
	Version  uint64 `json:"version"`
	Blocks   int    `json:"blocks"`
	Received int    `json:"received"`
	Rounds   int    `json:"rounds"` // consecutive unanswered requests
}

// Status is the model status the gateway reports (retained JSON on
// .../model/status).
type Status struct {
	State    string       `json:"state"`
	Active   ModelRef     `json:"active"`
	Previous uint64       `json:"previous_version,omitempty"`
	Highest  uint64       `json:"highest_version"`
	Offer    *OfferStatus `json:"offer,omitempty"`
	// OfferID names the offer this state answers (OfferID of its
	// payload), so a pusher tells its own rejection from an older one.
	OfferID string `json:"offer_id,omitempty"`
	Code    string `json:"code,omitempty"`   // machine-readable reason (Code)
	Reason  string `json:"reason,omitempty"` // the error text
	// Note is what the Evaluator said of a promoted candidate
	// (Candidate.Note: its shadow agreement and latency).
	Note string    `json:"note,omitempty"`
	Time time.Time `json:"time"`
}

// OfferID is the first 16 hex digits of the SHA-256 of an offer payload.
func OfferID(payload []byte) string {
	h := sha256.Sum256(payload)
	return hex.EncodeToString(h[:8])
}

// Code maps an error to the status code the cloud sees.
func Code(err error) string {
	codes := []struct {
		err  error
		code string
	}{
		{ErrMalformed, "malformed"}, {ErrUnknownKey, "unknown-key"}, {ErrBadSignature, "bad-signature"},
		{ErrTarget, "target"}, {ErrRollback, "rollback"}, {ErrTooLarge, "too-large"},
		{ErrClockNotSet, "clock-not-set"}, {ErrExpired, "expired"}, {ErrNoSpace, "no-space"},
		{ErrCorruptBlock, "corrupt-block"}, {ErrNoTransfer, "no-transfer"}, {ErrHashMismatch, "hash-mismatch"},
		{ErrModel, "model"}, {ErrTransferFailed, "transfer-failed"}, {ErrRejectedBefore, "rejected-before"},
		{ErrNotPromoted, "not-promoted"}, {ErrNoPrevious, "no-previous"}, {ErrHealthCheck, "health-check"},
	}
	for _, c := range codes {
		if errors.Is(err, c.err) {
			return c.code
		}
	}
	if err != nil {
		return "internal"
	}
	return ""
}

// Syncer runs the gateway side of the model update protocol: it checks
// offers, requests and stores blocks, stages, verifies and promotes the
// model. Offer and Block are the downlink handlers; Run re-requests after
// quiet periods. Methods are safe for concurrent use.
type Syncer struct {
	store  *Store
	req    Requester
	cfg    Config
	policy Policy

	mu          sync.Mutex
	cur         *Transfer
	window      int // blocks kept asked for in this transfer (Config.Window or by block size)
	failed      bool
	outstanding map[int]bool
	reasked     map[int]bool // blocks asked for again after a corrupt copy, this round
	lastBlkErr  error        // the last block refused in this transfer
	rounds      int
	hashFails   int
	lastAct     time.Time
	waiting     []byte // offer waiting for the clock
	waitFinish  bool   // complete transfer waiting for the clock
	st          Status

	snap atomic.Pointer[Status]
}

// New returns a Syncer installing into store.
func New(store *Store, req Requester, cfg Config) *Syncer {
	cfg.defaults()
	s := &Syncer{store: store, req: req, cfg: cfg,
		policy: Policy{Keys: cfg.TrustedKeys, Site: cfg.Site, Gateway: cfg.Gateway, MaxLength: cfg.MaxModelBytes, ClockFloor: cfg.ClockFloor}}
	s.st.State = StateIdle
	s.refreshLocked()
	return s
}

// MaxBlockPayload is the largest block payload a Syncer accepts; the
// router's payload cap for the block topic.
const MaxBlockPayload = BlockHeaderSize + MaxBlockSize

// Status returns the latest status snapshot.
func (s *Syncer) Status() Status { return *s.snap.Load() }

// refreshLocked fills the model fields of the status and publishes the
// snapshot (s.mu held).
func (s *Syncer) refreshLocked() {
	m, v := s.store.Active()
	s.st.Active = ModelRef{Version: v}
	if m != nil {
		s.st.Active.Name = m.Name
	}
	s.st.Previous = s.store.Previous()
	s.st.Highest = s.store.Highest()
	if s.cur != nil {
		s.st.Offer = &OfferStatus{Name: s.cur.man.Name, Version: s.cur.man.Version, Blocks: s.cur.man.Blocks, Received: s.cur.Received(), Rounds: s.rounds}
	}
	s.st.Time = s.cfg.Now().UTC()
	st := s.st
	s.snap.Store(&st)
}

// setLocked changes the state and publishes it (s.mu held).
func (s *Syncer) setLocked(ctx context.Context, state string, err error) {
	s.setNotedLocked(ctx, state, err, "")
}

// setNotedLocked is setLocked with the Evaluator's note (s.mu held).
func (s *Syncer) setNotedLocked(ctx context.Context, state string, err error, note string) {
	s.st.State = state
	s.st.Code, s.st.Reason, s.st.Note = Code(err), "", note
	if err != nil {
		s.st.Reason = err.Error()
	}
	if s.cur == nil {
		s.st.Offer = nil
	}
	s.refreshLocked()
	if s.req != nil {
		_ = s.req.PublishStatus(ctx, s.Status()) // best effort: the next change publishes again
	}
}

// Offer handles an offer payload. It returns nil when the offer starts or
// continues a transfer, or waits for the clock; otherwise the reason it
// was refused (the running model is untouched either way).
func (s *Syncer) Offer(ctx context.Context, payload []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.offerLocked(ctx, payload)
}

func (s *Syncer) offerLocked(ctx context.Context, payload []byte) error {
	s.st.OfferID = OfferID(payload)
	m, _, err := s.policy.VerifyOffer(payload, s.cfg.Now(), s.store.Highest())
	if errors.Is(err, ErrClockNotSet) {
		s.waiting = append([]byte(nil), payload...)
		s.setLocked(ctx, StateWaitingClock, err)
		return nil
	}
	if errors.Is(err, ErrRollback) && m != nil {
		if _, active := s.store.Active(); active == m.Version && s.isActiveFile(m.SHA256) {
			// The model already serving, offered again: the broker
			// re-delivers a retained offer on every reconnect. Nothing to
			// do, and nothing to report as a refusal.
			return nil
		}
	}
	if err != nil {
		return s.refuseLocked(ctx, err)
	}
	s.waiting = nil
	if m.BlockSize > s.cfg.MaxBlockSize {
		return s.refuseLocked(ctx, fmt.Errorf("offer of version %d: block_size %d, this gateway accepts at most %d: %w", m.Version, m.BlockSize, s.cfg.MaxBlockSize, ErrTooLarge))
	}
	if s.cur != nil {
		cm := s.cur.man
		if cm.Version == m.Version && cm.SHA256 == m.SHA256 {
			// The same offer again (retained, or re-sent after a
			// failure): carry on from the blocks held.
			s.failed, s.rounds = false, 0
			s.requestLocked(ctx, true)
			return nil
		}
		if m.Version < cm.Version {
			return s.refuseLocked(ctx, fmt.Errorf("offer of version %d while version %d is transferring: %w", m.Version, cm.Version, ErrRollback))
		}
	}
	if reason, err := s.store.rejectedReason(ctx, m.SHA256); err != nil {
		return err
	} else if reason != "" {
		return s.refuseLocked(ctx, fmt.Errorf("offer of version %d: file %s was rejected: %s: %w", m.Version, m.SHA256[:16], reason, ErrRejectedBefore))
	}
	free, err := s.cfg.FreeSpace(s.store.Dir())
	if err != nil {
		return s.refuseLocked(ctx, fmt.Errorf("free space of %s: %w: %w", s.store.Dir(), ErrNoSpace, err))
	}
	if need := uint64(m.Length) + s.cfg.Headroom; free < need {
		return s.refuseLocked(ctx, fmt.Errorf("staging %d bytes needs %d free in %s, %d available: %w", m.Length, need, s.store.Dir(), free, ErrNoSpace))
	}
	if s.cur != nil {
		s.cur.Close()
		s.cur = nil
	}
	t, err := s.store.BeginTransfer(ctx, m, payload)
	if err != nil {
		s.setLocked(ctx, StateFailed, err)
		return err
	}
	s.startLocked(ctx, t)
	return nil
}

// isActiveFile reports whether sha is the active model file's SHA-256.
func (s *Syncer) isActiveFile(sha string) bool {
	got, err := s.store.activeSHA256()
	return err == nil && got == sha
}

// refuseLocked reports a refused offer; a transfer in progress goes on.
func (s *Syncer) refuseLocked(ctx context.Context, err error) error {
	state := StateRejected
	if s.cur != nil && !s.failed {
		state = StateTransferring
	}
	s.setLocked(ctx, state, err)
	return err
}

func (s *Syncer) startLocked(ctx context.Context, t *Transfer) {
	s.cur, s.failed, s.rounds, s.hashFails, s.lastBlkErr, s.waitFinish = t, false, 0, 0, nil, false
	s.outstanding, s.reasked = map[int]bool{}, map[int]bool{}
	s.window = s.cfg.windowFor(t.man.BlockSize)
	s.st.OfferID = OfferID(t.env)
	if t.Complete() {
		s.finishLocked(ctx)
		return
	}
	s.requestLocked(ctx, false)
	s.setLocked(ctx, StateTransferring, nil)
}

// defaultWindowBytes is the default window in bytes of blocks: the blocks
// in flight must cover a request's round trip (on a broker that does not
// set TCP_NODELAY, Nagle's algorithm and delayed ACKs make it 40 ms, so
// 1.5 MiB in flight carry 37 MB/s). At most maxDefaultWindow blocks, the
// router's default queue length.
const defaultWindowBytes = 2 << 20

const maxDefaultWindow = 64

// windowFor is the window of a transfer in blocks of blockSize.
func (c *Config) windowFor(blockSize int) int {
	if c.Window > 0 {
		return c.Window
	}
	return min(max(defaultWindowBytes/max(blockSize, 1), 2), maxDefaultWindow)
}

// requestLocked keeps up to a window of blocks asked for: it asks for more
// missing blocks once a quarter of the window has arrived (so the blocks
// still in flight cover the request's round trip and blocks keep flowing
// while the gateway writes the others); again re-asks for the outstanding
// ones after a quiet period (and tops the window up).
func (s *Syncer) requestLocked(ctx context.Context, again bool) {
	if s.cur == nil {
		return
	}
	s.lastAct = s.cfg.Now()
	if !again && len(s.outstanding) > s.window-max(1, s.window/4) {
		return
	}
	var idx []int
	if again {
		clear(s.reasked)
		for i := range s.outstanding {
			idx = append(idx, i)
		}
	}
	if len(s.outstanding) < s.window {
		for _, i := range s.cur.Missing() {
			if len(s.outstanding) == s.window {
				break
			}
			if !s.outstanding[i] {
				idx = append(idx, i)
				s.outstanding[i] = true
			}
		}
	}
	if len(idx) == 0 {
		return
	}
	slices.Sort(idx)
	if s.req != nil {
		_ = s.req.RequestBlocks(ctx, Request{Name: s.cur.man.Name, Version: s.cur.man.Version, Blocks: idx, Round: s.rounds})
	}
}

// Block handles a block payload. A corrupt block is dropped and asked for
// again; the error says why.
func (s *Syncer) Block(ctx context.Context, payload []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur == nil {
		return fmt.Errorf("block: %w", ErrNoTransfer)
	}
	t := s.cur
	b, err := DecodeBlock(payload, t.man.BlockSize)
	if err != nil {
		// Ask again at once when the header names a block we lack.
		s.lastBlkErr = err
		if len(payload) >= 16 && string(payload[:4]) == blockMagic && binary.BigEndian.Uint64(payload[4:]) == t.man.Version {
			if i := int(binary.BigEndian.Uint32(payload[12:])); i < t.man.Blocks && s.outstanding[i] && !s.reasked[i] && s.req != nil {
				s.reasked[i] = true // once per round; then the quiet period decides
				_ = s.req.RequestBlocks(ctx, Request{Name: t.man.Name, Version: t.man.Version, Blocks: []int{i}, Round: s.rounds})
			}
		}
		return err
	}
	fresh, err := t.Put(ctx, b)
	if err != nil {
		return err
	}
	if !fresh {
		return nil
	}
	delete(s.outstanding, b.Index)
	s.rounds, s.failed = 0, false
	s.lastAct = s.cfg.Now()
	if t.Complete() {
		s.finishLocked(ctx)
		return nil
	}
	s.requestLocked(ctx, false)
	s.refreshLocked()
	return nil
}

// finishLocked stages, verifies and promotes the complete transfer.
func (s *Syncer) finishLocked(ctx context.Context) {
	t := s.cur
	s.st.OfferID = OfferID(t.env)
	now := s.cfg.Now()
	if now.Before(s.cfg.ClockFloor) {
		// Restarted without RTC: expiry cannot be judged yet.
		s.waitFinish = true
		s.setLocked(ctx, StateWaitingClock, fmt.Errorf("install of version %d: clock reads %s, before %s: %w",
			t.man.Version, now.UTC().Format(time.RFC3339), s.cfg.ClockFloor.Format(time.RFC3339), ErrClockNotSet))
		return
	}
	s.waitFinish = false
	if !now.Before(t.man.Expires) {
		s.abortLocked(ctx, fmt.Errorf("manifest of version %d expired at %s during the transfer: %w", t.man.Version, t.man.Expires.Format(time.RFC3339), ErrExpired), false)
		return
	}
	c, err := t.Stage(ctx)
	if errors.Is(err, ErrHashMismatch) {
		s.hashFails++
		if s.hashFails >= s.cfg.MaxHashFailures {
			s.abortLocked(ctx, err, true)
			return
		}
		if rerr := t.Reset(ctx); rerr != nil {
			s.abortLocked(ctx, rerr, false)
			return
		}
		nt, rerr := s.store.ResumeTransfer(ctx)
		if rerr != nil || nt == nil {
			s.abortLocked(ctx, fmt.Errorf("reopen transfer after hash mismatch: %v: %w", rerr, ErrHashMismatch), false)
			return
		}
		s.cur = nt
		clear(s.outstanding)
		s.requestLocked(ctx, false)
		s.setLocked(ctx, StateTransferring, err)
		return
	}
	if err != nil && ctx.Err() != nil {
		// Shutting down: keep the complete transfer; Resume verifies it.
		s.cur.Close()
		s.cur = nil
		return
	}
	if err != nil {
		s.abortLocked(ctx, err, true)
		return
	}
	if s.cfg.Evaluator != nil {
		if err := s.cfg.Evaluator.Evaluate(ctx, c); err != nil {
			s.store.Discard(c)
			s.abortLocked(ctx, fmt.Errorf("candidate version %d: %w: %w", c.Model.Version, ErrNotPromoted, err), true)
			return
		}
	}
	if err := s.store.Promote(ctx, c); err != nil {
		s.abortLocked(ctx, err, false)
		return
	}
	s.cur = nil
	s.setNotedLocked(ctx, StatePromoted, nil, c.Note)
}

// abortLocked drops the transfer and reports the rejection; remember keeps
// the file's hash so the same offer is not downloaded again.
func (s *Syncer) abortLocked(ctx context.Context, err error, remember bool) {
	t := s.cur
	s.cur = nil
	if t != nil {
		if aerr := t.Abort(ctx); aerr != nil {
			err = fmt.Errorf("%w (and %v)", err, aerr)
		}
		if remember {
			_ = s.store.reject(ctx, t.man.SHA256, Code(err))
		}
	}
	s.setLocked(ctx, StateRejected, err)
}

// Poll commits the blocks received since the last commit, re-requests
// the missing blocks when the transfer has been quiet for Config.Quiet,
// fails it after MaxRounds unanswered requests, and retries an offer that
// waited for the clock. Run calls it periodically.
func (s *Syncer) Poll(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.cfg.Now()
	if s.waiting != nil && !now.Before(s.cfg.ClockFloor) {
		p := s.waiting
		s.waiting = nil
		_ = s.offerLocked(ctx, p)
		return
	}
	if s.waitFinish {
		if s.cur != nil && !now.Before(s.cfg.ClockFloor) {
			s.finishLocked(ctx)
		}
		return
	}
	if s.cur != nil {
		// Blocks written since the last commit are recorded now rather
		// than when the next batch fills (the link may have gone quiet),
		// in the background: the block handler waits for s.mu.
		if err := s.cur.takeCommitErr(); err != nil {
			s.lastBlkErr = err
		}
		s.cur.kick(ctx)
	}
	if s.cur == nil || s.failed || now.Sub(s.lastAct) < s.cfg.Quiet {
		return
	}
	s.rounds++
	if s.rounds > s.cfg.MaxRounds {
		s.failed = true
		s.st.OfferID = OfferID(s.cur.env)
		last := ""
		if s.lastBlkErr != nil {
			last = "; last refused block: " + s.lastBlkErr.Error()
		}
		s.setLocked(ctx, StateFailed, fmt.Errorf("version %d: %d requests unanswered for %s each, %d of %d blocks held%s; a new offer resumes: %w",
			s.cur.man.Version, s.cfg.MaxRounds, s.cfg.Quiet, s.cur.Received(), s.cur.man.Blocks, last, ErrTransferFailed))
		return
	}
	s.requestLocked(ctx, true)
	s.refreshLocked()
}

// Resume picks up the transfer recorded in the store (after a restart):
// it requests only the blocks not held, or finishes a complete one.
func (s *Syncer) Resume(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, err := s.store.ResumeTransfer(ctx)
	if err != nil {
		return err
	}
	if t == nil {
		s.setLocked(ctx, StateIdle, nil)
		return nil
	}
	s.startLocked(ctx, t)
	return nil
}

// Rollback makes the previous model active again (a failed health check
// after promotion) and reports it with reason.
func (s *Syncer) Rollback(ctx context.Context, reason error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.store.Rollback(ctx); err != nil {
		s.setLocked(ctx, s.st.State, err)
		return err
	}
	s.setLocked(ctx, StateRolledBack, reason)
	return nil
}

// Run resumes a stored transfer and polls until ctx is done.
func (s *Syncer) Run(ctx context.Context) error {
	if err := s.Resume(ctx); err != nil {
		return err
	}
	every := max(s.cfg.Quiet/4, 100*time.Millisecond)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			s.mu.Lock()
			if s.cur != nil {
				s.cur.Close()
			}
			s.mu.Unlock()
			return nil
		case <-tick.C:
			s.Poll(ctx)
		}
	}
}

func statfsAvail(dir string) (uint64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return st.Bavail * uint64(st.Bsize), nil
}
