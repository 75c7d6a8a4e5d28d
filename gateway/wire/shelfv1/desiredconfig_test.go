package shelfv1

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// goldenConfigKey is a fixed test key: signatures are deterministic.
func goldenConfigKey() (ed25519.PrivateKey, string) {
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))
	sum := sha256.Sum256(priv.Public().(ed25519.PublicKey))
	return priv, hex.EncodeToString(sum[:8])
}

func goldenConfigDoc() ConfigDoc {
	return ConfigDoc{Format: ConfigFormat, Site: "site-1", Gateway: "gw-1", Version: 7, Issued: goldenTime,
		YAML: "gateway:\n  id: gw-1\n  site: site-1\nuplink:\n  batch_records: 100\nlog:\n  level: debug\n"}
}

// TestGoldenDesiredConfig pins the envelope, the outcome events and a
// status carrying config_version, and checks each decodes back.
func TestGoldenDesiredConfig(t *testing.T) {
	priv, kid := goldenConfigKey()
	env, err := SignConfig(goldenConfigDoc(), priv, kid)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "desired_config.json", env)
	e, err := DecodeConfigEnvelope(env)
	if err != nil {
		t.Fatal(err)
	}
	if !ed25519.Verify(priv.Public().(ed25519.PublicKey), e.Doc, e.Sig) || e.Key != kid {
		t.Fatal("the golden envelope's signature does not verify")
	}
	d, err := DecodeConfigDoc(e.Doc)
	if err != nil {
		t.Fatal(err)
	}
	if want := goldenConfigDoc(); d.Version != want.Version || d.YAML != want.YAML || !d.Issued.Equal(want.Issued) || !d.Matches("site-1", "gw-1") || d.Matches("site-1", "gw-2") {
		t.Errorf("decoded %+v", d)
	}

	applied := ConfigOutcome{Kind: EventConfigApplied, Source: ConfigSourceMQTT, Version: 7, Key: kid,
		Applied: []string{"log.level", "uplink.batch_records"}, Restart: []string{"broker"}, Time: goldenTime}
	rejected := ConfigOutcome{Kind: EventConfigRejected, Source: ConfigSourceMQTT, Version: 8, Key: kid, Reason: "invalid_config",
		Error: "desired config v8 fails validation: 1 error(s)", Errors: []string{"desired config v8:5: uplink.window: -3 must be between 1 and 1024"}, Time: goldenTime}
	for name, o := range map[string]ConfigOutcome{"config_applied.json": applied, "config_rejected.json": rejected} {
		p := o.Encode()
		golden(t, name, p)
		back, err := DecodeConfigOutcome(p)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(back.Encode(), p) {
			t.Errorf("%s does not round-trip", name)
		}
		if r := o.Record(); r.Stream != StreamConfig || r.Class != 1 || !bytes.Equal(r.Body, p) {
			t.Errorf("%s record %+v", name, r)
		}
	}
	fields := map[string]any{"version": "v1.2.3", "backlog": 0, StatusConfigVersion: uint64(7)}
	golden(t, "birth_config_version.json", goldenCodec.Status(StateOnline, "", fields, goldenTime))
}

func TestDesiredConfigTopics(t *testing.T) {
	if got := goldenTopics.Config(); got != "shelfgate/v1/site-1/gw-1/config" {
		t.Errorf("Config() = %s", got)
	}
	if got := goldenTopics.SiteConfig(); got != "shelfgate/v1/site-1/all/config" {
		t.Errorf("SiteConfig() = %s", got)
	}
}

// TestDecodeConfigEnvelopeRejects lists malformed payloads, each refused
// with ErrBadConfigEnvelope and a message naming the problem.
func TestDecodeConfigEnvelopeRejects(t *testing.T) {
	priv, kid := goldenConfigKey()
	good, err := SignConfig(goldenConfigDoc(), priv, kid)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(good, &m); err != nil {
		t.Fatal(err)
	}
	with := func(k string, v any) []byte {
		c := map[string]any{}
		for kk, vv := range m {
			c[kk] = vv
		}
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		p, _ := json.Marshal(c)
		return p
	}
	for _, tc := range []struct {
		name, want string
		p          []byte
	}{
		{"empty", "not a JSON object", nil},
		{"array", "not a JSON object", []byte("[]")},
		{"trailing", "data after", append(append([]byte{}, good...), []byte(" {}")...)},
		{"unknown field", "unknown field", with("extra", 1)},
		{"no doc", "doc is missing", with("doc", nil)},
		{"short sig", "sig has 3 bytes", with("sig", "AAAA")},
		{"bad key", "not 16 lowercase hex", with("key", "ABCDEF0123456789")},
		{"oversize", "exceeds the limit", append(good, bytes.Repeat([]byte(" "), MaxConfigBytes)...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeConfigEnvelope(tc.p)
			if !errors.Is(err, ErrBadConfigEnvelope) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want ErrBadConfigEnvelope with %q", err, tc.want)
			}
		})
	}
	for _, tc := range []struct {
		name, want string
		d          func(*ConfigDoc)
	}{
		{"format", "format 2", func(d *ConfigDoc) { d.Format = 2 }},
		{"version 0", "version 0", func(d *ConfigDoc) { d.Version = 0 }},
		{"site", "site", func(d *ConfigDoc) { d.Site = "a/b" }},
		{"yaml", "yaml is empty", func(d *ConfigDoc) { d.YAML = " \n" }},
	} {
		t.Run("doc "+tc.name, func(t *testing.T) {
			d := goldenConfigDoc()
			tc.d(&d)
			b, _ := json.Marshal(d)
			if _, err := DecodeConfigDoc(b); !errors.Is(err, ErrBadConfigEnvelope) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
			if _, err := SignConfig(d, priv, kid); err == nil {
				t.Error("SignConfig signed an invalid document")
			}
		})
	}
}

// FuzzDecodeConfigEnvelope: the decoders never panic, and whatever they
// accept is within the limits and re-encodes to an envelope they accept.
func FuzzDecodeConfigEnvelope(f *testing.F) {
	priv, kid := goldenConfigKey()
	good, err := SignConfig(goldenConfigDoc(), priv, kid)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{"doc":"e30=","sig":"","key":"0123456789abcdef"}`))
	f.Add([]byte(`{"doc":null}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, p []byte) {
		e, err := DecodeConfigEnvelope(p)
		if err != nil {
			if !errors.Is(err, ErrBadConfigEnvelope) {
				t.Fatalf("error %v does not wrap ErrBadConfigEnvelope", err)
			}
			return
		}
		if len(e.Sig) != ed25519.SignatureSize || len(e.Key) != 16 || len(e.Doc) == 0 {
			t.Fatalf("accepted %+v", e)
		}
		again, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := DecodeConfigEnvelope(again); err != nil {
			t.Fatalf("re-encoded envelope refused: %v", err)
		}
		if d, err := DecodeConfigDoc(e.Doc); err == nil && (d.Version == 0 || d.Format != ConfigFormat || d.YAML == "") {
			t.Fatalf("accepted doc %+v", d)
		}
	})
}
