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
}

// Defaults of the models section.
const (
	DefaultModelMaxBytes     = ByteSize(50 << 20)
	DefaultModelMaxBlockSize = ByteSize(1 << 20)
	DefaultModelQuiet        = 30 * time.Second
	DefaultModelMaxRounds    = 5
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
	return m
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
}
