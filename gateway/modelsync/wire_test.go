package modelsync

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden payload files in testdata")

// golden compares got with testdata/name, rewriting it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s changed:\ngot  %s\nwant %s", name, got, want)
	}
}

// goldenManifest is the manifest of the payload golden files.
func goldenManifest() (Manifest, []byte) {
	data := bytes.Repeat([]byte("shelfgate"), 300) // 2700 bytes: blocks of 1024, 1024, 652
	return NewManifest("shelf-mlp", 7, data, 1024, Target{Site: "site-a", Gateways: []string{"gw-01", "gw-02"}},
		time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC)), data
}

// The payloads the cloud sees and sends, as docs/model-sync.md shows them.
func TestGoldenPayloads(t *testing.T) {
	_, priv := testKey(1)
	m, data := goldenManifest()
	offer, err := SignManifest(m, priv)
	if err != nil {
		t.Fatal(err)
	}
	var pretty bytes.Buffer
	json.Indent(&pretty, offer, "", "  ")
	golden(t, "offer.golden.json", append(pretty.Bytes(), '\n'))
	env, _ := DecodeEnvelope(offer)
	golden(t, "manifest.golden.json", append(env.Manifest, '\n'))

	blocks := SplitBlocks(m, data)
	if len(blocks) != 3 || len(blocks[2]) != BlockHeaderSize+652 {
		t.Fatalf("blocks: %d, last %d bytes", len(blocks), len(blocks[len(blocks)-1]))
	}
	golden(t, "block2.golden.hex", []byte(hex.Dump(blocks[2][:BlockHeaderSize+16])))

	golden(t, "request.golden.json", append(Request{Name: "shelf-mlp", Version: 7, Blocks: []int{0, 1, 2}, Round: 0}.Payload(), '\n'))

	st := Status{State: StateTransferring, Active: ModelRef{Name: "shelf-mlp", Version: 6}, Previous: 5, Highest: 6,
		Offer: &OfferStatus{Name: "shelf-mlp", Version: 7, Blocks: 3, Received: 1}, OfferID: OfferID(offer), Time: testNow}
	b, _ := json.Marshal(st)
	golden(t, "status-transferring.golden.json", append(b, '\n'))
	st = Status{State: StateRejected, Active: ModelRef{Name: "shelf-mlp", Version: 6}, Previous: 5, Highest: 6,
		OfferID: OfferID(offer), Code: Code(ErrExpired), Reason: "manifest: expired at 2026-05-01T00:00:00Z, now 2026-06-01T12:00:00Z: manifest expired", Time: testNow}
	b, _ = json.Marshal(st)
	golden(t, "status-rejected.golden.json", append(b, '\n'))
}

func TestDecodeManifestStrict(t *testing.T) {
	m, _ := goldenManifest()
	good, _ := json.Marshal(m)
	edit := func(from, to string) []byte {
		if !strings.Contains(string(good), from) {
			t.Fatalf("%q not in %s", from, good)
		}
		return []byte(strings.Replace(string(good), from, to, 1))
	}
	cases := []struct {
		name  string
		data  []byte
		field string // named in the error
	}{
		{"unknown field", edit(`"format":1`, `"format":1,"extra":true`), "extra"},
		{"duplicate field", edit(`"format":1`, `"format":1,"format":1`), "duplicate"},
		{"trailing data", append(bytes.Clone(good), []byte(` {}`)...), "after"},
		{"format", edit(`"format":1`, `"format":2`), "format"},
		{"empty name", edit(`"name":"shelf-mlp"`, `"name":""`), "name"},
		{"name with a slash", edit(`"name":"shelf-mlp"`, `"name":"a/b"`), "name"},
		{"version 0", edit(`"version":7`, `"version":0`), "version"},
		{"version over 2^63-1", edit(`"version":7`, `"version":9223372036854775808`), "version"},
		{"negative version", edit(`"version":7`, `"version":-1`), "version"},
		{"length 0", edit(`"length":2700`, `"length":0`), "length"},
		{"sha256 upper case", edit(`"sha256":"`, `"sha256":"AB`), "sha256"},
		{"block size too small", edit(`"block_size":1024`, `"block_size":512`), "block_size"},
		{"block count", edit(`"blocks":3`, `"blocks":4`), "blocks"},
		{"no expiry", edit(`,"expires":"2026-12-31T00:00:00Z"`, ``), "expires"},
		{"bad expiry", edit(`"expires":"2026-12-31T00:00:00Z"`, `"expires":"tomorrow"`), "tomorrow"},
		{"all and list", edit(`"gateways":["gw-01","gw-02"]`, `"gateways":["gw-01"],"all":true`), "target"},
		{"neither all nor list", edit(`"gateways":["gw-01","gw-02"]`, `"gateways":[]`), "target"},
		{"gateway all in list", edit(`"gw-02"`, `"all"`), "target.gateways[1]"},
		{"bad site", edit(`"site":"site-a"`, `"site":"a+b"`), "target.site"},
		{"not an object", []byte(`[1]`), "cannot unmarshal"},
		{"string for a number", edit(`"version":7`, `"version":"7"`), "version"},
		{"deep nesting", []byte(strings.Repeat("[", 20) + strings.Repeat("]", 20)), "deeper"},
	}
	if _, err := DecodeManifest(good); err != nil {
		t.Fatalf("good manifest: %v", err)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeManifest(tc.data)
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("error %v, want ErrMalformed naming %q", err, tc.field)
			}
		})
	}
}

