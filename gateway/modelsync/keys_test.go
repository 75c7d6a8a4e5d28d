package modelsync

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestPEMKeysRoundTrip(t *testing.T) {
	pub, priv, err := GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	privPEM, err := MarshalPrivateKeyPEM(priv)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM, err := MarshalPublicKeyPEM(pub)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(privPEM, []byte("-----BEGIN PRIVATE KEY-----")) || !bytes.HasPrefix(pubPEM, []byte("-----BEGIN PUBLIC KEY-----")) {
		t.Fatalf("PEM types:\n%s\n%s", privPEM, pubPEM)
	}
	p2, err := ParsePrivateKey(privPEM)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := ParsePublicKey(pubPEM)
	if err != nil {
		t.Fatal(err)
	}
	if !p2.Equal(priv) || !k2.Equal(pub) {
		t.Fatal("keys changed in the round trip")
	}
}

// Key files made by other tools: ssh-keygen -t ed25519 and openssl genpkey
// (testdata, made once with those tools).
func TestForeignKeyFiles(t *testing.T) {
	pairs := []struct{ priv, pub string }{
		{"ssh_ed25519", "ssh_ed25519.pub"},
		{"openssl_ed25519.pem", "openssl_ed25519.pub.pem"},
	}
	for _, p := range pairs {
		t.Run(p.priv, func(t *testing.T) {
			priv, err := LoadPrivateKey(filepath.Join("testdata", p.priv))
			if err != nil {
				t.Fatal(err)
			}
			pub, err := LoadPublicKey(filepath.Join("testdata", p.pub))
			if err != nil {
				t.Fatal(err)
			}
			if !pub.Equal(priv.Public()) {
				t.Fatal("public key file does not match the private key")
			}
			// A manifest signed with the foreign key verifies with its
			// public key file.
			data := []byte("model bytes")
			m := NewManifest("m", 1, data, MinBlockSize, Target{Site: "s1", All: true}, testNow.Add(time.Hour))
			payload, err := SignManifest(m, priv)
			if err != nil {
				t.Fatal(err)
			}
			pol := Policy{Keys: []ed25519.PublicKey{pub}, Site: "s1", Gateway: "g"}
			if _, _, err := pol.VerifyOffer(payload, testNow, 0); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestKeyRejections(t *testing.T) {
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	_, priv := testKey(3)
	privPEM, _ := MarshalPrivateKeyPEM(priv)
	cases := []struct {
		name    string
		parse   func([]byte) error
		data    []byte
		wantMsg string
	}{
		{"ecdsa ssh public key", pubParse, read("ssh_ecdsa.pub"), "want ssh-ed25519"},
		{"ecdsa ssh private key", privParse, read("ssh_ecdsa"), "want ed25519"},
		{"encrypted ssh private key", privParse, read("ssh_ed25519_encrypted"), "encrypted"},
		{"private key as public", pubParse, privPEM, "want PUBLIC KEY"},
		{"garbage", pubParse, []byte("hello"), "not PEM"},
		{"garbage private", privParse, []byte("hello"), "not PEM"},
		{"short hex", privParse, []byte("abcd"), "2 bytes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.parse(tc.data)
			if !errors.Is(err, ErrKeyFormat) || !strings.Contains(err.Error(), tc.wantMsg) {
				t.Fatalf("error %v, want ErrKeyFormat mentioning %q", err, tc.wantMsg)
			}
		})
	}
}

func pubParse(b []byte) error  { _, err := ParsePublicKey(b); return err }
func privParse(b []byte) error { _, err := ParsePrivateKey(b); return err }

func TestHexKeys(t *testing.T) {
	pub, priv := testKey(4)
	for _, s := range []string{hex.EncodeToString(priv.Seed()), hex.EncodeToString(priv) + "\n"} {
		k, err := ParsePrivateKey([]byte(s))
		if err != nil || !k.Equal(priv) {
			t.Fatalf("hex private key: %v", err)
		}
	}
	k, err := ParsePublicKey([]byte(hex.EncodeToString(pub)))
	if err != nil || !k.Equal(pub) {
		t.Fatalf("hex public key: %v", err)
	}
	bad := append(bytes.Clone(priv[:32]), make([]byte, 32)...)
	if _, err := ParsePrivateKey([]byte(hex.EncodeToString(bad))); !errors.Is(err, ErrKeyFormat) {
		t.Fatalf("64-byte key with a wrong public half: %v", err)
	}
}

func TestKeyID(t *testing.T) {
	a, _ := testKey(1)
	b, _ := testKey(2)
	if KeyID(a) == KeyID(b) || len(KeyID(a)) != 16 {
		t.Fatalf("key ids %s %s", KeyID(a), KeyID(b))
	}
}
