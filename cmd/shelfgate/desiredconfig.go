package main

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shelfgate/shelfgate/gateway"
	"github.com/shelfgate/shelfgate/gateway/config"
	"github.com/shelfgate/shelfgate/gateway/downlink"
	"github.com/shelfgate/shelfgate/gateway/modelsync"
	"github.com/shelfgate/shelfgate/gateway/outbox"
	"github.com/shelfgate/shelfgate/gateway/uplink"
	"github.com/shelfgate/shelfgate/gateway/wire/shelfv1"
)

// Rejection reasons of a desired configuration (config_rejected events and
// the router's counts).
const (
	reasonMalformed     = downlink.ReasonMalformed // not an envelope or document
	reasonOversize      = downlink.ReasonOversize  // above shelfv1.MaxConfigBytes
	reasonUnknownKey    = "unknown_key"            // signer not in models.trusted_keys
	reasonBadSignature  = "bad_signature"          // does not verify with the named key
	reasonWrongTarget   = "wrong_target"           // another site or gateway
	reasonRollback      = "rollback"               // version not above the accepted one
	reasonInvalidConfig = "invalid_config"         // the YAML fails validation
	reasonApplyFailed   = "apply_failed"           // accepted but could not be applied or recorded
)

// Bounds of the desired-config handler: one document at a time is enough
// (retained, so only the latest matters); the router drops payloads above
// desiredRouterCap unread, those between MaxConfigBytes and it are refused
// with a config_rejected event.
const (
	desiredQueue     = 4
	desiredRouterCap = 4 * shelfv1.MaxConfigBytes
)

// desiredStatePath is where the highest accepted version is kept: beside
// the outbox, which is the gateway's state directory.
func desiredStatePath(outboxPath string) string { return outboxPath + ".config-version" }

// acceptedConfig is the persisted record of the last accepted desired
// configuration: its version, the SHA-256 of its signed document and the
// signer's key id.
type acceptedConfig struct {
	Version uint64    `json:"version"`
	SHA256  string    `json:"sha256"`
	Key     string    `json:"key"`
	At      time.Time `json:"accepted_at"`
}

// desiredState is the anti-rollback record (persisted, fsynced) and the
// version in effect in this process (0: the file's settings).
type desiredState struct {
	path    string
	mu      sync.Mutex
	acc     acceptedConfig
	applied atomic.Uint64
}

// openDesiredState reads the record at path; a missing file is version 0.
func openDesiredState(path string) (*desiredState, error) {
	s := &desiredState{path: path}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("desired config state: %w", err)
	}
	if err := json.Unmarshal(data, &s.acc); err != nil {
		return nil, fmt.Errorf("desired config state %s is damaged (%v); it records the highest accepted config version: restore it or remove it to accept any version again", path, err)
	}
	return s, nil
}

// accepted returns the persisted record.
func (s *desiredState) accepted() acceptedConfig {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.acc
}

// accept persists a as the accepted configuration (atomic write, fsync).
func (s *desiredState) accept(a acceptedConfig) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	data, err := json.Marshal(a)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(s.path, data); err != nil {
		return fmt.Errorf("record accepted config version in %s: %w", s.path, err)
	}
	s.acc = a
	return nil
}

// withConfigVersion adds the version of the desired configuration in
// effect (0: the file's) to the status fields.
func withConfigVersion(birth func() map[string]any, s *desiredState) func() map[string]any {
	return func() map[string]any {
		b := birth()
		b[shelfv1.StatusConfigVersion] = s.applied.Load()
		return b
	}
}

// eventAppender records config outcome events durably (outbox.Append).
type eventAppender interface {
	Append(ctx context.Context, recs []gateway.Record) error
}

// statusPublisher republishes the retained status (uplink.Uplink).
type statusPublisher interface {
	PublishRetained(topic string, payload []byte) error
}

var (
	_ eventAppender   = (*outbox.Outbox)(nil)
	_ statusPublisher = (*uplink.Uplink)(nil)
)

// configReporter records each outcome as a config event and republishes
// the status, so the cloud sees the applied version at once.
type configReporter struct {
	topics shelfv1.Topics
	events eventAppender
	status statusPublisher // nil: none
	birth  func() map[string]any
	log    *slog.Logger
}

