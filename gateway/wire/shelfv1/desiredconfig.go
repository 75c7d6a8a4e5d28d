package shelfv1

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/shelfgate/shelfgate/gateway"
)

// Desired configuration (docs/protocol.md, "Desired config"): the cloud
// publishes a whole configuration file, signed, as a retained message on
//
//	shelfgate/v1/<site>/<gateway>/config   one gateway
//	shelfgate/v1/<site>/all/config         every gateway of the site
//
// The payload is a ConfigEnvelope: the exact bytes of a ConfigDoc, an
// ed25519 signature over them and the signer's key id. The gateway reports
// what it did as a config_applied or config_rejected event (ConfigOutcome,
// stream events/config) and the applied version in its status
// (StatusConfigVersion).
const (
	// ConfigFormat is the only ConfigDoc format this build reads.
	ConfigFormat = 1
	// MaxConfigBytes bounds a desired-config payload: a configuration
	// file is at most 1 MiB, a real one a few KiB.
	MaxConfigBytes = 256 << 10
	// StatusConfigVersion is the status key of the version of the desired
	// configuration in effect; 0 when the gateway runs its file.
	StatusConfigVersion = "config_version"
	// StreamConfig is the event stream of config outcomes.
	StreamConfig gateway.StreamID = "events/config"
	// EventConfigApplied and EventConfigRejected are the outcomes' kinds.
	EventConfigApplied  gateway.EventKind = "config_applied"
	EventConfigRejected gateway.EventKind = "config_rejected"
	maxConfigVersion                      = 1<<63 - 1
)

// ErrBadConfigEnvelope is wrapped by the decoders for a payload that is
// not a well-formed envelope or document.
var ErrBadConfigEnvelope = errors.New("shelfv1: bad desired config")

// Config is the topic of this gateway's desired configuration.
func (t Topics) Config() string { return t.Base() + "/config" }

// SiteConfig is the topic of the desired configuration of every gateway
// of the site.
func (t Topics) SiteConfig() string { return TopicRoot + "/" + t.Site + "/all/config" }

// ConfigDoc is the signed document. Gateway empty means every gateway of
// Site; its YAML then leaves gateway.id out (each gateway fills in its
// own). Version orders documents: a gateway applies only a version above
// the highest it accepted (one sequence per gateway, shared by its own and
// its site's topic).
type ConfigDoc struct {
	Format  int       `json:"format"`
	Site    string    `json:"site"`
	Gateway string    `json:"gateway,omitempty"`
	Version uint64    `json:"version"`
	Issued  time.Time `json:"issued"`
	YAML    string    `json:"yaml"`
}

// ConfigEnvelope is the payload: Doc's exact bytes, the signature over
// them and the signer's key id (16 hex digits: the first 8 bytes of the
// SHA-256 of the raw public key, as model offers name keys).
type ConfigEnvelope struct {
	Doc []byte `json:"doc"` // base64 in JSON
	Sig []byte `json:"sig"` // base64 in JSON, 64 bytes
	Key string `json:"key"`
}

// Matches reports whether d is addressed to gateway gw of site.
func (d *ConfigDoc) Matches(site, gw string) bool {
	return d.Site == site && (d.Gateway == "" || d.Gateway == gw)
}

func (d *ConfigDoc) validate() error {
	switch {
	case d.Format != ConfigFormat:
		return fmt.Errorf("%w: doc: format %d, this build reads %d", ErrBadConfigEnvelope, d.Format, ConfigFormat)
	case d.Version == 0 || d.Version > maxConfigVersion:
		return fmt.Errorf("%w: doc: version %d must be between 1 and %d", ErrBadConfigEnvelope, d.Version, uint64(maxConfigVersion))
	case gateway.ValidTopicLevel(d.Site) != nil:
		return fmt.Errorf("%w: doc: site %q: %v", ErrBadConfigEnvelope, d.Site, gateway.ValidTopicLevel(d.Site))
	case d.Gateway != "" && gateway.ValidTopicLevel(d.Gateway) != nil:
		return fmt.Errorf("%w: doc: gateway %q: %v", ErrBadConfigEnvelope, d.Gateway, gateway.ValidTopicLevel(d.Gateway))
	case strings.TrimSpace(d.YAML) == "":
		return fmt.Errorf("%w: doc: yaml is empty", ErrBadConfigEnvelope)
	}
	return nil
}

// SignConfig validates d and returns the payload signed with priv, whose
// public key's id is keyID.
func SignConfig(d ConfigDoc, priv ed25519.PrivateKey, keyID string) ([]byte, error) {
	if err := d.validate(); err != nil {
		return nil, err
	}
	if len(priv) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("shelfv1: sign desired config: private key of %d bytes", len(priv))
	}
	d.Issued = d.Issued.UTC()
	doc, err := json.Marshal(d)
	if err != nil {
		return nil, fmt.Errorf("shelfv1: encode desired config: %w", err)
	}
	p, err := json.Marshal(ConfigEnvelope{Doc: doc, Sig: ed25519.Sign(priv, doc), Key: keyID})
	if err != nil {
		return nil, fmt.Errorf("shelfv1: encode desired config: %w", err)
	}
	if len(p) > MaxConfigBytes {
		return nil, fmt.Errorf("shelfv1: desired config of %d bytes exceeds the limit of %d", len(p), MaxConfigBytes)
	}
	return p, nil
}

