package modelsync

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/shelfgate/shelfgate/gateway"
)

// Protocol limits (docs/model-sync.md).
const (
	// ManifestFormat is the only manifest "format" value this build reads.
	ManifestFormat = 1
	// MaxOfferBytes bounds an offer payload.
	MaxOfferBytes = 64 << 10
	// MinBlockSize and MaxBlockSize bound a manifest's block size.
	MinBlockSize = 1 << 10
	MaxBlockSize = 1 << 20
	// DefaultBlockSize fits comfortably under common broker packet limits.
	DefaultBlockSize = 32 << 10
	// MaxGateways bounds a manifest's gateway list.
	MaxGateways = 4096
	maxNameLen  = 128
	maxVersion  = 1<<63 - 1
	maxLength   = 1 << 40
)

// Target names who a manifest is for: one site, and either All gateways of
// it or the listed Gateways.
type Target struct {
	Site     string   `json:"site"`
	Gateways []string `json:"gateways,omitempty"`
	All      bool     `json:"all,omitempty"`
}

// Matches reports whether the target includes gateway gw of site.
func (t Target) Matches(site, gw string) bool {
	if t.Site != site {
		return false
	}
	if t.All {
		return true
	}
	for _, g := range t.Gateways {
		if g == gw {
			return true
		}
	}
	return false
}

// Manifest describes one model file offered to gateways. Its JSON bytes are
// what the cloud signs (docs/model-sync.md).
type Manifest struct {
	Format    int       `json:"format"`
	Name      string    `json:"name"`
	Version   uint64    `json:"version"`
	Length    int64     `json:"length"`
	SHA256    string    `json:"sha256"`
	BlockSize int       `json:"block_size"`
	Blocks    int       `json:"blocks"`
	Target    Target    `json:"target"`
	Expires   time.Time `json:"expires"`
}

// Envelope is the offer payload: the exact manifest bytes, the ed25519
// signature over them and the signer's key id (KeyID).
type Envelope struct {
	Manifest []byte `json:"manifest"` // base64 in JSON
	Sig      []byte `json:"sig"`      // base64 in JSON, 64 bytes
	Key      string `json:"key"`      // KeyID of the signer
}

// NewManifest describes data as model name/version with the given block
// size (0 means DefaultBlockSize), target and expiry.
func NewManifest(name string, version uint64, data []byte, blockSize int, target Target, expires time.Time) Manifest {
	if blockSize == 0 {
		blockSize = DefaultBlockSize
	}
	sum := sha256.Sum256(data)
	return Manifest{
		Format: ManifestFormat, Name: name, Version: version, Length: int64(len(data)),
		SHA256: hex.EncodeToString(sum[:]), BlockSize: blockSize,
		Blocks: (len(data) + blockSize - 1) / blockSize, Target: target, Expires: expires.UTC(),
	}
}

// SignManifest validates m, encodes it and returns the offer payload signed
// with priv.
func SignManifest(m Manifest, priv ed25519.PrivateKey) ([]byte, error) {
	if err := m.validate(); err != nil {
		return nil, err
	}
	body, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode manifest: %w", err)
	}
	env := Envelope{Manifest: body, Sig: ed25519.Sign(priv, body), Key: KeyID(priv.Public().(ed25519.PublicKey))}
	return json.Marshal(env)
}

// DecodeEnvelope parses an offer payload strictly: a JSON object with
// exactly the fields manifest, sig and key, no duplicates, nothing after it.
func DecodeEnvelope(payload []byte) (*Envelope, error) {
	if len(payload) > MaxOfferBytes {
		return nil, fmt.Errorf("offer of %d bytes, limit %d: %w", len(payload), MaxOfferBytes, ErrMalformed)
	}
	var e Envelope
	if err := strictUnmarshal(payload, &e); err != nil {
		return nil, fmt.Errorf("offer: %w", err)
	}
	switch {
	case len(e.Manifest) == 0:
		return nil, fmt.Errorf("offer: field manifest is empty: %w", ErrMalformed)
	case len(e.Sig) != ed25519.SignatureSize:
		return nil, fmt.Errorf("offer: field sig has %d bytes, want %d: %w", len(e.Sig), ed25519.SignatureSize, ErrMalformed)
	case len(e.Key) != 16 || strings.Trim(e.Key, "0123456789abcdef") != "":
		return nil, fmt.Errorf("offer: field key %q is not 16 lowercase hex digits: %w", e.Key, ErrMalformed)
	}
	return &e, nil
}

