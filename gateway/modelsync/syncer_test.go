package modelsync

import (
	"context"
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shelfgate/shelfgate/model"
)

func TestTransferPromotes(t *testing.T) {
	r := newRig(t, nil)
	r.install(1)
	data := modelFile(t, 2, r.priv, nil)
	payload, m := r.offer(data, 2, nil)
	if err := r.sync.Offer(context.Background(), payload); err != nil {
		t.Fatal(err)
	}
	if st := r.sync.Status(); st.State != StateTransferring || st.Offer == nil || st.Offer.Blocks != m.Blocks {
		t.Fatalf("status after offer: %+v", st)
	}
	sent := r.serve(SplitBlocks(m, data), -1, nil)
	if sent != m.Blocks {
		t.Errorf("delivered %d blocks, manifest has %d", sent, m.Blocks)
	}
	st := r.sync.Status()
	if st.State != StatePromoted || st.Active.Version != 2 || st.Previous != 1 || st.Highest != 2 {
		t.Fatalf("status: %+v", st)
	}
	if v := r.activeVersion(); v != 2 {
		t.Fatalf("active version %d, want 2", v)
	}
	if l := leftovers(t, r.dir); len(l) != 0 {
		t.Errorf("leftover files %v", l)
	}
	// The same offer again (the broker re-delivers a retained offer on
	// every reconnect) is no refusal: the status still says promoted.
	if err := r.sync.Offer(context.Background(), payload); err != nil {
		t.Fatalf("re-offer of the active model: %v", err)
	}
	if st := r.sync.Status(); st.State != StatePromoted || st.Active.Version != 2 {
		t.Fatalf("status after the active model was offered again: %+v", st)
	}
	// The same version with other bytes is refused: anti-rollback.
	other, _ := r.offer(modelFile(t, 2, r.priv, func(m *model.Model) { m.Name += "-other" }), 2, nil)
	if err := r.sync.Offer(context.Background(), other); !errors.Is(err, ErrRollback) {
		t.Fatalf("offer of version 2 with other bytes: %v, want ErrRollback", err)
	}
	// Survives a restart.
	r.open()
	if v := r.activeVersion(); v != 2 || r.store.Previous() != 1 || r.store.Highest() != 2 {
		t.Fatalf("after reopen: active %d previous %d highest %d", v, r.store.Previous(), r.store.Highest())
	}
}