func (r *configReporter) report(ctx context.Context, o shelfv1.ConfigOutcome) {
	if err := r.events.Append(ctx, []gateway.Record{o.Record()}); err != nil {
		r.log.Error("recording the config outcome event", "kind", o.Kind, "version", o.Version, "err", err)
	}
	if r.status == nil || r.birth == nil {
		return
	}
	p := r.topics.StatusBody(shelfv1.StateOnline, "", r.birth(), time.Now())
	if err := r.status.PublishRetained(r.topics.Status(), p); err != nil && !errors.Is(err, uplink.ErrNotConnected) {
		r.log.Warn("republishing the status", "err", err)
	}
}

// desiredConfig handles the signed desired configuration on the
// gateway's and the site's config topics (docs/protocol.md, "Desired
// config"): verified, checked against the accepted version, validated like
// the file, recorded, then applied through the configApplier.
type desiredConfig struct {
	topics shelfv1.Topics
	keys   []ed25519.PublicKey
	checks []config.Check
	lookup func(string) (string, bool)
	state  *desiredState
	apply  *configApplier
	rep    *configReporter
	now    func() time.Time
	log    *slog.Logger

	// mu makes one document at a time go through the checks and the
	// apply: the gateway's and the site's topic have a goroutine each.
	mu sync.Mutex
	// seen are the payloads refused lately: a retained document comes
	// again on every reconnect, and is reported once.
	seen map[[32]byte]bool
}

// registerDesiredConfig registers d on both config topics.
func registerDesiredConfig(r *downlink.Router, d *desiredConfig) error {
	opts := downlink.Options{Name: "desired-config", QueueLen: desiredQueue, MaxPayload: desiredRouterCap}
	if err := r.Handle(d.topics.Config(), d, opts); err != nil {
		return err
	}
	opts.Name = "desired-config-site"
	return r.Handle(d.topics.SiteConfig(), d, opts)
}

// Handle implements downlink.Handler.
func (d *desiredConfig) Handle(ctx context.Context, m downlink.Message) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	sum := sha256.Sum256(m.Payload)
	o, err := d.handle(m.Payload)
	if o == nil { // already in effect: nothing to report
		return nil
	}
	if err == nil {
		d.log.Info("desired config applied", "version", o.Version, "key", o.Key, "applied", o.Applied, "restart", o.Restart)
		if len(o.Restart) > 0 {
			d.log.Warn("desired config: these changes take effect only after a restart (systemctl restart shelfgate)", "version", o.Version, "fields", o.Restart)
		}
		d.rep.report(ctx, *o)
		return nil
	}
	if d.seen[sum] {
		d.log.Debug("desired config refused again", "version", o.Version, "reason", o.Reason)
		return downlink.Reject(o.Reason, err)
	}
	if len(d.seen) >= 64 {
		clear(d.seen)
	}
	d.seen[sum] = true
	d.log.Error("desired config refused; the running configuration stays", "version", o.Version, "reason", o.Reason, "err", o.Error, "errors", o.Errors)
	d.rep.report(ctx, *o)
	return downlink.Reject(o.Reason, err)
}