func TestDecodeEnvelopeStrict(t *testing.T) {
	cases := []struct{ name, data, want string }{
		{"short sig", `{"manifest":"e30=","sig":"AAAA","key":"0123456789abcdef"}`, "sig"},
		{"no manifest", `{"sig":"` + strings.Repeat("A", 86) + `==","key":"0123456789abcdef"}`, "manifest"},
		{"bad key id", `{"manifest":"e30=","sig":"` + strings.Repeat("A", 86) + `==","key":"KEY"}`, "key"},
		{"unknown field", `{"manifest":"e30=","x":1}`, "x"},
		{"not base64", `{"manifest":"!!","sig":"","key":""}`, "base64"},
		{"too large", `{"manifest":"` + strings.Repeat("A", MaxOfferBytes) + `"}`, "limit"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeEnvelope([]byte(tc.data))
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want ErrMalformed naming %q", err, tc.want)
			}
		})
	}
}

func TestVerifyOfferOrder(t *testing.T) {
	pub, priv := testKey(1)
	m, _ := goldenManifest()
	p, _ := SignManifest(m, priv)
	pol := Policy{Keys: []ed25519.PublicKey{pub}, Site: "site-a", Gateway: "gw-02"}
	if got, _, err := pol.VerifyOffer(p, testNow, 6); err != nil || got.Version != 7 {
		t.Fatalf("verify: %v", err)
	}
	// The clock check comes before expiry: an unset clock waits, even for
	// a manifest that would look expired.
	_, _, err := pol.VerifyOffer(p, time.Unix(100, 0), 6)
	if !errors.Is(err, ErrClockNotSet) {
		t.Fatalf("unset clock: %v", err)
	}
	if _, _, err := pol.VerifyOffer(p, m.Expires, 6); !errors.Is(err, ErrExpired) {
		t.Fatalf("at expiry: %v", err)
	}
	if _, _, err := pol.VerifyOffer(p, testNow, 7); !errors.Is(err, ErrRollback) {
		t.Fatalf("equal version: %v", err)
	}
}

func TestDecodeBlockStrict(t *testing.T) {
	m, data := goldenManifest()
	blocks := SplitBlocks(m, data)
	b, err := DecodeBlock(blocks[1], m.BlockSize)
	if err != nil || b.Index != 1 || b.Version != 7 || !bytes.Equal(b.Data, data[1024:2048]) {
		t.Fatalf("block 1: %+v %v", b.Index, err)
	}
	mut := func(f func(p []byte) []byte) []byte { return f(bytes.Clone(blocks[1])) }
	cases := []struct {
		name string
		p    []byte
		max  int
		want string
	}{
		{"empty", nil, 1024, "header needs"},
		{"magic", mut(func(p []byte) []byte { p[0] = 'X'; return p }), 1024, "magic"},
		{"truncated", mut(func(p []byte) []byte { return p[:len(p)-1] }), 1024, "length field"},
		{"extra byte", mut(func(p []byte) []byte { return append(p, 0) }), 1024, "length field"},
		{"data flipped", mut(func(p []byte) []byte { p[100] ^= 1; return p }), 1024, "SHA-256"},
		{"hash flipped", mut(func(p []byte) []byte { p[25] ^= 1; return p }), 1024, "SHA-256"},
		{"over the block size", blocks[1], 1000, "want 1 to 1000"},
		{"no data", EncodeBlock(7, 0, nil), 1024, "want 1 to"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeBlock(tc.p, tc.max)
			if !errors.Is(err, ErrCorruptBlock) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want ErrCorruptBlock with %q", err, tc.want)
			}
		})
	}
}

