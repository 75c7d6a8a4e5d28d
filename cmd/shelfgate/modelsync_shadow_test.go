package main

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shelfgate/shelfgate/gateway"
	"github.com/shelfgate/shelfgate/gateway/classify"
	"github.com/shelfgate/shelfgate/gateway/config"
	"github.com/shelfgate/shelfgate/gateway/downlink"
	"github.com/shelfgate/shelfgate/gateway/modelsync"
	"github.com/shelfgate/shelfgate/gateway/wire/shelfv1"
	"github.com/shelfgate/shelfgate/model"
)

// recentWindows is the plates' recorded windows, filled by the test: each
// window stamped with the wall time it was added.
type recentWindows struct {
	mu sync.Mutex
	ws []stampedWindow
}

type stampedWindow struct {
	at time.Time
	x  []float32
}

var _ modelWindows = (*recentWindows)(nil)

// add records n windows drawn from rng (features within ±FeatureClip, a
// few cells moving, as a change's window does).
func (f *recentWindows) add(rng *rand.Rand, n, size int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for range n {
		x := make([]float32, size)
		for i := range x {
			if rng.IntN(3) == 0 {
				x[i] = float32(rng.Float64()*2*classify.FeatureClip - classify.FeatureClip)
			}
		}
		f.ws = append(f.ws, stampedWindow{at: time.Now(), x: x})
		time.Sleep(time.Microsecond)
	}
}

func (f *recentWindows) Recent(n int) [][]float32 {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out [][]float32
	for _, w := range f.ws[max(0, len(f.ws)-n):] {
		out = append(out, w.x)
	}
	return out
}

func (f *recentWindows) Since(t time.Time, n int) [][]float32 {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out [][]float32
	for _, w := range f.ws {
		if w.at.After(t) && len(out) < n {
			out = append(out, w.x)
		}
	}
	return out
}

// swapRig is model sync as run() wires it for a gateway with a plate
// model: the shipped plate.sgm bundled and served by the holder, trusting
// the test signing key; offers and blocks go to the Syncer's handlers.
type swapRig struct {
	t       *testing.T
	priv    ed25519.PrivateKey
	holder  *classify.Holder
	windows *recentWindows
	ms      *modelSync
	base    *model.Model
	cfg     *config.Config
	sw      swapConfig
	pub     ed25519.PublicKey
	events  *eventSink
	stop    func()
}

// eventSink is the outbox of the model events: it keeps what is appended.
type eventSink struct {
	mu   sync.Mutex
	recs []gateway.Record
}

var _ appender = (*eventSink)(nil)

func (s *eventSink) Append(_ context.Context, recs []gateway.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recs = append(s.recs, recs...)
	return nil
}