// Every rejection of issue 11 reachable without MQTT leaves version 1
// active and reports a reason with its code.
func TestRejectionsKeepOldModel(t *testing.T) {
	_, otherPriv := testKey(9)
	cases := []struct {
		name      string
		cfg       func(*Config, *StoreOptions)
		file      func(r *rig) []byte
		offer     func(r *rig, data []byte) ([]byte, Manifest)
		corrupt   func(i int, p []byte) []byte
		want      error
		wantMod   error  // model package sentinel also wrapped
		installed uint64 // active version before the offer; 1 when 0
	}{
		{name: "bad signature", offer: func(r *rig, data []byte) ([]byte, Manifest) {
			p, m := r.offer(data, 2, nil)
			env, _ := DecodeEnvelope(p)
			env.Sig[3] ^= 1
			return mustJSON(t, env), m
		}, want: ErrBadSignature},
		{name: "manifest bytes changed after signing", offer: func(r *rig, data []byte) ([]byte, Manifest) {
			p, m := r.offer(data, 2, nil)
			env, _ := DecodeEnvelope(p)
			env.Manifest = []byte(strings.Replace(string(env.Manifest), `"version":2`, `"version":3`, 1))
			return mustJSON(t, env), m
		}, want: ErrBadSignature},
		{name: "unknown key", offer: func(r *rig, data []byte) ([]byte, Manifest) {
			m := NewManifest("reference", 2, data, MinBlockSize, Target{Site: "s1", All: true}, testNow.Add(time.Hour))
			p, err := SignManifest(m, otherPriv)
			if err != nil {
				t.Fatal(err)
			}
			return p, m
		}, want: ErrUnknownKey},
		{name: "model file signed by an untrusted key", file: func(r *rig) []byte { return modelFile(t, 2, otherPriv, nil) },
			want: ErrBadSignature, wantMod: model.ErrUntrustedKey},
		{name: "unsigned model file", file: func(r *rig) []byte { return modelFile(t, 2, nil, nil) },
			want: ErrBadSignature, wantMod: model.ErrUnsigned},
		{name: "truncated file", file: func(r *rig) []byte {
			d := modelFile(t, 2, r.priv, nil)
			return d[:len(d)-700]
		}, want: ErrModel, wantMod: model.ErrTruncated},
		{name: "corrupt block every time", corrupt: func(i int, p []byte) []byte {
			if i == 1 {
				p[len(p)-1] ^= 0xff
			}
			return p
		}, want: ErrCorruptBlock},
		{name: "wrong total hash", offer: func(r *rig, data []byte) ([]byte, Manifest) {
			return r.offer(data, 2, func(m *Manifest) { m.SHA256 = strings.Repeat("ab", 32) })
		}, want: ErrHashMismatch},
		{name: "equal version", offer: func(r *rig, data []byte) ([]byte, Manifest) { return r.offer(data, 1, nil) }, want: ErrRollback},
		{name: "older version", installed: 3, want: ErrRollback},
		{name: "file version differs from manifest", file: func(r *rig) []byte { return modelFile(t, 3, r.priv, nil) }, want: ErrModel},
		{name: "golden-vector mismatch", file: func(r *rig) []byte {
			return modelFile(t, 2, r.priv, func(m *model.Model) { m.Golden[0].Output[0] ^= 1 })
		}, want: ErrModel, wantMod: model.ErrGoldenMismatch},
		{name: "over the compute budget", cfg: func(c *Config, o *StoreOptions) { o.Decode.MaxGoldenMACs = referenceGoldenCost(t) },
			file: func(r *rig) []byte {
				// Twice the golden vectors: twice the budget version 1 fits in.
				return modelFile(t, 2, r.priv, func(m *model.Model) { m.Golden = append(m.Golden, m.Golden...) })
			}, want: ErrTooLarge, wantMod: model.ErrTooLarge},
		{name: "longer than the maximum", cfg: func(c *Config, o *StoreOptions) { c.MaxModelBytes = 2000 }, want: ErrTooLarge},
		{name: "expired manifest", offer: func(r *rig, data []byte) ([]byte, Manifest) {
			return r.offer(data, 2, func(m *Manifest) { m.Expires = testNow.Add(-time.Minute) })
		}, want: ErrExpired},
		{name: "other gateway", offer: func(r *rig, data []byte) ([]byte, Manifest) {
			return r.offer(data, 2, func(m *Manifest) { m.Target.Gateways = []string{"gw2"} })
		}, want: ErrTarget},
		{name: "other site", offer: func(r *rig, data []byte) ([]byte, Manifest) {
			return r.offer(data, 2, func(m *Manifest) { m.Target = Target{Site: "s2", All: true} })
		}, want: ErrTarget},
		{name: "no disk space", cfg: func(c *Config, o *StoreOptions) {
			c.FreeSpace = func(string) (uint64, error) { return 1 << 20, nil }
		}, want: ErrNoSpace},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, func(c *Config, o *StoreOptions) {
				c.MaxHashFailures = 1
				if tc.cfg != nil {
					tc.cfg(c, o)
				}
			})
			old := max(tc.installed, 1)
			r.install(old)
			r.open()
			if v := r.activeVersion(); v != old {
				t.Fatalf("setup: active %d", v)
			}
			data := modelFile(t, 2, r.priv, nil)
			if tc.file != nil {
				data = tc.file(r)
			}
			var payload []byte
			var m Manifest
			if tc.offer != nil {
				payload, m = tc.offer(r, data)
			} else {
				payload, m = r.offer(data, 2, nil)
			}
			err := r.sync.Offer(context.Background(), payload)
			if err == nil {
				blocks := SplitBlocks(m, data)
				for round := 0; round < 10 && r.sync.Status().State == StateTransferring; round++ {
					r.serve(blocks, -1, tc.corrupt)
					r.now = r.now.Add(2 * time.Second)
					r.sync.Poll(context.Background())
				}
				st := r.sync.Status()
				if st.State != StateRejected && st.State != StateFailed {
					t.Fatalf("state %q, want rejected or failed", st.State)
				}
				err = errors.New(st.Reason)
				if st.Code != Code(tc.want) && !(tc.want == ErrCorruptBlock && st.Code == Code(ErrTransferFailed)) {
					t.Fatalf("status code %q (%s), want %q", st.Code, st.Reason, Code(tc.want))
				}
				if tc.wantMod != nil && !strings.Contains(st.Reason, tc.wantMod.Error()) {
					t.Errorf("reason %q does not name %q", st.Reason, tc.wantMod)
				}
			} else {
				if !errors.Is(err, tc.want) {
					t.Fatalf("offer: %v, want %v", err, tc.want)
				}
				if st := r.sync.Status(); st.Code != Code(tc.want) || st.Reason == "" {
					t.Errorf("status %+v does not report %v", st, tc.want)
				}
			}
			t.Logf("reason: %v", err)
			if v := r.activeVersion(); v != old {
				t.Fatalf("active version %d after rejection, want %d", v, old)
			}
			kept := r.sync.Status().State == StateFailed
			r.open()
			if v := r.activeVersion(); v != old {
				t.Fatalf("active version %d after restart, want %d", v, old)
			}
			l := leftovers(t, r.dir)
			if kept && len(l) == 1 && l[0] == "incoming-2.part" {
				l = nil // a failed transfer is kept for a new offer to resume
			}
			if len(l) != 0 {
				t.Errorf("leftover files %v", l)
			}
		})
	}
}

