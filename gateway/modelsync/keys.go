package modelsync

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/crypto/ssh"
)

// ErrKeyFormat is returned for a key file that is none of the accepted
// formats, or holds a key that is not ed25519.
var ErrKeyFormat = errors.New("unsupported key format")

// GenerateKey returns a new ed25519 key pair read from rand.
func GenerateKey(rand io.Reader) (ed25519.PublicKey, ed25519.PrivateKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand)
	if err != nil {
		return nil, nil, fmt.Errorf("generate ed25519 key: %w", err)
	}
	return pub, priv, nil
}

// MarshalPrivateKeyPEM encodes priv as a PKCS#8 "PRIVATE KEY" PEM block
// (the format of `openssl genpkey -algorithm ed25519`).
func MarshalPrivateKeyPEM(priv ed25519.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("marshal private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// MarshalPublicKeyPEM encodes pub as a PKIX "PUBLIC KEY" PEM block (the
// format of `openssl pkey -pubout`).
func MarshalPublicKeyPEM(pub ed25519.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("marshal public key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// KeyID names a public key in manifests and logs: the first 8 bytes of the
// SHA-256 of the 32-byte raw key, as 16 lowercase hex digits.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// ParsePrivateKey reads an ed25519 private key in any of these formats:
// PKCS#8 PEM ("PRIVATE KEY", as written by `shelfctl keys gen` and
// openssl), an unencrypted OpenSSH private key ("OPENSSH PRIVATE KEY", as
// written by `ssh-keygen -t ed25519 -N ”`), or the hex-encoded 32-byte
// seed or 64-byte key of `shelfctl model quantize -sign-key`.
func ParsePrivateKey(data []byte) (ed25519.PrivateKey, error) {
	if blk, _ := pem.Decode(data); blk != nil {
		switch blk.Type {
		case "PRIVATE KEY":
			k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
			if err != nil {
				return nil, fmt.Errorf("PKCS#8 private key: %w", err)
			}
			priv, ok := k.(ed25519.PrivateKey)
			if !ok {
				return nil, fmt.Errorf("PKCS#8 private key is %T, want ed25519: %w", k, ErrKeyFormat)
			}
			return priv, nil
		case "OPENSSH PRIVATE KEY":
			k, err := ssh.ParseRawPrivateKey(data)
			if err != nil {
				var pm *ssh.PassphraseMissingError
				if errors.As(err, &pm) {
					return nil, fmt.Errorf("OpenSSH private key is encrypted; decrypt a copy with `ssh-keygen -p -N ''`: %w", ErrKeyFormat)
				}
				return nil, fmt.Errorf("OpenSSH private key: %w", err)
			}
			switch k := k.(type) {
			case *ed25519.PrivateKey:
				return *k, nil
			case ed25519.PrivateKey:
				return k, nil
			}
			return nil, fmt.Errorf("OpenSSH private key is %T, want ed25519: %w", k, ErrKeyFormat)
		}
		return nil, fmt.Errorf("PEM block %q: %w", blk.Type, ErrKeyFormat)
	}
	raw, err := hex.DecodeString(strings.TrimSpace(string(data)))
	if err != nil {
		return nil, fmt.Errorf("not PEM, OpenSSH or hex: %w", ErrKeyFormat)
	}
	switch len(raw) {
	case ed25519.SeedSize:
		return ed25519.NewKeyFromSeed(raw), nil
	case ed25519.PrivateKeySize:
		priv := ed25519.PrivateKey(raw)
		if !bytes.Equal(ed25519.NewKeyFromSeed(priv.Seed()), priv) {
			return nil, fmt.Errorf("hex private key: public half does not match the seed: %w", ErrKeyFormat)
		}
		return priv, nil
	}
	return nil, fmt.Errorf("hex key of %d bytes, want %d or %d: %w", len(raw), ed25519.SeedSize, ed25519.PrivateKeySize, ErrKeyFormat)
}

// ParsePublicKey reads an ed25519 public key in any of these formats: PKIX
// PEM ("PUBLIC KEY", as written by `shelfctl keys gen`), an OpenSSH
// authorized-keys line ("ssh-ed25519 AAAA... comment", the .pub file of
// ssh-keygen), or 64 hex digits (the raw key, as `-trusted-key` takes).
func ParsePublicKey(data []byte) (ed25519.PublicKey, error) {
	if blk, _ := pem.Decode(data); blk != nil {
		if blk.Type != "PUBLIC KEY" {
			return nil, fmt.Errorf("PEM block %q, want PUBLIC KEY: %w", blk.Type, ErrKeyFormat)
		}
		k, err := x509.ParsePKIXPublicKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("PKIX public key: %w", err)
		}
		pub, ok := k.(ed25519.PublicKey)
		if !ok {
			return nil, fmt.Errorf("PKIX public key is %T, want ed25519: %w", k, ErrKeyFormat)
		}
		return pub, nil
	}
	text := strings.TrimSpace(string(data))
	if strings.HasPrefix(text, "ssh-") || strings.HasPrefix(text, "ecdsa-") {
		k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(text))
		if err != nil {
			return nil, fmt.Errorf("OpenSSH public key: %w", err)
		}
		if k.Type() != ssh.KeyAlgoED25519 {
			return nil, fmt.Errorf("OpenSSH public key is %s, want %s: %w", k.Type(), ssh.KeyAlgoED25519, ErrKeyFormat)
		}
		ck, ok := k.(ssh.CryptoPublicKey)
		if !ok {
			return nil, fmt.Errorf("OpenSSH public key %s: %w", k.Type(), ErrKeyFormat)
		}
		pub, ok := ck.CryptoPublicKey().(ed25519.PublicKey)
		if !ok {
			return nil, fmt.Errorf("OpenSSH public key is %T: %w", ck.CryptoPublicKey(), ErrKeyFormat)
		}
		return pub, nil
	}
	raw, err := hex.DecodeString(text)
	if err != nil || len(raw) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("not PEM, OpenSSH or %d hex digits: %w", 2*ed25519.PublicKeySize, ErrKeyFormat)
	}
	return ed25519.PublicKey(raw), nil
}

// LoadPrivateKey reads a private key file (see ParsePrivateKey).
func LoadPrivateKey(path string) (ed25519.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read private key: %w", err)
	}
	k, err := ParsePrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("private key %s: %w", path, err)
	}
	return k, nil
}

// LoadPublicKey reads a public key file (see ParsePublicKey).
func LoadPublicKey(path string) (ed25519.PublicKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read public key: %w", err)
	}
	k, err := ParsePublicKey(data)
	if err != nil {
		return nil, fmt.Errorf("public key %s: %w", path, err)
	}
	return k, nil
}

// LoadTrustedKeys reads the public key files a gateway's config names.
func LoadTrustedKeys(paths []string) ([]ed25519.PublicKey, error) {
	keys := make([]ed25519.PublicKey, 0, len(paths))
	for _, p := range paths {
		k, err := LoadPublicKey(p)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, nil
}
