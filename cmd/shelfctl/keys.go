package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/shelfgate/shelfgate/gateway/modelsync"
)

const keysUsage = `usage:
  shelfctl keys gen -o NAME [--force]   write an ed25519 key pair: NAME (PKCS#8 PEM, mode 0600)
                                        and NAME.pub (PKIX PEM); print the key id
  shelfctl keys id FILE...              print the key id and hex public key of key files
                                        (PEM, OpenSSH private or ssh-ed25519 public, hex)
`

// keysCmd manages the ed25519 keys that sign models and manifests.
func keysCmd(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: keys: no subcommand\n%s", errUsage, keysUsage)
	}
	switch args[0] {
	case "gen":
		return keysGen(args[1:], stdout, stderr)
	case "id":
		return keysID(args[1:], stdout)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, keysUsage)
		return nil
	}
	return fmt.Errorf("%w: keys: unknown subcommand %q\n%s", errUsage, args[0], keysUsage)
}

func keysGen(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("keys gen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("o", "", "private key file; the public key goes to FILE.pub")
	force := fs.Bool("force", false, "overwrite existing files")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: keys gen: %v", errUsage, err)
	}
	if *out == "" || fs.NArg() > 0 {
		return fmt.Errorf("%w: keys gen: want -o NAME and no arguments\n%s", errUsage, keysUsage)
	}
	pub, priv, err := modelsync.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	privPEM, err := modelsync.MarshalPrivateKeyPEM(priv)
	if err != nil {
		return err
	}
	pubPEM, err := modelsync.MarshalPublicKeyPEM(pub)
	if err != nil {
		return err
	}
	if err := writeKeyFile(*out, privPEM, 0o600, *force); err != nil {
		return err
	}
	if err := writeKeyFile(*out+".pub", pubPEM, 0o644, *force); err != nil {
		os.Remove(*out)
		return err
	}
	fmt.Fprintf(stdout, "key %s\nprivate %s\npublic  %s\n", modelsync.KeyID(pub), *out, *out+".pub")
	return nil
}

// writeKeyFile creates path with mode (never replacing a file unless
// force), writes data and syncs it.
func writeKeyFile(path string, data []byte, mode os.FileMode, force bool) error {
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if force {
		flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	f, err := os.OpenFile(path, flags, mode)
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("keys gen: %s exists; use --force to replace it", path)
	}
	if err != nil {
		return fmt.Errorf("keys gen: %w", err)
	}
	if err := f.Chmod(mode); err != nil { // an existing file keeps its mode otherwise
		f.Close()
		return fmt.Errorf("keys gen: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("keys gen: write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("keys gen: sync %s: %w", path, err)
	}
	return f.Close()
}

func keysID(args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: keys id: want key files\n%s", errUsage, keysUsage)
	}
	for _, path := range args {
		data, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("keys id: %w", err)
		}
		pub, perr := modelsync.ParsePublicKey(data)
		if perr != nil {
			priv, err := modelsync.ParsePrivateKey(data)
			if err != nil {
				return fmt.Errorf("keys id: %s: not a public key (%v) nor a private key (%w)", path, perr, err)
			}
			pub = priv.Public().(ed25519.PublicKey)
		}
		fmt.Fprintf(stdout, "%s %s %s\n", modelsync.KeyID(pub), hex.EncodeToString(pub), path)
	}
	return nil
}
