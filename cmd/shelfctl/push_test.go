package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shelfgate/shelfgate/gateway/modelsync"
	"github.com/shelfgate/shelfgate/gateway/modelsync/rollout"
)

func TestPushUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--site", "s", "--gateway", "g", "--key", "k"}, "one model FILE"},
		{[]string{"--gateway", "g", "--key", "k", "f"}, "--site is required"},
		{[]string{"--site", "s", "--key", "k", "f"}, "give --gateway ... or --all"},
		{[]string{"--site", "s", "--all", "--gateway", "g", "--key", "k", "f"}, "give --gateway ... or --all"},
		{[]string{"--site", "s", "--gateway", "g", "f"}, "give --key or --offer"},
		{[]string{"--site", "s", "--gateway", "g", "--key", "k", "--offer", "o", "f"}, "give --key or --offer"},
	} {
		var out, errb bytes.Buffer
		code := Main(context.Background(), append([]string{"push"}, tc.args...), nil, &out, &errb)
		if code != 2 || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("push %v: exit %d, stderr %q, want 2 and %q", tc.args, code, errb.String(), tc.want)
		}
	}
}

// TestPushSignsAndChecksOffers: --key re-signs the file and signs a
// manifest that verifies; --offer refuses a file its manifest does not
// describe.
func TestPushSignsAndChecksOffers(t *testing.T) {
	dir := t.TempDir()
	_, priv, _ := modelsync.GenerateKey(nil)
	_, other, _ := modelsync.GenerateKey(nil)
	pem, err := modelsync.MarshalPrivateKeyPEM(priv)
	if err != nil {
		t.Fatal(err)
	}
	keyPath := filepath.Join(dir, "k")
	os.WriteFile(keyPath, pem, 0o600)
	file, err := rollout.SyntheticModel("m", 4, 4<<10, 1, other)
	if err != nil {
		t.Fatal(err)
	}
	target := modelsync.Target{Site: "s", Gateways: []string{"g"}}
	signed, man, offer, err := signForPush(file, keyPath, 1024, target, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	pol := modelsync.Policy{Keys: []ed25519.PublicKey{priv.Public().(ed25519.PublicKey)}, Site: "s", Gateway: "g"}
	if m, _, err := pol.VerifyOffer(offer, time.Now(), 0); err != nil || m.Version != 4 || m.Name != "m" || m.SHA256 != man.SHA256 {
		t.Fatalf("offer does not verify: %v %+v", err, m)
	}
	offerPath := filepath.Join(dir, "offer.json")
	os.WriteFile(offerPath, offer, 0o644)
	if _, _, _, err := loadOffer(signed, offerPath); err != nil {
		t.Fatalf("matching file refused: %v", err)
	}
	if _, _, _, err := loadOffer(file, offerPath); err == nil || !strings.Contains(err.Error(), "manifest describes") {
		t.Fatalf("file other than the manifest's accepted: %v", err)
	}
}