// handle checks and applies one payload. It returns the outcome to report
// and, for a refusal, the error; a nil outcome means the document is the
// one in effect already (a retained message delivered again).
func (d *desiredConfig) handle(p []byte) (*shelfv1.ConfigOutcome, error) {
	o := &shelfv1.ConfigOutcome{Kind: shelfv1.EventConfigRejected, Source: shelfv1.ConfigSourceMQTT, Time: d.now()}
	reject := func(reason string, err error) (*shelfv1.ConfigOutcome, error) {
		o.Reason, o.Error = reason, err.Error()
		return o, err
	}
	if len(p) > shelfv1.MaxConfigBytes {
		return reject(reasonOversize, fmt.Errorf("desired config of %d bytes exceeds the limit of %d", len(p), shelfv1.MaxConfigBytes))
	}
	env, err := shelfv1.DecodeConfigEnvelope(p)
	if err != nil {
		return reject(reasonMalformed, err)
	}
	o.Key = env.Key
	var key ed25519.PublicKey
	for _, k := range d.keys {
		if modelsync.KeyID(k) == env.Key {
			key = k
		}
	}
	if key == nil {
		return reject(reasonUnknownKey, fmt.Errorf("desired config: key %s is not in models.trusted_keys (%d trusted keys)", env.Key, len(d.keys)))
	}
	if !ed25519.Verify(key, env.Doc, env.Sig) {
		return reject(reasonBadSignature, fmt.Errorf("desired config: signature does not verify with key %s", env.Key))
	}
	doc, err := shelfv1.DecodeConfigDoc(env.Doc)
	if err != nil {
		return reject(reasonMalformed, err)
	}
	o.Version = doc.Version
	if !doc.Matches(d.topics.Site, d.topics.Gateway) {
		return reject(reasonWrongTarget, fmt.Errorf("desired config v%d is for site %q gateway %q, this is site %q gateway %q", doc.Version, doc.Site, doc.Gateway, d.topics.Site, d.topics.Gateway))
	}
	docSum := sha256.Sum256(env.Doc)
	digest := hex.EncodeToString(docSum[:])
	acc := d.state.accepted()
	again := doc.Version == acc.Version && digest == acc.SHA256 // accepted before (a restart, a reconnect)
	if again && d.state.applied.Load() == doc.Version {
		d.log.Debug("desired config already in effect", "version", doc.Version)
		return nil, nil
	}
	if !again && doc.Version <= acc.Version {
		return reject(reasonRollback, fmt.Errorf("desired config v%d is not above the accepted v%d", doc.Version, acc.Version))
	}
	gwID := ""
	if doc.Gateway == "" {
		gwID = d.topics.Gateway
	}
	name := fmt.Sprintf("desired config v%d", doc.Version)
	next, err := config.LoadDocument([]byte(doc.YAML), config.DocumentOptions{Name: name, Lookup: d.lookup, GatewayID: gwID}, d.checks...)
	if err != nil {
		var es config.Errors
		if errors.As(err, &es) {
			for _, e := range es {
				o.Errors = append(o.Errors, e.Error())
			}
			err = fmt.Errorf("%s fails validation: %d error(s)", name, len(es))
		}
		return reject(reasonInvalidConfig, err)
	}
	if next.Gateway.ID != d.topics.Gateway || next.Gateway.Site != d.topics.Site {
		return reject(reasonWrongTarget, fmt.Errorf("%s: gateway.id %q site %q, this is gateway %q site %q", name, next.Gateway.ID, next.Gateway.Site, d.topics.Gateway, d.topics.Site))
	}
	if !again {
		// Recorded before it is applied: after a crash in between, the
		// retained document is the accepted one and is applied again.
		if err := d.state.accept(acceptedConfig{Version: doc.Version, SHA256: digest, Key: env.Key, At: d.now().UTC()}); err != nil {
			return reject(reasonApplyFailed, err)
		}
	}
	applied, restart, err := d.apply.apply(next)
	if err != nil {
		return reject(reasonApplyFailed, err)
	}
	d.state.applied.Store(doc.Version)
	o.Kind, o.Applied, o.Restart = shelfv1.EventConfigApplied, applied, restart
	return o, nil
}

// wireConfig builds the gateway's one apply path and its two entries: the
// desired-config handler, registered on r, and the SIGHUP reloader it
// returns. chain holds the detector whose bins are tuned live.
func wireConfig(cfg *config.Config, host hostCheck, level *slog.LevelVar, r *downlink.Router, topics shelfv1.Topics, up *uplink.Uplink,
	chain []gateway.Classifier, events eventAppender, birth func() map[string]any, state *desiredState, log *slog.Logger) (*reloader, error) {
	keys, err := modelsync.LoadTrustedKeys(cfg.Models.TrustedKeys)
	if err != nil {
		return nil, fmt.Errorf("models.trusted_keys: %w", err)
	}
	clog := log.With("component", "config")
	apply := newConfigApplier(cfg, level, up, detectorOf(chain))
	rep := &configReporter{topics: topics, events: events, status: up, birth: birth, log: clog}
	d := &desiredConfig{topics: topics, keys: keys, checks: configChecks(host), lookup: os.LookupEnv, state: state,
		apply: apply, rep: rep, now: time.Now, log: clog, seen: map[[32]byte]bool{}}
	if err := registerDesiredConfig(r, d); err != nil {
		return nil, err
	}
	if acc := state.accepted(); acc.Version > 0 {
		clog.Info("desired config: waiting for the retained document; running the file's settings until it comes", "accepted_version", acc.Version)
	}
	return &reloader{path: cfg.File(), host: host, apply: apply, rep: rep, state: state, log: log}, nil
}