// DecodeConfigEnvelope parses a payload strictly: one JSON object with
// exactly doc, sig and key, nothing after it. It checks the form of the
// signature and key id, not the signature itself.
func DecodeConfigEnvelope(p []byte) (*ConfigEnvelope, error) {
	if len(p) > MaxConfigBytes {
		return nil, fmt.Errorf("%w: %d bytes exceeds the limit of %d", ErrBadConfigEnvelope, len(p), MaxConfigBytes)
	}
	var e ConfigEnvelope
	if err := strictJSON(p, &e); err != nil {
		return nil, err
	}
	switch {
	case len(e.Doc) == 0:
		return nil, fmt.Errorf("%w: field doc is missing or empty", ErrBadConfigEnvelope)
	case len(e.Sig) != ed25519.SignatureSize:
		return nil, fmt.Errorf("%w: field sig has %d bytes, want %d", ErrBadConfigEnvelope, len(e.Sig), ed25519.SignatureSize)
	case len(e.Key) != 16 || strings.Trim(e.Key, "0123456789abcdef") != "":
		return nil, fmt.Errorf("%w: field key %q is not 16 lowercase hex digits", ErrBadConfigEnvelope, e.Key)
	}
	return &e, nil
}

// DecodeConfigDoc parses the signed document strictly (call it only on
// bytes whose signature verified).
func DecodeConfigDoc(b []byte) (*ConfigDoc, error) {
	var d ConfigDoc
	if err := strictJSON(b, &d); err != nil {
		return nil, fmt.Errorf("doc: %w", err)
	}
	if err := d.validate(); err != nil {
		return nil, err
	}
	return &d, nil
}

// strictJSON decodes one JSON object into v: no unknown fields, no data
// after it.
func strictJSON(p []byte, v any) error {
	if t := bytes.TrimSpace(p); len(t) == 0 || t[0] != '{' {
		return fmt.Errorf("%w: not a JSON object", ErrBadConfigEnvelope)
	}
	dec := json.NewDecoder(bytes.NewReader(p))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %v", ErrBadConfigEnvelope, err)
	}
	if dec.More() {
		return fmt.Errorf("%w: data after the object", ErrBadConfigEnvelope)
	}
	return nil
}

// ConfigOutcome is the body of a config_applied or config_rejected event
// on the events topic (stream events/config):
//
//	{"kind":"config_applied","source":"mqtt","version":7,"key":"...","applied":["uplink.batch_records"],"restart":["broker"],"time":"..."}
//	{"kind":"config_rejected","source":"mqtt","version":8,"key":"...","reason":"invalid_config","error":"...","errors":["desired config v8:5: uplink.window: ..."],"time":"..."}
//
// Source is "mqtt" (a desired config) or "sighup" (the file reloaded;
// no version or key). Applied lists the fields changed live, Restart the
// changed fields that take effect only after a restart; Errors are the
// configuration's line-and-field errors when Reason is invalid_config.
type ConfigOutcome struct {
	Kind    gateway.EventKind `json:"kind"`
	Source  string            `json:"source"`
	Version uint64            `json:"version,omitempty"`
	Key     string            `json:"key,omitempty"`
	Applied []string          `json:"applied,omitempty"`
	Restart []string          `json:"restart,omitempty"`
	Reason  string            `json:"reason,omitempty"`
	Error   string            `json:"error,omitempty"`
	Errors  []string          `json:"errors,omitempty"`
	Time    time.Time         `json:"time"`
}

// Sources of a ConfigOutcome.
const (
	ConfigSourceMQTT   = "mqtt"
	ConfigSourceSIGHUP = "sighup"
)

// Encode returns the JSON form of o.
func (o ConfigOutcome) Encode() []byte {
	o.Time = o.Time.UTC()
	p, _ := json.Marshal(o) // strings, numbers and a time: cannot fail
	return p
}

// Record returns the durable event record of o.
func (o ConfigOutcome) Record() gateway.Record {
	return gateway.Record{Class: gateway.ClassEvent, Stream: StreamConfig, Time: o.Time, Body: o.Encode()}
}

// DecodeConfigOutcome parses an outcome (for consumers and tests).
func DecodeConfigOutcome(p []byte) (ConfigOutcome, error) {
	var o ConfigOutcome
	if err := strictJSON(p, &o); err != nil {
		return ConfigOutcome{}, err
	}
	if o.Kind != EventConfigApplied && o.Kind != EventConfigRejected {
		return ConfigOutcome{}, fmt.Errorf("%w: kind %q is no config outcome", ErrBadConfigEnvelope, o.Kind)
	}
	return o, nil
}
