package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/shelfgate/shelfgate/gateway"
	"github.com/shelfgate/shelfgate/gateway/downlink"
	"github.com/shelfgate/shelfgate/gateway/modelsync"
	"github.com/shelfgate/shelfgate/gateway/wire/shelfv1"
)

type recordedEvents struct{ recs []gateway.Record }

func (r *recordedEvents) Append(_ context.Context, recs []gateway.Record) error {
	r.recs = append(r.recs, recs...)
	return nil
}

// TestDesiredConfigHandleMutated feeds mutated payloads (bytes flipped,
// inserted, deleted, cut short, from validly signed documents) to the
// gateway's desired-config handler: it never panics, every payload ends in
// at most one outcome event (none when it is the document in effect, or a
// refusal reported before), and a payload is applied only when its
// signature verifies with the trusted key and its version is above every
// version accepted before. (The envelope decoder's fuzz target is
// shelfv1.FuzzDecodeConfigEnvelope; a fuzz target here stalls the fuzzing
// engine in this large package after a few executions, so this runs a
// fixed set of mutations instead.)
func TestDesiredConfigHandleMutated(t *testing.T) {
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{3}, ed25519.SeedSize))
	pub := priv.Public().(ed25519.PublicKey)
	kid := modelsync.KeyID(pub)
	yaml := "gateway: {id: gw-f, site: s-f}\noutbox: {path: o.db}\nsimulation: {seed: 1}\nuplink: {batch_records: 9}\n"
	var seeds [][]byte
	for i, y := range []string{yaml, yaml + "log: {level: debug}\n", "gateway: {id: gw-f, site: s-f}\nuplink: {window: -1}\n"} {
		v := uint64(i + 1)
		p, err := shelfv1.SignConfig(shelfv1.ConfigDoc{Format: 1, Site: "s-f", Gateway: "gw-f", Version: v, Issued: time.Unix(0, 0), YAML: y}, priv, kid)
		if err != nil {
			t.Fatal(err)
		}
		seeds = append(seeds, p)
	}
	seeds = append(seeds, []byte(`{"doc":"e30=","sig":"`+string(bytes.Repeat([]byte("A"), 86))+`==","key":"`+kid+`"}`))
	rng := rand.New(rand.NewPCG(1, 2))
	applied := 0
	for i := range 3000 {
		p := mutate(rng, seeds[i%len(seeds)], i < len(seeds))
		state, err := openDesiredState(filepath.Join(t.TempDir(), "o.db.config-version"))
		if err != nil {
			t.Fatal(err)
		}
		start := parseApply(t, yaml)
		ev := &recordedEvents{}
		log := slog.New(slog.DiscardHandler)
		d := &desiredConfig{topics: shelfv1.Topics{Site: "s-f", Gateway: "gw-f"}, keys: []ed25519.PublicKey{pub}, state: state,
			apply: newConfigApplier(start, new(slog.LevelVar), &fakeTuner{}, fakeBins{}),
			rep:   &configReporter{events: ev, log: log}, now: time.Now, log: log, seen: map[[32]byte]bool{}}
		for round := range 2 { // the second time it is the retained message again
			before := state.accepted().Version
			n := len(ev.recs)
			err := d.Handle(context.Background(), downlink.Message{Topic: "shelfgate/v1/s-f/gw-f/config", Payload: p})
			if len(ev.recs) > n+1 {
				t.Fatalf("round %d: %d events for one payload", round, len(ev.recs)-n)
			}
			if len(ev.recs) == n {
				continue // in effect already, or a refusal reported before
			}
			o, derr := shelfv1.DecodeConfigOutcome(ev.recs[n].Body)
			if derr != nil {
				t.Fatalf("outcome event: %v", derr)
			}
			if o.Kind != shelfv1.EventConfigApplied {
				if err == nil || o.Reason == "" {
					t.Fatalf("refusal %+v with handler error %v", o, err)
				}
				continue
			}
			env, eerr := shelfv1.DecodeConfigEnvelope(p)
			if eerr != nil || !ed25519.Verify(pub, env.Doc, env.Sig) {
				t.Fatalf("applied a payload whose signature does not verify: %+v", o)
			}
			applied++
			if o.Version <= before || state.accepted().Version != o.Version || state.applied.Load() != o.Version {
				t.Fatalf("applied version %d over accepted %d (now %d, in effect %d)", o.Version, before, state.accepted().Version, state.applied.Load())
			}
		}
	}
	if applied == 0 {
		t.Error("no payload was applied: the mutations never kept a valid one")
	}
}

// mutate returns p changed by one to four random edits (p itself when
// keep).
func mutate(rng *rand.Rand, p []byte, keep bool) []byte {
	q := append([]byte(nil), p...)
	if keep {
		return q
	}
	for range 1 + rng.IntN(4) {
		if len(q) == 0 {
			return q
		}
		i := rng.IntN(len(q))
		switch rng.IntN(4) {
		case 0:
			q[i] ^= byte(1 << rng.IntN(8))
		case 1:
			q = append(q[:i], q[i+1:]...)
		case 2:
			q = append(q[:i], append([]byte{byte(rng.IntN(256))}, q[i:]...)...)
		case 3:
			q = q[:i]
		}
	}
	return q
}
