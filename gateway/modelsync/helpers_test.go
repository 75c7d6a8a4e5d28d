package modelsync

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/shelfgate/shelfgate/model"
)

// testKey returns a deterministic key pair; different seeds give
// different keys.
func testKey(seed byte) (ed25519.PublicKey, ed25519.PrivateKey) {
	s := make([]byte, ed25519.SeedSize)
	for i := range s {
		s[i] = seed + byte(i)
	}
	priv := ed25519.NewKeyFromSeed(s)
	return priv.Public().(ed25519.PublicKey), priv
}

var testNow = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

// modelFile returns the reference model as version v, signed with key
// (unsigned when key is nil), after edit (if any) changes it.
func modelFile(t testing.TB, v uint64, key ed25519.PrivateKey, edit func(*model.Model)) []byte {
	t.Helper()
	data, err := os.ReadFile("../../model/testdata/reference.sgm")
	if err != nil {
		t.Fatal(err)
	}
	m, err := model.Decode(data, model.DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m.Version = v
	if edit != nil {
		edit(m)
	}
	out, err := model.Encode(m, key)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// fakeRequester records requests and statuses.
type fakeRequester struct {
	mu       sync.Mutex
	requests []Request
	statuses []Status
}

var _ Requester = (*fakeRequester)(nil)

func (f *fakeRequester) RequestBlocks(_ context.Context, r Request) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, r)
	return nil
}

func (f *fakeRequester) PublishStatus(_ context.Context, st Status) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.statuses = append(f.statuses, st)
	return nil
}

// take returns and forgets the requests so far.
func (f *fakeRequester) take() []Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.requests
	f.requests = nil
	return r
}

// rig is a gateway's model directory, store and syncer with a fake cloud.
type rig struct {
	t     *testing.T
	dir   string
	pub   ed25519.PublicKey
	priv  ed25519.PrivateKey
	store *Store
	req   *fakeRequester
	sync  *Syncer
	now   time.Time
	cfg   Config
	sopts StoreOptions
}

func newRig(t *testing.T, edit func(*Config, *StoreOptions)) *rig {
	t.Helper()
	pub, priv := testKey(1)
	r := &rig{t: t, dir: filepath.Join(t.TempDir(), "models"), pub: pub, priv: priv, now: testNow}
	r.cfg, r.sopts = rigConfig(r)
	if edit != nil {
		edit(&r.cfg, &r.sopts)
	}
	r.open()
	t.Cleanup(func() { r.store.Close() })
	return r
}

// rigConfig is the test gateway's configuration: site s1, gateway gw1,
// trusting r.pub, the clock r.now.
func rigConfig(r *rig) (Config, StoreOptions) {
	return Config{
			Site: "s1", Gateway: "gw1", TrustedKeys: []ed25519.PublicKey{r.pub}, Window: 4,
			Quiet: time.Second, MaxRounds: 3,
			Now:       func() time.Time { return r.now },
			FreeSpace: func(string) (uint64, error) { return 1 << 40, nil },
		},
		// Commits of two 1 KiB blocks, so tests see batches: the reference
		// model has four blocks.
		StoreOptions{Decode: model.DecodeOptions{TrustedKeys: []ed25519.PublicKey{r.pub}}, CommitBytes: 2 * MinBlockSize, CommitInterval: time.Hour}
}

// open (re)opens the store and a new syncer, as a restart does.
func (r *rig) open() {
	r.t.Helper()
	if r.store != nil {
		r.store.Close()
	}
	s, err := OpenStore(context.Background(), r.dir, r.sopts)
	if err != nil {
		r.t.Fatal(err)
	}
	r.store = s
	r.req = &fakeRequester{}
	r.sync = New(s, r.req, r.cfg)
}

// install puts version v in place as the active model through Import.
func (r *rig) install(v uint64) {
	r.t.Helper()
	src := filepath.Join(r.t.TempDir(), "seed.sgm")
	if err := os.WriteFile(src, modelFile(r.t, v, r.priv, nil), 0o644); err != nil {
		r.t.Fatal(err)
	}
	c, err := r.store.Import(context.Background(), src)
	if err != nil {
		r.t.Fatal(err)
	}
	if err := r.store.Promote(context.Background(), c); err != nil {
		r.t.Fatal(err)
	}
}

// offer signs a manifest of data (after edit) and returns the payload
// and the manifest.
func (r *rig) offer(data []byte, v uint64, edit func(*Manifest)) ([]byte, Manifest) {
	r.t.Helper()
	m := NewManifest("reference", v, data, MinBlockSize, Target{Site: "s1", Gateways: []string{"gw1"}}, testNow.Add(30*24*time.Hour))
	if edit != nil {
		edit(&m)
	}
	p, err := SignManifest(m, r.priv)
	if err != nil {
		r.t.Fatal(err)
	}
	return p, m
}

// serve answers block requests from blocks until none are pending or
// limit blocks were delivered (limit < 0: no limit); corrupt changes a
// payload before delivery. It returns the blocks delivered.
func (r *rig) serve(blocks [][]byte, limit int, corrupt func(i int, p []byte) []byte) int {
	r.t.Helper()
	n := 0
	for {
		reqs := r.req.take()
		if len(reqs) == 0 {
			return n
		}
		for _, q := range reqs {
			for _, i := range q.Blocks {
				if limit >= 0 && n >= limit {
					return n
				}
				p := append([]byte(nil), blocks[i]...)
				if corrupt != nil {
					p = corrupt(i, p)
				}
				n++
				_ = r.sync.Block(context.Background(), p)
			}
		}
	}
}

func (r *rig) activeVersion() uint64 {
	_, v := r.store.Active()
	return v
}

// leftovers lists files in the model directory other than the slots and
// the state database.
func leftovers(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		switch n := e.Name(); n {
		case ActiveFile, PreviousFile, StateFile, StateFile + "-wal", StateFile + "-shm":
		default:
			out = append(out, n)
		}
	}
	return out
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
