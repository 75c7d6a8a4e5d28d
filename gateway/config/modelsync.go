package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// ModelSync configures model updates over MQTT (docs/model-sync.md): where
// models live, which keys sign them, and the transfer's bounds. Zero values
// take the defaults of WithDefaults.
type ModelSync struct {
	// Dir is the model directory (active.sgm, previous.sgm, state.db);
	// default "models" beside the outbox file.
	Dir string `yaml:"dir"`
	// TrustedKeys are public key files (PEM, OpenSSH, or 64 hex digits)
	// whose signatures the gateway accepts; none refuses every offer.
	TrustedKeys []string `yaml:"trusted_keys"`
	// MaxBytes is the largest model file accepted; default 50MiB.
	MaxBytes ByteSize `yaml:"max_bytes"`
	// MaxBlockSize is the largest block size an offer may name (and the
	// router's payload cap on the block topic); default 1MiB.
	MaxBlockSize ByteSize `yaml:"max_block_size"`
	// Quiet is how long without a new block before missing blocks are
	// asked for again; default 30s.
	Quiet time.Duration `yaml:"quiet"`
	// MaxRounds is how many unanswered requests fail a transfer; default 5.
	MaxRounds int `yaml:"max_rounds"`
	// BundledModel is a model file installed when the directory holds none
	// (the model shipped with the package); optional.
	BundledModel string `yaml:"bundled_model"`
	// Shadow is the evaluation of a plate model before promotion and its
	// health check after (docs/model-sync.md).
	Shadow ModelShadow `yaml:"shadow"`
}

// ModelShadow holds the thresholds of the shadow evaluation, the
// promotion rule and the health check of a plate model. Zero values take
// the defaults of WithDefaults (so 0 cannot switch a check off: its range
// says what is allowed).
type ModelShadow struct {
	// Windows is how many of the most recent recorded change windows the
	// candidate and the serving model are run on; default 200.
	Windows int `yaml:"windows"`
	// MinWindows is how many windows make agreement evidence; with fewer
	// a candidate is promoted on fit and latency alone; default 20.
	MinWindows int `yaml:"min_windows"`
	// MinAgreement is the top-1 agreement with the serving model a
	// candidate needs when there are too few labelled windows; default 0.9.
	MinAgreement float64 `yaml:"min_agreement"`
	// MaxLatency is the longest mean inference per window; default 1ms.
	MaxLatency time.Duration `yaml:"max_latency"`
	// MinLabelled is how many labelled windows (scan-confirmed or
	// corrected samples) make accuracy the promotion rule instead of
	// agreement; default 20.
	MinLabelled int `yaml:"min_labelled"`
	// AccuracyMargin is how much lower than the serving model's a
	// candidate's accuracy on the labelled windows may be; default 0.02.
	AccuracyMargin float64 `yaml:"accuracy_margin"`
	// HealthChanges is how many live changes after a swap the health
	// check judges the new model on; default 20.
	HealthChanges int `yaml:"health_changes"`
	// HealthMinAgreement is the agreement with the model swapped out
	// below which the new model is rolled back (when its changes are not
	// labelled); default 0.5.
	HealthMinAgreement float64 `yaml:"health_min_agreement"`
}

// Defaults of the models section.
const (
	DefaultModelMaxBytes     = ByteSize(50 << 20)
	DefaultModelMaxBlockSize = ByteSize(1 << 20)
	DefaultModelQuiet        = 30 * time.Second
	DefaultModelMaxRounds    = 5

	DefaultShadowWindows            = 200
	DefaultShadowMinWindows         = 20
	DefaultShadowMinAgreement       = 0.9
	DefaultShadowMaxLatency         = time.Millisecond
	DefaultShadowMinLabelled        = 20
	DefaultShadowAccuracyMargin     = 0.02
	DefaultShadowHealthChanges      = 20
	DefaultShadowHealthMinAgreement = 0.5
)

// WithDefaults returns m with empty fields filled; outboxPath places the
// default directory.
func (m ModelSync) WithDefaults(outboxPath string) ModelSync {
	if m.Dir == "" {
		m.Dir = filepath.Join(filepath.Dir(outboxPath), "models")
	}
	setDefault(&m.MaxBytes, DefaultModelMaxBytes)
	setDefault(&m.MaxBlockSize, DefaultModelMaxBlockSize)
	setDefault(&m.Quiet, DefaultModelQuiet)
	setDefault(&m.MaxRounds, DefaultModelMaxRounds)
	m.Shadow = m.Shadow.WithDefaults()
	return m
}