// referenceGoldenCost is the golden-vector work of the reference model:
// vectors × multiply-accumulates per inference.
func referenceGoldenCost(t *testing.T) int64 {
	data, err := os.ReadFile("../../model/testdata/reference.sgm")
	if err != nil {
		t.Fatal(err)
	}
	m, err := model.Decode(data, model.DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var macs int64
	for _, l := range m.Layers {
		if l.Kind == model.FullyConnected {
			macs += int64(l.In) * int64(l.Out)
		}
	}
	return macs * int64(len(m.Golden))
}

func TestStageWrapsModelSentinel(t *testing.T) {
	r := newRig(t, nil)
	data := modelFile(t, 2, r.priv, func(m *model.Model) { m.Golden[0].Output[0] ^= 1 })
	path := filepath.Join(r.dir, "staging-x.tmp")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := r.store.Stage(context.Background(), path, nil)
	if !errors.Is(err, ErrModel) || !errors.Is(err, model.ErrGoldenMismatch) {
		t.Fatalf("stage: %v, want ErrModel and model.ErrGoldenMismatch", err)
	}
}

func TestCorruptBlockIsRequestedAgain(t *testing.T) {
	r := newRig(t, nil)
	r.install(1)
	data := modelFile(t, 2, r.priv, nil)
	payload, m := r.offer(data, 2, nil)
	if err := r.sync.Offer(context.Background(), payload); err != nil {
		t.Fatal(err)
	}
	blocks := SplitBlocks(m, data)
	bad := append([]byte(nil), blocks[2]...)
	bad[BlockHeaderSize+5] ^= 0x10
	r.req.take()
	if err := r.sync.Block(context.Background(), bad); !errors.Is(err, ErrCorruptBlock) {
		t.Fatalf("corrupt block: %v, want ErrCorruptBlock", err)
	}
	reqs := r.req.take()
	if len(reqs) != 1 || len(reqs[0].Blocks) != 1 || reqs[0].Blocks[0] != 2 {
		t.Fatalf("after a corrupt block 2: requests %+v, want block 2 again", reqs)
	}
	// Deliver everything: the good copy of block 2 completes the file.
	for _, b := range blocks {
		if err := r.sync.Block(context.Background(), b); err != nil {
			t.Fatal(err)
		}
	}
	if st := r.sync.Status(); st.State != StatePromoted || r.activeVersion() != 2 {
		t.Fatalf("status %+v", st)
	}
}

// Half the blocks arrive, the gateway restarts, and only the other half is
// requested.
func TestResumeAfterRestartRequestsOnlyMissing(t *testing.T) {
	r := newRig(t, func(c *Config, _ *StoreOptions) { c.Window = 3 })
	r.install(1)
	data := modelFile(t, 2, r.priv, nil)
	payload, m := r.offer(data, 2, nil)
	if err := r.sync.Offer(context.Background(), payload); err != nil {
		t.Fatal(err)
	}
	blocks := SplitBlocks(m, data)
	half := m.Blocks / 2
	if got := r.serve(blocks, half, nil); got != half {
		t.Fatalf("delivered %d, want %d", got, half)
	}
	r.open() // restart: new store and syncer on the same directory
	if err := r.sync.Resume(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := r.sync.Status(); st.State != StateTransferring || st.Offer.Received != half {
		t.Fatalf("after restart: %+v", st)
	}
	total := 0
	for {
		reqs := r.req.take()
		if len(reqs) == 0 {
			break
		}
		for _, q := range reqs {
			for _, i := range q.Blocks {
				if i < half {
					t.Errorf("block %d requested again after restart", i)
				}
				total++
				if err := r.sync.Block(context.Background(), blocks[i]); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if total != m.Blocks-half {
		t.Errorf("requested %d blocks after restart, want %d (of %d)", total, m.Blocks-half, m.Blocks)
	}
	t.Logf("blocks %d, received before restart %d, requested after %d", m.Blocks, half, total)
	if r.activeVersion() != 2 {
		t.Fatalf("active %d", r.activeVersion())
	}
}

// A cut link: requests go unanswered, are repeated after each quiet
// period, and after MaxRounds the transfer fails with a reason; a new
// offer resumes it from the blocks held.
func TestUnansweredRequestsFailThenResume(t *testing.T) {
	r := newRig(t, nil)
	r.install(1)
	data := modelFile(t, 2, r.priv, nil)
	payload, m := r.offer(data, 2, nil)
	if err := r.sync.Offer(context.Background(), payload); err != nil {
		t.Fatal(err)
	}
	blocks := SplitBlocks(m, data)
	r.serve(blocks, 2, nil)
	r.req.take()
	for i := 1; i <= r.cfg.MaxRounds; i++ {
		r.now = r.now.Add(r.cfg.Quiet)
		r.sync.Poll(context.Background())
		reqs := r.req.take()
		if len(reqs) != 1 || reqs[0].Round != i {
			t.Fatalf("round %d: requests %+v", i, reqs)
		}
		if st := r.sync.Status(); st.State != StateTransferring {
			t.Fatalf("round %d: state %s", i, st.State)
		}
	}
	r.now = r.now.Add(r.cfg.Quiet)
	r.sync.Poll(context.Background())
	st := r.sync.Status()
	if st.State != StateFailed || st.Code != "transfer-failed" || !strings.Contains(st.Reason, "unanswered") {
		t.Fatalf("status %+v", st)
	}
	if r.activeVersion() != 1 {
		t.Fatal("old model not active")
	}
	// More polls do not re-request a failed transfer.
	r.now = r.now.Add(10 * r.cfg.Quiet)
	r.sync.Poll(context.Background())
	if reqs := r.req.take(); len(reqs) != 0 {
		t.Fatalf("failed transfer still requests: %+v", reqs)
	}
	// The cloud offers again: the blocks held are not requested.
	if err := r.sync.Offer(context.Background(), payload); err != nil {
		t.Fatal(err)
	}
	if n := r.serve(blocks, -1, nil); n != m.Blocks-2 {
		t.Errorf("after re-offer delivered %d blocks, want %d", n, m.Blocks-2)
	}
	if r.activeVersion() != 2 {
		t.Fatalf("active %d", r.activeVersion())
	}
}

func TestClockNotSetWaits(t *testing.T) {
	r := newRig(t, nil)
	r.install(1)
	r.now = time.Date(1970, 1, 1, 0, 0, 30, 0, time.UTC) // booted without RTC
	data := modelFile(t, 2, r.priv, nil)
	payload, m := r.offer(data, 2, nil)
	if err := r.sync.Offer(context.Background(), payload); err != nil {
		t.Fatalf("offer with the clock not set: %v, want nil (wait)", err)
	}
	if st := r.sync.Status(); st.State != StateWaitingClock || st.Code != "clock-not-set" {
		t.Fatalf("status %+v", st)
	}
	r.sync.Poll(context.Background())
	if n := len(r.req.take()); n != 0 {
		t.Fatalf("%d requests before the clock is set", n)
	}
	r.now = testNow // NTP
	r.sync.Poll(context.Background())
	r.serve(SplitBlocks(m, data), -1, nil)
	if r.activeVersion() != 2 {
		t.Fatalf("status %+v", r.sync.Status())
	}
}

func TestExpiryDuringTransferBlocksInstall(t *testing.T) {
	r := newRig(t, nil)
	r.install(1)
	data := modelFile(t, 2, r.priv, nil)
	payload, m := r.offer(data, 2, func(m *Manifest) { m.Expires = testNow.Add(time.Minute) })
	if err := r.sync.Offer(context.Background(), payload); err != nil {
		t.Fatal(err)
	}
	blocks := SplitBlocks(m, data)
	r.serve(blocks, 3, nil)
	r.now = r.now.Add(2 * time.Minute)
	r.serve(blocks, -1, nil)
	for _, b := range blocks {
		r.sync.Block(context.Background(), b)
	}
	st := r.sync.Status()
	if st.Code != "expired" || r.activeVersion() != 1 {
		t.Fatalf("status %+v, active %d", st, r.activeVersion())
	}
}

func TestRejectedFileIsNotDownloadedAgain(t *testing.T) {
	r := newRig(t, nil)
	r.install(1)
	data := modelFile(t, 2, r.priv, func(m *model.Model) { m.Golden[0].Output[0] ^= 1 })
	payload, m := r.offer(data, 2, nil)
	if err := r.sync.Offer(context.Background(), payload); err != nil {
		t.Fatal(err)
	}
	r.serve(SplitBlocks(m, data), -1, nil)
	if st := r.sync.Status(); st.Code != "model" {
		t.Fatalf("status %+v", st)
	}
	r.open()
	if err := r.sync.Offer(context.Background(), payload); !errors.Is(err, ErrRejectedBefore) {
		t.Fatalf("second offer of a rejected file: %v", err)
	}
	if n := len(r.req.take()); n != 0 {
		t.Fatalf("%d requests for a rejected file", n)
	}
}

func TestHigherOfferSupersedesTransfer(t *testing.T) {
	r := newRig(t, nil)
	r.install(1)
	d2 := modelFile(t, 2, r.priv, nil)
	p2, m2 := r.offer(d2, 2, nil)
	if err := r.sync.Offer(context.Background(), p2); err != nil {
		t.Fatal(err)
	}
	r.serve(SplitBlocks(m2, d2), 2, nil)
	d3 := modelFile(t, 3, r.priv, nil)
	p3, m3 := r.offer(d3, 3, nil)
	if err := r.sync.Offer(context.Background(), p3); err != nil {
		t.Fatal(err)
	}
	if err := r.sync.Offer(context.Background(), p2); !errors.Is(err, ErrRollback) {
		t.Fatalf("lower offer during a transfer: %v", err)
	}
	r.req.take()
	r.now = r.now.Add(r.cfg.Quiet)
	r.sync.Poll(context.Background())
	r.serve(SplitBlocks(m3, d3), -1, nil)
	if r.activeVersion() != 3 {
		t.Fatalf("status %+v", r.sync.Status())
	}
	if l := leftovers(t, r.dir); len(l) != 0 {
		t.Errorf("leftovers %v", l)
	}
}

func TestRollback(t *testing.T) {
	r := newRig(t, nil)
	if _, err := r.store.Rollback(context.Background()); !errors.Is(err, ErrNoPrevious) {
		t.Fatalf("rollback with nothing: %v", err)
	}
	r.install(1)
	r.install(2)
	if err := r.sync.Rollback(context.Background(), errors.New("health check failed")); err != nil {
		t.Fatal(err)
	}
	st := r.sync.Status()
	if st.State != StateRolledBack || st.Active.Version != 1 || st.Highest != 2 || st.Previous != 0 {
		t.Fatalf("status %+v", st)
	}
	r.open()
	if r.activeVersion() != 1 || r.store.Highest() != 2 {
		t.Fatalf("after restart active %d highest %d", r.activeVersion(), r.store.Highest())
	}
	// The version rolled back from is never taken again.
	data := modelFile(t, 2, r.priv, nil)
	p, _ := r.offer(data, 2, nil)
	if err := r.sync.Offer(context.Background(), p); !errors.Is(err, ErrRollback) {
		t.Fatalf("offer of the rolled-back version: %v", err)
	}
}

// A classifier holds the model in an atomic.Pointer; Promote swaps it.
func TestLivePointerSwapped(t *testing.T) {
	r := newRig(t, nil)
	r.install(1)
	live := r.store.Live()
	if m := live.Load(); m == nil || m.Version != 1 {
		t.Fatal("live pointer not set")
	}
	r.install(2)
	if m := live.Load(); m.Version != 2 {
		t.Fatalf("live version %d", m.Version)
	}
}

// A corrupt active file at startup rolls back to the previous one.
func TestCorruptActiveRollsBackAtOpen(t *testing.T) {
	r := newRig(t, nil)
	r.install(1)
	r.install(2)
	r.store.Close()
	if err := os.WriteFile(filepath.Join(r.dir, ActiveFile), []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	r.store = nil
	r.open()
	if r.activeVersion() != 1 || r.store.Highest() != 2 {
		t.Fatalf("active %d highest %d, recovered %v", r.activeVersion(), r.store.Highest(), r.store.Recovered())
	}
	t.Log(r.store.Recovered())
}

func TestUntrustedStoreRefusesEverything(t *testing.T) {
	r := newRig(t, func(c *Config, _ *StoreOptions) { c.TrustedKeys = nil })
	data := modelFile(t, 2, r.priv, nil)
	p, _ := r.offer(data, 2, nil)
	if err := r.sync.Offer(context.Background(), p); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("offer with no trusted keys: %v", err)
	}
	var _ ed25519.PublicKey
}

// A gateway restarted without RTC holding a complete transfer waits for
// the clock before judging the expiry and installing.
func TestResumeWithClockNotSetWaitsToInstall(t *testing.T) {
	r := newRig(t, nil)
	r.install(1)
	data := modelFile(t, 2, r.priv, nil)
	payload, m := r.offer(data, 2, func(m *Manifest) { m.Expires = testNow.Add(time.Hour) })
	if err := r.sync.Offer(context.Background(), payload); err != nil {
		t.Fatal(err)
	}
	blocks := SplitBlocks(m, data)
	r.serve(blocks, m.Blocks-1, nil)
	r.now = time.Unix(60, 0) // rebooted, no RTC
	r.open()
	if err := r.sync.Resume(context.Background()); err != nil {
		t.Fatal(err)
	}
	r.serve(blocks, -1, nil)
	if st := r.sync.Status(); st.State != StateWaitingClock || r.activeVersion() != 1 {
		t.Fatalf("status %+v, active %d", st, r.activeVersion())
	}
	r.now = testNow.Add(2 * time.Hour) // NTP: the manifest has expired meanwhile
	r.sync.Poll(context.Background())
	if st := r.sync.Status(); st.Code != "expired" || r.activeVersion() != 1 {
		t.Fatalf("status %+v, active %d", st, r.activeVersion())
	}
}

type evaluatorFunc func(ctx context.Context, c *Candidate) error

func (f evaluatorFunc) Evaluate(ctx context.Context, c *Candidate) error { return f(ctx, c) }

var _ Evaluator = evaluatorFunc(nil)

func TestEvaluatorDecidesPromotion(t *testing.T) {
	for _, refuse := range []bool{false, true} {
		var seen *Candidate
		r := newRig(t, func(c *Config, _ *StoreOptions) {
			c.Evaluator = evaluatorFunc(func(_ context.Context, c *Candidate) error {
				seen = c
				if refuse {
					return errors.New("agreement 71% below 98%")
				}
				return nil
			})
		})
		r.install(1)
		data := modelFile(t, 2, r.priv, nil)
		payload, m := r.offer(data, 2, nil)
		if err := r.sync.Offer(context.Background(), payload); err != nil {
			t.Fatal(err)
		}
		r.serve(SplitBlocks(m, data), -1, nil)
		if seen == nil || seen.Model.Version != 2 || seen.Manifest.Version != 2 {
			t.Fatalf("evaluator saw %+v", seen)
		}
		st := r.sync.Status()
		want, wantState := uint64(2), StatePromoted
		if refuse {
			want, wantState = 1, StateRejected
			if st.Code != "not-promoted" || !strings.Contains(st.Reason, "agreement") {
				t.Errorf("status %+v", st)
			}
		}
		if st.State != wantState || r.activeVersion() != want {
			t.Fatalf("refuse=%v: status %+v, active %d", refuse, st, r.activeVersion())
		}
		if l := leftovers(t, r.dir); len(l) != 0 {
			t.Errorf("leftovers %v", l)
		}
	}
}

// recorded counts the block indexes committed to the state database once
// the background commit running (if any) ended.
func (r *rig) recorded() int {
	r.t.Helper()
	r.sync.mu.Lock()
	if tr := r.sync.cur; tr != nil {
		tr.mu.Lock()
		tr.settleLocked()
		tr.mu.Unlock()
	}
	r.sync.mu.Unlock()
	var n int
	if err := r.store.db.QueryRow(`SELECT count(*) FROM blocks`).Scan(&n); err != nil {
		r.t.Fatal(err)
	}
	return n
}

// Blocks are committed in batches (two blocks in the rig); a block of an
// unfinished batch is recorded by the next Poll, and by Close.
func TestBlocksCommittedInBatchesAndByPoll(t *testing.T) {
	r := newRig(t, nil)
	r.install(1)
	data := modelFile(t, 2, r.priv, nil)
	payload, m := r.offer(data, 2, nil)
	if err := r.sync.Offer(context.Background(), payload); err != nil {
		t.Fatal(err)
	}
	blocks := SplitBlocks(m, data)
	r.serve(blocks, 1, nil)
	if got := r.recorded(); got != 0 {
		t.Fatalf("%d blocks recorded after one of a batch of two", got)
	}
	if got := r.sync.Status().Offer.Received; got != 1 {
		t.Fatalf("status received %d, want 1", got)
	}
	r.sync.Poll(context.Background())
	if got := r.recorded(); got != 1 {
		t.Fatalf("%d blocks recorded after Poll, want 1", got)
	}
	if err := r.sync.Block(context.Background(), blocks[1]); err != nil {
		t.Fatal(err)
	}
	if err := r.sync.Block(context.Background(), blocks[2]); err != nil {
		t.Fatal(err)
	}
	if got := r.recorded(); got != 3 {
		t.Fatalf("%d blocks recorded after a full batch, want 3", got)
	}
	if err := r.sync.Block(context.Background(), blocks[3]); err != nil {
		t.Fatal(err)
	}
	r.open() // restart: Store.Close commits the open transfer's pending block
	if err := r.sync.Resume(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := r.sync.Status().Offer.Received; got != 4 {
		t.Fatalf("after restart %d blocks held, want 4", got)
	}
}

// A '#', '?' or '%' in the model directory's path is part of the name,
// not of the database URI: two such directories keep separate state.
func TestStorePathWithURICharacters(t *testing.T) {
	base := t.TempDir()
	for i, name := range []string{"a#1", "a#2", "b?x", "c%41"} {
		s, err := OpenStore(context.Background(), filepath.Join(base, name, "models"), StoreOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if h := s.Highest(); h != 0 {
			t.Errorf("%s: highest %d in a new directory (shares another's database)", name, h)
		}
		if err := s.setHighest(context.Background(), uint64(i+1)); err != nil {
			t.Fatal(err)
		}
		s.Close()
		if _, err := os.Stat(filepath.Join(base, name, "models", StateFile)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// The default window is 2 MiB of blocks, between 2 and 64 blocks; a
// configured Window wins.
func TestWindowForBlockSize(t *testing.T) {
	cases := []struct {
		window, blockSize, want int
	}{
		{0, MinBlockSize, 64},
		{0, DefaultBlockSize, 64},
		{0, 64 << 10, 32},
		{0, 512 << 10, 4},
		{0, MaxBlockSize, 2},
		{4, DefaultBlockSize, 4},
		{200, MinBlockSize, 200},
	}
	for _, tc := range cases {
		c := Config{Window: tc.window}
		if got := c.windowFor(tc.blockSize); got != tc.want {
			t.Errorf("Window %d, block size %d: window %d, want %d", tc.window, tc.blockSize, got, tc.want)
		}
	}
}

// The gateway keeps a window asked for and tops it up once a quarter of
// it arrived, so blocks stay in flight while it writes.
func TestWindowToppedUpAfterAQuarter(t *testing.T) {
	r := newRig(t, func(c *Config, _ *StoreOptions) { c.Window = 4 })
	r.install(1)
	data := modelFile(t, 2, r.priv, nil)
	payload, m := r.offer(data, 2, nil)
	if err := r.sync.Offer(context.Background(), payload); err != nil {
		t.Fatal(err)
	}
	reqs := r.req.take()
	if len(reqs) != 1 || len(reqs[0].Blocks) != 4 {
		t.Fatalf("first requests %+v, want one of 4 blocks", reqs)
	}
	blocks := SplitBlocks(m, data)
	if err := r.sync.Block(context.Background(), blocks[0]); err != nil {
		t.Fatal(err)
	}
	reqs = r.req.take()
	if len(reqs) != 1 || len(reqs[0].Blocks) != 1 || reqs[0].Blocks[0] != 4 {
		t.Fatalf("after one of 4 blocks: requests %+v, want block 4", reqs)
	}
}
