package modelsync_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/shelfgate/shelfgate/gateway/modelsync"
	"github.com/shelfgate/shelfgate/model"
)

// printRequester stands in for the uplink: it prints what would be
// published and remembers the last request.
type printRequester struct{ last modelsync.Request }

func (p *printRequester) RequestBlocks(_ context.Context, r modelsync.Request) error {
	fmt.Printf("request %s\n", r.Payload())
	p.last = r
	return nil
}

func (p *printRequester) PublishStatus(_ context.Context, st modelsync.Status) error {
	fmt.Printf("status %s active=%d\n", st.State, st.Active.Version)
	return nil
}

// How the daemon wires the lifecycle: a Store on the model directory, a
// Syncer whose Offer and Block are the router's handlers, Run for the
// quiet-period re-requests, and the classifier reading Store.Live().
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "modelsync-example")
	defer os.RemoveAll(dir)

	seed := make([]byte, ed25519.SeedSize)
	priv := ed25519.NewKeyFromSeed(seed) // the cloud's key; gateways trust its public half
	pub := priv.Public().(ed25519.PublicKey)
	trusted := []ed25519.PublicKey{pub}

	store, err := modelsync.OpenStore(ctx, filepath.Join(dir, "models"), modelsync.StoreOptions{
		Decode: model.DecodeOptions{TrustedKeys: trusted, MaxSize: modelsync.DefaultMaxModelBytes},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer store.Close()
	req := &printRequester{}
	syncer := modelsync.New(store, req, modelsync.Config{
		Site: "site-a", Gateway: "gw-01", TrustedKeys: trusted,
		Now: func() time.Time { return time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC) },
	})
	live := store.Live() // the classifier loads this pointer for every window

	// The cloud side: a signed model file, its signed manifest, its blocks.
	ref, _ := os.ReadFile("../../model/testdata/reference.sgm")
	m, _ := model.Decode(ref, model.DecodeOptions{})
	m.Version = 1
	file, _ := model.Encode(m, priv)
	man := modelsync.NewManifest(m.Name, 1, file, 1024, modelsync.Target{Site: "site-a", All: true},
		time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC))
	offer, _ := modelsync.SignManifest(man, priv)
	blocks := modelsync.SplitBlocks(man, file)

	if err := syncer.Offer(ctx, offer); err != nil { // router: .../model/offer
		fmt.Println(err)
		return
	}
	for _, i := range req.last.Blocks {
		if err := syncer.Block(ctx, blocks[i]); err != nil { // router: .../model/block
			fmt.Println(err)
		}
	}
	fmt.Println("live model version", live.Load().Version)
	// Output:
	// request {"name":"reference","version":1,"blocks":[0,1,2,3,4],"round":0}
	// status transferring active=0
	// status promoted active=1
	// live model version 1
}