// DecodeManifest parses manifest bytes strictly: every field present and
// valid, no unknown or duplicate fields, nothing after the object.
func DecodeManifest(data []byte) (*Manifest, error) {
	var m Manifest
	if err := strictUnmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	if err := m.validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

func (m *Manifest) validate() error {
	bad := func(field string, v any, rule string) error {
		return fmt.Errorf("manifest: field %s = %v: %s: %w", field, v, rule, ErrMalformed)
	}
	switch {
	case m.Format != ManifestFormat:
		return bad("format", m.Format, fmt.Sprintf("this build reads %d", ManifestFormat))
	case m.Name == "" || len(m.Name) > maxNameLen:
		return bad("name", fmt.Sprintf("%q", m.Name), fmt.Sprintf("want 1 to %d bytes", maxNameLen))
	case m.Version == 0 || m.Version > maxVersion:
		return bad("version", m.Version, "want 1 to 2^63-1")
	case m.Length <= 0 || m.Length > maxLength:
		return bad("length", m.Length, "want 1 to 2^40")
	case len(m.SHA256) != 64 || strings.Trim(m.SHA256, "0123456789abcdef") != "":
		return bad("sha256", fmt.Sprintf("%q", m.SHA256), "want 64 lowercase hex digits")
	case m.BlockSize < MinBlockSize || m.BlockSize > MaxBlockSize:
		return bad("block_size", m.BlockSize, fmt.Sprintf("want %d to %d", MinBlockSize, MaxBlockSize))
	case int64(m.Blocks) != (m.Length+int64(m.BlockSize)-1)/int64(m.BlockSize):
		return bad("blocks", m.Blocks, fmt.Sprintf("length %d in blocks of %d needs %d", m.Length, m.BlockSize, (m.Length+int64(m.BlockSize)-1)/int64(m.BlockSize)))
	case m.Expires.IsZero():
		return bad("expires", "missing", "want an RFC 3339 time")
	}
	for _, c := range m.Name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return bad("name", fmt.Sprintf("%q", m.Name), "use letters, digits, '-', '_' or '.'")
		}
	}
	if err := gateway.ValidTopicLevel(m.Target.Site); err != nil {
		return bad("target.site", fmt.Sprintf("%q", m.Target.Site), err.Error())
	}
	if m.Target.All == (len(m.Target.Gateways) > 0) {
		return bad("target", fmt.Sprintf("all=%v gateways=%d", m.Target.All, len(m.Target.Gateways)), "want either all or a gateway list")
	}
	if len(m.Target.Gateways) > MaxGateways {
		return bad("target.gateways", len(m.Target.Gateways), fmt.Sprintf("at most %d", MaxGateways))
	}
	for i, g := range m.Target.Gateways {
		if err := gateway.ValidTopicLevel(g); err != nil || g == "all" {
			return bad(fmt.Sprintf("target.gateways[%d]", i), fmt.Sprintf("%q", g), "not a gateway id")
		}
	}
	return nil
}

// blockLen is the length of block i.
func (m *Manifest) blockLen(i int) int {
	if i == m.Blocks-1 {
		return int(m.Length - int64(i)*int64(m.BlockSize))
	}
	return m.BlockSize
}

// strictUnmarshal decodes one JSON object into v, refusing unknown fields,
// duplicate keys at any depth and anything after the value.
func strictUnmarshal(data []byte, v any) error {
	if err := noDuplicateKeys(data); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%v: %w", err, ErrMalformed)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("data after the JSON object: %w", ErrMalformed)
	}
	return nil
}