// A block whose length does not fit its index, or for another version, is
// refused by the transfer.
func TestTransferPutChecks(t *testing.T) {
	r := newRig(t, nil)
	m, data := goldenManifest()
	m.Target = Target{Site: "s1", All: true}
	env, _ := SignManifest(m, r.priv)
	tr, err := r.store.BeginTransfer(t.Context(), &m, env)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	short := Block{Version: 7, Index: 0, Data: data[:100]}
	if _, err := tr.Put(t.Context(), short); !errors.Is(err, ErrCorruptBlock) {
		t.Fatalf("short block 0: %v", err)
	}
	if _, err := tr.Put(t.Context(), Block{Version: 8, Index: 0, Data: data[:1024]}); !errors.Is(err, ErrNoTransfer) {
		t.Fatalf("other version: %v", err)
	}
	if _, err := tr.Put(t.Context(), Block{Version: 7, Index: 3, Data: data[:1]}); !errors.Is(err, ErrCorruptBlock) {
		t.Fatalf("index out of range: %v", err)
	}
	fresh, err := tr.Put(t.Context(), Block{Version: 7, Index: 2, Data: data[2048:]})
	if err != nil || !fresh {
		t.Fatalf("last block: %v %v", fresh, err)
	}
	if fresh, _ := tr.Put(t.Context(), Block{Version: 7, Index: 2, Data: data[2048:]}); fresh {
		t.Fatal("duplicate block counted as new")
	}
	if got := tr.Missing(); len(got) != 2 || got[0] != 0 || got[1] != 1 {
		t.Fatalf("missing %v", got)
	}
}

func FuzzDecodeManifest(f *testing.F) {
	m, _ := goldenManifest()
	good, _ := json.Marshal(m)
	f.Add(good)
	f.Add([]byte(`{"format":1,"format":1}`))
	f.Add([]byte(`{"target":{"site":"a","all":true,"gateways":["b"]}}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := DecodeManifest(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error without ErrMalformed: %v", err)
			}
			return
		}
		// Whatever decodes is valid and re-encodes to a manifest that
		// decodes to the same value.
		if err := got.validate(); err != nil {
			t.Fatal(err)
		}
		again, err := json.Marshal(got)
		if err != nil {
			t.Fatal(err)
		}
		m2, err := DecodeManifest(again)
		if err != nil || m2.Version != got.Version || m2.SHA256 != got.SHA256 || m2.Blocks != got.Blocks {
			t.Fatalf("round trip: %v", err)
		}
	})
}

func FuzzVerifyOffer(f *testing.F) {
	pub, priv := testKey(1)
	m, _ := goldenManifest()
	good, _ := SignManifest(m, priv)
	f.Add(good)
	f.Add([]byte(`{"manifest":"e30=","sig":"","key":""}`))
	pol := Policy{Keys: []ed25519.PublicKey{pub}, Site: "site-a", Gateway: "gw-01"}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, _, err := pol.VerifyOffer(data, testNow, 0)
		if err == nil && (got == nil || !got.Target.Matches("site-a", "gw-01")) {
			t.Fatal("accepted an offer not for this gateway")
		}
		if err != nil && Code(err) == "internal" {
			t.Fatalf("error without a sentinel: %v", err)
		}
	})
}

func FuzzDecodeBlock(f *testing.F) {
	m, data := goldenManifest()
	for _, b := range SplitBlocks(m, data) {
		f.Add(b, 1024)
	}
	f.Add([]byte("SGB1"), 1024)
	f.Fuzz(func(t *testing.T, payload []byte, max int) {
		if max <= 0 || max > MaxBlockSize {
			max = 1024
		}
		b, err := DecodeBlock(payload, max)
		if err != nil {
			if !errors.Is(err, ErrCorruptBlock) {
				t.Fatalf("error without ErrCorruptBlock: %v", err)
			}
			return
		}
		if len(b.Data) == 0 || len(b.Data) > max {
			t.Fatalf("accepted %d bytes with max %d", len(b.Data), max)
		}
		if !bytes.Equal(EncodeBlock(b.Version, b.Index, b.Data), payload) {
			t.Fatal("re-encoding differs")
		}
	})
}
