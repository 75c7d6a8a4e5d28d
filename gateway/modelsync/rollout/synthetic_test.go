package rollout

import (
	"crypto/ed25519"
	"testing"

	"github.com/shelfgate/shelfgate/model"
)

func TestSyntheticModelLoadsWithItsKey(t *testing.T) {
	priv := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	data, err := SyntheticModel("synth", 3, 1<<20, 1, priv)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) < 1<<20 || len(data) > 1<<20+64<<10 {
		t.Fatalf("size %d, want about 1MiB", len(data))
	}
	m, err := model.Decode(data, model.DecodeOptions{TrustedKeys: []ed25519.PublicKey{priv.Public().(ed25519.PublicKey)}})
	if err != nil {
		t.Fatal(err)
	}
	if m.Name != "synth" || m.Version != 3 || len(m.Golden) == 0 {
		t.Fatalf("decoded %s v%d with %d golden vectors", m.Name, m.Version, len(m.Golden))
	}
}