// noDuplicateKeys walks data's tokens and fails on an object with a key
// twice (encoding/json would silently keep the last).
func noDuplicateKeys(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	var walk func(depth int) error
	walk = func(depth int) error {
		if depth > 8 {
			return fmt.Errorf("nested deeper than 8: %w", ErrMalformed)
		}
		t, err := dec.Token()
		if err != nil {
			return fmt.Errorf("%v: %w", err, ErrMalformed)
		}
		d, ok := t.(json.Delim)
		if !ok {
			return nil
		}
		switch d {
		case '{':
			seen := map[string]bool{}
			for dec.More() {
				k, err := dec.Token()
				if err != nil {
					return fmt.Errorf("%v: %w", err, ErrMalformed)
				}
				key, _ := k.(string)
				if seen[key] {
					return fmt.Errorf("duplicate field %q: %w", key, ErrMalformed)
				}
				seen[key] = true
				if err := walk(depth + 1); err != nil {
					return err
				}
			}
		case '[':
			for dec.More() {
				if err := walk(depth + 1); err != nil {
					return err
				}
			}
		}
		if _, err := dec.Token(); err != nil {
			return fmt.Errorf("%v: %w", err, ErrMalformed)
		}
		return nil
	}
	return walk(0)
}

// Policy is what a gateway checks an offer against.
type Policy struct {
	Keys       []ed25519.PublicKey // trusted signers; none means every offer is refused
	Site       string
	Gateway    string
	MaxLength  int64     // largest model file accepted
	ClockFloor time.Time // a clock before this is not set yet
}

// DefaultClockFloor is the earliest time a gateway's clock can be set to;
// earlier means no RTC and no NTP yet.
var DefaultClockFloor = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// DefaultMaxModelBytes is the largest model a gateway accepts by default.
const DefaultMaxModelBytes = 50 << 20

// VerifyOffer decodes and checks an offer payload: key, signature,
// manifest, target, anti-rollback against highest, length, clock and
// expiry, in that order. ErrClockNotSet means "retry when the clock is
// set"; the manifest is returned with it.
func (p Policy) VerifyOffer(payload []byte, now time.Time, highest uint64) (*Manifest, *Envelope, error) {
	env, err := DecodeEnvelope(payload)
	if err != nil {
		return nil, nil, err
	}
	var key ed25519.PublicKey
	for _, k := range p.Keys {
		if KeyID(k) == env.Key {
			key = k
		}
	}
	if key == nil {
		return nil, nil, fmt.Errorf("offer: key %s is not trusted (%d trusted keys): %w", env.Key, len(p.Keys), ErrUnknownKey)
	}
	if !ed25519.Verify(key, env.Manifest, env.Sig) {
		return nil, nil, fmt.Errorf("offer: signature does not verify with key %s: %w", env.Key, ErrBadSignature)
	}
	m, err := DecodeManifest(env.Manifest)
	if err != nil {
		return nil, nil, err
	}
	if !m.Target.Matches(p.Site, p.Gateway) {
		return nil, nil, fmt.Errorf("manifest: target %+v does not include site %q gateway %q: %w", m.Target, p.Site, p.Gateway, ErrTarget)
	}
	if m.Version <= highest {
		// The verified manifest comes back with the error, so a caller
		// can tell the installed model offered again from a real rollback.
		return m, env, fmt.Errorf("manifest: version %d, highest installed %d: %w", m.Version, highest, ErrRollback)
	}
	max := p.MaxLength
	if max <= 0 {
		max = DefaultMaxModelBytes
	}
	if m.Length > max {
		return nil, nil, fmt.Errorf("manifest: length %d over the limit of %d bytes: %w", m.Length, max, ErrTooLarge)
	}
	floor := p.ClockFloor
	if floor.IsZero() {
		floor = DefaultClockFloor
	}
	if now.Before(floor) {
		return m, env, fmt.Errorf("manifest: clock reads %s, before %s: %w", now.UTC().Format(time.RFC3339), floor.Format(time.RFC3339), ErrClockNotSet)
	}
	if !now.Before(m.Expires) {
		return nil, nil, fmt.Errorf("manifest: expired at %s, now %s: %w", m.Expires.Format(time.RFC3339), now.UTC().Format(time.RFC3339), ErrExpired)
	}
	return m, env, nil
}