// wait returns the model events once there are n of them (fails after 10 s).
func (s *eventSink) wait(t *testing.T, n int) []shelfv1.ModelEvent {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.mu.Lock()
		recs := append([]gateway.Record(nil), s.recs...)
		s.mu.Unlock()
		if len(recs) >= n || time.Now().After(deadline) {
			var out []shelfv1.ModelEvent
			for _, r := range recs {
				if r.Class != gateway.ClassEvent || r.Stream != "events/model" {
					t.Fatalf("model event record class %v stream %q", r.Class, r.Stream)
				}
				e, err := shelfv1.DecodeModelEvent(r.Body)
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, e)
			}
			if len(out) != n {
				t.Fatalf("%d model events, want %d: %+v", len(out), n, out)
			}
			return out
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func newSwapRig(t *testing.T, sw swapConfig) *swapRig {
	t.Helper()
	seed, err := os.ReadFile("../../configs/models/test-signing.key")
	if err != nil {
		t.Fatal(err)
	}
	sb, err := hex.DecodeString(strings.TrimSpace(string(seed)))
	if err != nil {
		t.Fatal(err)
	}
	priv := ed25519.NewKeyFromSeed(sb)
	pub := priv.Public().(ed25519.PublicKey)
	dir := t.TempDir()
	pem, err := modelsync.MarshalPublicKeyPEM(pub)
	if err != nil {
		t.Fatal(err)
	}
	pubPath := filepath.Join(dir, "signer.pub")
	if err := os.WriteFile(pubPath, pem, 0o644); err != nil {
		t.Fatal(err)
	}
	const shipped = "../../configs/models/plate.sgm"
	cfg := &config.Config{
		Gateway: config.Gateway{ID: "gw1", Site: msSite},
		Outbox:  config.Outbox{Path: filepath.Join(dir, "outbox.db")},
		Models:  config.ModelSync{TrustedKeys: []string{pubPath}, Quiet: time.Second, MaxRounds: 5, BundledModel: shipped},
	}
	if es := cfg.Models.Validate(cfg); len(es) > 0 {
		t.Fatal(es)
	}
	sw.Poll = 10 * time.Millisecond
	r := &swapRig{t: t, priv: priv, pub: pub, windows: &recentWindows{}, cfg: cfg, sw: sw, events: &eventSink{}}
	r.start()
	t.Cleanup(func() { r.stop() })
	return r
}

// start starts model sync as run() does, the holder serving the shipped
// model (the plate classifier's configured file).
func (r *swapRig) start() {
	r.t.Helper()
	l, err := classify.LoadFile(context.Background(), "../../configs/models/plate.sgm", []ed25519.PublicKey{r.pub})
	if err != nil {
		r.t.Fatal(err)
	}
	r.holder, r.base = classify.NewHolder(l), l.M
	log := slog.New(slog.NewTextHandler(&logBuffer{}, nil))
	ms, stop, err := startModelSyncWith(context.Background(), r.cfg, downlink.New(log), &fakeModelUplink{}, r.events, r.holder, r.windows, r.sw, log)
	if err != nil {
		r.t.Fatal(err)
	}
	var once sync.Once
	r.ms, r.stop = ms, func() { once.Do(stop) }
}

// signed is a copy of the shipped model at version v (after edit), signed
// with the test key.
func (r *swapRig) signed(v uint64, edit func(*model.Model)) (*model.Model, []byte) {
	r.t.Helper()
	data, err := os.ReadFile("../../configs/models/plate.sgm")
	if err != nil {
		r.t.Fatal(err)
	}
	m, err := model.Decode(data, model.DecodeOptions{})
	if err != nil {
		r.t.Fatal(err)
	}
	m.Version = v
	if edit != nil {
		edit(m)
	}
	file, err := model.Encode(m, r.priv)
	if err != nil {
		r.t.Fatal(err)
	}
	return m, file
}

// push offers a copy of the shipped model at version v (after edit),
// signed with the test key, and delivers every block.
func (r *swapRig) push(v uint64, edit func(*model.Model)) {
	r.t.Helper()
	m, file := r.signed(v, edit)
	man := modelsync.NewManifest(m.Name, v, file, modelsync.DefaultBlockSize,
		modelsync.Target{Site: msSite, Gateways: []string{"gw1"}}, time.Now().Add(time.Hour))
	offer, err := modelsync.SignManifest(man, r.priv)
	if err != nil {
		r.t.Fatal(err)
	}
	ctx := context.Background()
	if err := r.ms.syncer.Offer(ctx, offer); err != nil {
		r.t.Fatalf("offer of v%d: %v", v, err)
	}
	for _, b := range modelsync.SplitBlocks(man, file) {
		if err := r.ms.syncer.Block(ctx, b); err != nil {
			r.t.Fatalf("block of v%d: %v", v, err)
		}
	}
}

// waitHolder waits until the holder serves version v.
func (r *swapRig) waitHolder(v uint64) {
	r.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for r.holder.Version() != v {
		if time.Now().After(deadline) {
			r.t.Fatalf("holder serves v%d, want v%d (status %+v)", r.holder.Version(), v, r.ms.syncer.Status())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// rotateLabels names every class as the next one: the same network,
// a different answer on every window.
func rotateLabels(m *model.Model) {
	ls := m.Output.Labels
	m.Output.Labels = append(append([]string(nil), ls[1:]...), ls[0])
}

// TestPlateModelSwap: a newer compatible plate model pushed through the
// Syncer's handlers agrees with the serving one on the recorded windows,
// is promoted, and the holder (which decides every change and the status
// "model" field) serves it; candidates that do not fit the classifier,
// disagree beyond the threshold or infer too slowly are refused with the
// reason in the status, and the holder keeps the old model.
func TestPlateModelSwap(t *testing.T) {
	size := classify.PlateWindow(classify.ModelRate).Len()
	cases := []struct {
		name     string
		sw       swapConfig
		edit     func(*model.Model)
		promoted bool
		reason   string
	}{
		{name: "compatible", promoted: true},
		{name: "disagrees", edit: rotateLabels, reason: "top-1 agreement 0.000"},
		{name: "not a plate model", edit: func(m *model.Model) { m.Output.Labels[0] = "left" }, reason: "does not fit the plate classifier"},
		{name: "too slow", sw: swapConfig{MaxLatency: time.Nanosecond}, reason: "limit 1ns"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newSwapRig(t, tc.sw)
			r.windows.add(rand.New(rand.NewPCG(1, 2)), 50, size)
			base := r.holder.Version()
			birth := withModel(func() map[string]any { return map[string]any{} }, r.holder)
			r.push(base+1, tc.edit)
			st := r.ms.syncer.Status()
			if !tc.promoted {
				if st.State != modelsync.StateRejected || st.Code != "not-promoted" || !strings.Contains(st.Reason, tc.reason) {
					t.Fatalf("status %s %s %q, want rejected not-promoted with %q", st.State, st.Code, st.Reason, tc.reason)
				}
				time.Sleep(50 * time.Millisecond) // the binder's polls see nothing to do
				if r.holder.Version() != base || st.Active.Version != base {
					t.Fatalf("holder v%d, store v%d after a refusal, want v%d", r.holder.Version(), st.Active.Version, base)
				}
				evs := r.events.wait(t, 1)
				if e := evs[0]; e.Kind != shelfv1.EventModelRejected || e.ModelVersion != base || e.CandidateVersion != base+1 ||
					e.Code != "not-promoted" || !strings.Contains(e.Reason, tc.reason) || e.OfferID != st.OfferID || e.Model != r.base.Name {
					t.Fatalf("model event %+v, want model_rejected of v%d with the status' reason", e, base+1)
				}
				return
			}
			if st.State != modelsync.StatePromoted || st.Active.Version != base+1 || !strings.Contains(st.Note, "agreement 1.000") {
				t.Fatalf("status %+v, want promoted v%d with its agreement noted", st, base+1)
			}
			r.waitHolder(base + 1)
			evs := r.events.wait(t, 1)
			if e := evs[0]; e.Kind != shelfv1.EventModelPromoted || e.ModelVersion != base+1 || e.PreviousVersion != base || e.Note != st.Note || e.Model != r.base.Name {
				t.Fatalf("model event %+v, want model_promoted v%d", e, base+1)
			}
			want := r.base.Name + " v" + strconv.FormatUint(base+1, 10)
			if got := birth()["model"]; got != want {
				t.Errorf("status model %v, want %q", got, want)
			}
		})
	}
}

// TestPlateModelRollback: with too few recorded windows a candidate is
// promoted on fit and latency (the status note says so); it then disagrees
// with the model it replaced on its first live changes, fails the health
// check, and is rolled back in the store and in the holder.
func TestPlateModelRollback(t *testing.T) {
	size := classify.PlateWindow(classify.ModelRate).Len()
	r := newSwapRig(t, swapConfig{MinWindows: 20, HealthChanges: 10})
	base := r.holder.Version()
	r.windows.add(rand.New(rand.NewPCG(3, 4)), 5, size)
	r.push(base+1, rotateLabels)
	if st := r.ms.syncer.Status(); st.State != modelsync.StatePromoted || !strings.Contains(st.Note, "only 5 of 20 windows") {
		t.Fatalf("status %+v, want promoted with a note on too few windows", st)
	}
	r.waitHolder(base + 1)
	time.Sleep(30 * time.Millisecond) // no verdict before HealthChanges changes
	if v := r.holder.Version(); v != base+1 {
		t.Fatalf("rolled back to v%d before the health check had its changes", v)
	}
	r.windows.add(rand.New(rand.NewPCG(5, 6)), 10, size)
	r.waitHolder(base)
	st := r.ms.syncer.Status()
	if st.State != modelsync.StateRolledBack || st.Code != "health-check" || st.Active.Version != base || !strings.Contains(st.Reason, "agreement 0.000") {
		t.Fatalf("status %+v, want rolled back to v%d for the health check", st, base)
	}
	if _, v := r.ms.store.Active(); v != base {
		t.Fatalf("store serves v%d after the rollback, want v%d", v, base)
	}
	evs := r.events.wait(t, 2)
	if e := evs[0]; e.Kind != shelfv1.EventModelPromoted || e.ModelVersion != base+1 {
		t.Fatalf("first model event %+v, want model_promoted v%d", e, base+1)
	}
	if e := evs[1]; e.Kind != shelfv1.EventModelRolledBack || e.ModelVersion != base || e.RolledBackVersion != base+1 || e.Code != "health-check" || e.Reason != st.Reason {
		t.Fatalf("second model event %+v, want model_rolled_back of v%d with the health check's reason", e, base+1)
	}
}

// TestPlateModelAfterRestart: a model promoted before a restart is served
// by the classifier after it, although the classifier's configured file is
// the older shipped model.
func TestPlateModelAfterRestart(t *testing.T) {
	r := newSwapRig(t, swapConfig{})
	r.windows.add(rand.New(rand.NewPCG(7, 8)), 30, classify.PlateWindow(classify.ModelRate).Len())
	base := r.holder.Version()
	r.push(base+1, nil)
	r.waitHolder(base + 1)
	r.stop()
	r.start()
	if v := r.holder.Version(); v != base+1 {
		t.Fatalf("after a restart the holder serves v%d, want the promoted v%d", v, base+1)
	}
}

// TestPlateModelLoadFailureRollsBack: a model that reaches the store's
// active slot without the evaluator (installed by hand) but does not load
// into the plate classifier is rolled back; the holder never serves it.
func TestPlateModelLoadFailureRollsBack(t *testing.T) {
	r := newSwapRig(t, swapConfig{})
	base := r.holder.Version()
	_, file := r.signed(base+1, func(m *model.Model) { m.Output.Labels[0] = "left" })
	p := filepath.Join(t.TempDir(), "unfit.sgm")
	if err := os.WriteFile(p, file, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c, err := r.ms.store.Import(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.ms.store.Promote(ctx, c); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for r.ms.syncer.Status().State != modelsync.StateRolledBack {
		if time.Now().After(deadline) {
			t.Fatalf("status %+v, want rolled back", r.ms.syncer.Status())
		}
		time.Sleep(5 * time.Millisecond)
	}
	st := r.ms.syncer.Status()
	if st.Code != "health-check" || st.Active.Version != base || !strings.Contains(st.Reason, "does not load into the plate classifier") {
		t.Fatalf("status %+v, want rolled back to v%d: does not load", st, base)
	}
	if v := r.holder.Version(); v != base {
		t.Fatalf("holder serves v%d, want v%d", v, base)
	}
}

// fakeLabels is a sample book's labelled windows, filled by the test.
type fakeLabels struct {
	mu sync.Mutex
	ws []labelledWindow
}

var _ labelledSource = (*fakeLabels)(nil)

func (f *fakeLabels) Labelled(after time.Time, n int) []labelledWindow {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []labelledWindow
	for _, w := range f.ws {
		if after.IsZero() || w.at.After(after) {
			out = append(out, w)
		}
	}
	if after.IsZero() {
		return out[max(0, len(out)-n):]
	}
	return out[:min(n, len(out))]
}

// add labels n random windows: with the serving model's answer when
// rotated is false, with the class after it (what a rotateLabels copy
// answers) when true.
func (f *fakeLabels) add(t *testing.T, rng *rand.Rand, ref *classify.Loaded, n int, rotated bool) {
	t.Helper()
	s, err := ref.M.NewSessionWith()
	if err != nil {
		t.Fatal(err)
	}
	ls := ref.M.Output.Labels
	size := classify.PlateWindow(classify.ModelRate).Len()
	f.mu.Lock()
	defer f.mu.Unlock()
	for range n {
		x := make([]float32, size)
		for i := range x {
			if rng.IntN(3) == 0 {
				x[i] = float32(rng.Float64()*2*classify.FeatureClip - classify.FeatureClip)
			}
		}
		out, err := s.Infer(x)
		if err != nil {
			t.Fatal(err)
		}
		c := out.Class
		if rotated {
			c = (c + 1) % len(ls)
		}
		f.ws = append(f.ws, labelledWindow{plate: "plate-01", at: time.Now(), x: x, label: ls[c]})
		time.Sleep(time.Microsecond)
	}
}

// TestPlateModelPromotedOnAccuracy: with enough labelled windows the
// promotion rule is accuracy, not agreement. A candidate that disagrees
// with the serving model everywhere but is right where it is wrong is
// promoted (and stays through its health check on labelled changes); one
// less accurate than the serving model is refused although agreement is
// not what refuses it; a model promoted on accuracy whose first labelled
// changes show it worse than the model it replaced is rolled back.
func TestPlateModelPromotedOnAccuracy(t *testing.T) {
	size := classify.PlateWindow(classify.ModelRate).Len()
	t.Run("better candidate promoted and healthy", func(t *testing.T) {
		r := newSwapRig(t, swapConfig{MinLabelled: 20, HealthChanges: 10})
		lab := &fakeLabels{}
		r.ms.labels.set(lab)
		r.windows.add(rand.New(rand.NewPCG(1, 2)), 50, size)
		lab.add(t, rand.New(rand.NewPCG(9, 9)), r.holder.Load(), 30, true)
		base := r.holder.Version()
		r.push(base+1, rotateLabels)
		st := r.ms.syncer.Status()
		if st.State != modelsync.StatePromoted || !strings.Contains(st.Note, "accuracy 1.000 on 30 labelled windows, active v1 0.000") {
			t.Fatalf("status %+v, want promoted on accuracy", st)
		}
		r.waitHolder(base + 1)
		// Its first live changes disagree with the old model (agreement 0)
		// but are labelled, and it is right on them: it stays.
		r.windows.add(rand.New(rand.NewPCG(5, 6)), 20, size)
		base1, err := classify.NewLoaded(r.base)
		if err != nil {
			t.Fatal(err)
		}
		lab.add(t, rand.New(rand.NewPCG(7, 7)), base1, 10, true)
		time.Sleep(200 * time.Millisecond) // several health polls
		if v := r.holder.Version(); v != base+1 {
			t.Fatalf("holder v%d after a healthy accuracy check, want v%d (status %+v)", v, base+1, r.ms.syncer.Status())
		}
		if st := r.ms.syncer.Status(); st.State != modelsync.StatePromoted {
			t.Fatalf("status %+v, want still promoted", st)
		}
	})
	t.Run("less accurate candidate refused", func(t *testing.T) {
		r := newSwapRig(t, swapConfig{MinLabelled: 20, AccuracyMargin: 0.05})
		lab := &fakeLabels{}
		r.ms.labels.set(lab)
		lab.add(t, rand.New(rand.NewPCG(9, 8)), r.holder.Load(), 25, false)
		base := r.holder.Version()
		r.push(base+1, rotateLabels)
		st := r.ms.syncer.Status()
		if st.State != modelsync.StateRejected || st.Code != "not-promoted" ||
			!strings.Contains(st.Reason, "accuracy 0.000 on 25 labelled windows, active v1 has 1.000 (margin 0.05)") {
			t.Fatalf("status %+v, want refused on accuracy", st)
		}
		if r.holder.Version() != base {
			t.Fatalf("holder v%d, want v%d", r.holder.Version(), base)
		}
	})
	t.Run("too few labelled: agreement rules", func(t *testing.T) {
		r := newSwapRig(t, swapConfig{MinLabelled: 20})
		lab := &fakeLabels{}
		r.ms.labels.set(lab)
		r.windows.add(rand.New(rand.NewPCG(1, 3)), 50, size)
		lab.add(t, rand.New(rand.NewPCG(9, 7)), r.holder.Load(), 19, true)
		r.push(r.holder.Version()+1, rotateLabels)
		if st := r.ms.syncer.Status(); st.State != modelsync.StateRejected || !strings.Contains(st.Reason, "top-1 agreement 0.000") {
			t.Fatalf("status %+v, want refused on agreement with 19 of 20 labelled windows", st)
		}
	})
	t.Run("worse on its first labelled changes: rolled back", func(t *testing.T) {
		r := newSwapRig(t, swapConfig{MinLabelled: 20, HealthChanges: 10})
		lab := &fakeLabels{}
		r.ms.labels.set(lab)
		serving := r.holder.Load()
		lab.add(t, rand.New(rand.NewPCG(4, 4)), serving, 30, true)
		base := r.holder.Version()
		r.push(base+1, rotateLabels)
		r.waitHolder(base + 1)
		lab.add(t, rand.New(rand.NewPCG(4, 5)), serving, 9, false)
		time.Sleep(50 * time.Millisecond)
		if v := r.holder.Version(); v != base+1 {
			t.Fatalf("rolled back to v%d before %d labelled changes", v, 10)
		}
		lab.add(t, rand.New(rand.NewPCG(4, 6)), serving, 1, false)
		r.waitHolder(base)
		st := r.ms.syncer.Status()
		if st.State != modelsync.StateRolledBack || st.Code != "health-check" || !strings.Contains(st.Reason, "accuracy 0.000 over its first 10 labelled changes, v1 had 1.000") {
			t.Fatalf("status %+v, want rolled back on accuracy", st)
		}
	})
}
