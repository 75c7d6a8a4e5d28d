package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shelfgate/shelfgate/gateway/modelsync"
)

func runShelfctl(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb strings.Builder
	code = Main(context.Background(), args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

func TestKeysGen(t *testing.T) {
	name := filepath.Join(t.TempDir(), "signer")
	code, out, errs := runShelfctl(t, "keys", "gen", "-o", name)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	st, err := os.Stat(name)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("private key mode %v, want 0600", st.Mode().Perm())
	}
	priv, err := modelsync.LoadPrivateKey(name)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := modelsync.LoadPublicKey(name + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	if !pub.Equal(priv.Public()) {
		t.Fatal("NAME.pub is not NAME's public key")
	}
	if !strings.Contains(out, "key "+modelsync.KeyID(pub)) {
		t.Errorf("output %q does not print the key id", out)
	}
	// No silent overwrite.
	if code, _, errs := runShelfctl(t, "keys", "gen", "-o", name); code != 1 || !strings.Contains(errs, "exists") {
		t.Fatalf("second gen: exit %d: %s", code, errs)
	}
	again, _ := modelsync.LoadPrivateKey(name)
	if !again.Equal(priv) {
		t.Fatal("existing key replaced without --force")
	}
	if code, _, errs := runShelfctl(t, "keys", "gen", "-o", name, "--force"); code != 0 {
		t.Fatalf("gen --force: exit %d: %s", code, errs)
	}

	code, out, errs = runShelfctl(t, "keys", "id", name+".pub", "../../gateway/modelsync/testdata/ssh_ed25519.pub", "../../gateway/modelsync/testdata/ssh_ed25519")
	if code != 0 {
		t.Fatalf("keys id: exit %d: %s", code, errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || strings.Fields(lines[1])[0] != strings.Fields(lines[2])[0] {
		t.Fatalf("keys id output:\n%s", out)
	}
}

func TestKeysUsage(t *testing.T) {
	for _, args := range [][]string{{"keys"}, {"keys", "gen"}, {"keys", "frob"}, {"keys", "id"}} {
		if code, _, errs := runShelfctl(t, args...); code != 2 {
			t.Errorf("%v: exit %d, want 2: %s", args, code, errs)
		}
	}
	if code, _, errs := runShelfctl(t, "keys", "id", "../../gateway/modelsync/testdata/ssh_ecdsa.pub"); code != 1 || !strings.Contains(errs, "ssh-ed25519") {
		t.Errorf("ecdsa key: exit %d: %s", code, errs)
	}
}