// WithDefaults returns s with zero fields set to the defaults.
func (s ModelShadow) WithDefaults() ModelShadow {
	setDefault(&s.Windows, DefaultShadowWindows)
	setDefault(&s.MinWindows, DefaultShadowMinWindows)
	setDefault(&s.MinAgreement, DefaultShadowMinAgreement)
	setDefault(&s.MaxLatency, DefaultShadowMaxLatency)
	setDefault(&s.MinLabelled, DefaultShadowMinLabelled)
	setDefault(&s.AccuracyMargin, DefaultShadowAccuracyMargin)
	setDefault(&s.HealthChanges, DefaultShadowHealthChanges)
	setDefault(&s.HealthMinAgreement, DefaultShadowHealthMinAgreement)
	return s
}

// Validate checks the models section (defaults applied) and returns the
// problems, naming the field path, file and line.
func (m ModelSync) Validate(c *Config) Errors {
	p := &problems{c: c}
	m.validate(p, c.Outbox.Path)
	return p.es
}

// validateModels is Validate's part of the Config's validation chain.
func (c *Config) validateModels(p *problems) { c.Models.validate(p, c.Outbox.Path) }

func (m ModelSync) validate(p *problems, outboxPath string) {
	explicit := m.Dir != ""
	m = m.WithDefaults(outboxPath)
	// The default directory sits beside the outbox, whose check covers it.
	if parent := filepath.Dir(m.Dir); explicit && parent != "." {
		if st, err := os.Stat(parent); err != nil {
			p.add("models.dir", "%q: parent directory: %v", m.Dir, errors.Unwrap(err))
		} else if !st.IsDir() {
			p.add("models.dir", "%q: %s is not a directory", m.Dir, parent)
		}
	}
	for i, k := range m.TrustedKeys {
		if k == "" {
			p.add(fmt.Sprintf("models.trusted_keys[%d]", i), "empty path")
			continue
		}
		if _, err := os.Stat(k); err != nil {
			p.add(fmt.Sprintf("models.trusted_keys[%d]", i), "%q: %v", k, errors.Unwrap(err))
		}
	}
	if m.MaxBytes < 1<<10 || m.MaxBytes > 1<<30 {
		p.add("models.max_bytes", "%s must be between 1KiB and 1GiB", m.MaxBytes)
	}
	if m.MaxBlockSize < 1<<10 || m.MaxBlockSize > 1<<20 {
		p.add("models.max_block_size", "%s must be between 1KiB and 1MiB", m.MaxBlockSize)
	}
	if m.Quiet < 100*time.Millisecond || m.Quiet > time.Hour {
		p.add("models.quiet", "%s must be between 100ms and 1h", m.Quiet)
	}
	if m.MaxRounds < 1 || m.MaxRounds > 1000 {
		p.add("models.max_rounds", "%d must be between 1 and 1000", m.MaxRounds)
	}
	if m.BundledModel != "" {
		if _, err := os.Stat(m.BundledModel); err != nil {
			p.add("models.bundled_model", "%q: %v", m.BundledModel, errors.Unwrap(err))
		}
	}
	m.Shadow.validate(p)
}

// shadowWindowsMax bounds the windows a shadow evaluation runs: the
// plates keep 64 windows each, and the evaluation runs in the downlink
// handler.
const shadowWindowsMax = 10000

func (s ModelShadow) validate(p *problems) {
	ratio := func(field string, v float64, lo float64) {
		if !(v > lo && v <= 1) { // NaN fails too
			p.add(field, "%v must be above %v and at most 1", v, lo)
		}
	}
	if s.Windows < 1 || s.Windows > shadowWindowsMax {
		p.add("models.shadow.windows", "%d must be between 1 and %d", s.Windows, shadowWindowsMax)
	}
	if s.MinWindows < 1 || s.MinWindows > s.Windows {
		p.add("models.shadow.min_windows", "%d must be between 1 and models.shadow.windows (%d)", s.MinWindows, s.Windows)
	}
	ratio("models.shadow.min_agreement", s.MinAgreement, 0)
	if s.MaxLatency < time.Microsecond || s.MaxLatency > time.Second {
		p.add("models.shadow.max_latency", "%s must be between 1µs and 1s", s.MaxLatency)
	}
	if s.MinLabelled < 1 || s.MinLabelled > shadowWindowsMax {
		p.add("models.shadow.min_labelled", "%d must be between 1 and %d", s.MinLabelled, shadowWindowsMax)
	}
	if !(s.AccuracyMargin >= 0 && s.AccuracyMargin < 1) {
		p.add("models.shadow.accuracy_margin", "%v must be at least 0 and below 1", s.AccuracyMargin)
	}
	if s.HealthChanges < 1 || s.HealthChanges > shadowWindowsMax {
		p.add("models.shadow.health_changes", "%d must be between 1 and %d", s.HealthChanges, shadowWindowsMax)
	}
	ratio("models.shadow.health_min_agreement", s.HealthMinAgreement, 0)
}
