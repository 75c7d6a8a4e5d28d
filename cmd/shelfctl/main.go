// Command shelfctl is Shelfgate's operator and cloud-side tool.
//
// Usage:
//
//	shelfctl tail    --broker URL [--site S] [--gateway G] [--raw]
//	shelfctl collect --broker URL --out FILE.jsonl [--share GROUP] [--site S] [--gateway G]
//	                 [--client-id ID] [--duration D] [--idle D] [--expect N] [--from-first] [--ack]
//	shelfctl calibrate --clk GPIOn --data GPIOn --bin ID --reference-grams G [--out FILE]
//	shelfctl model   train|quantize|eval|inspect|run|bench ...
//	shelfctl push    --broker URL --site S (--gateway G ... | --all) [--canary N] [--max-failures F] (--key KEY | --offer OFFER.json) FILE
//
// tail prints telemetry batches, events and status messages as they arrive.
// collect keeps every record once (by gateway and id) in a JSON-lines file
// and, when it stops, prints an audit per stream (received, duplicates, gaps)
// and exits 1 if any sequence number is missing.
//
// Exit codes: 0 success, 1 failure (or an audit with gaps), 2 bad usage.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/shelfgate/shelfgate/model/modelcli"
)

var errUsage = errors.New("usage")

// errAudit is returned when collect's audit finds gaps or conflicts.
var errAudit = errors.New("audit failed")

const usage = `usage:
  shelfctl tail    --broker URL [--site S] [--gateway G] [--raw]
  shelfctl collect --broker URL --out FILE.jsonl [--share GROUP] [--site S] [--gateway G]
                   [--client-id ID] [--duration D] [--idle D] [--expect N] [--from-first] [--ack]
  shelfctl calibrate --clk GPIOn --data GPIOn --bin ID --reference-grams G [--samples N] [--out FILE]
  shelfctl model   train|quantize|eval|inspect|run|bench ... (shelfctl model help)
  shelfctl push    --broker URL --site S (--gateway G ... | --all) [--canary N] [--max-failures F] (--key KEY | --offer OFFER.json) FILE
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := Main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Main runs the command line and returns the exit status.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	err := dispatch(ctx, args, stdin, stdout, stderr)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errUsage), errors.Is(err, modelcli.ErrUsage):
		fmt.Fprintln(stderr, "shelfctl:", err)
		return 2
	case errors.Is(err, errAudit):
		fmt.Fprintln(stderr, "shelfctl:", err)
		return 1
	default:
		fmt.Fprintln(stderr, "shelfctl:", err)
		return 1
	}
}

func dispatch(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: no command\n%s", errUsage, usage)
	}
	switch args[0] {
	case "tail":
		return tail(ctx, args[1:], stdout, stderr)
	case "collect":
		return collectCmd(ctx, args[1:], stdout, stderr)
	case "model":
		return modelcli.Main(ctx, args[1:], stdin, stdout, stderr)
	case "push":
		return pushCmd(ctx, args[1:], stdout, stderr)
	case "keys":
		return keysCmd(args[1:], stdout, stderr)
	case "calibrate":
		return calibrate(ctx, args[1:], stdin, stdout, stderr, openHX711)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	return fmt.Errorf("%w: unknown command %q\n%s", errUsage, args[0], usage)
}
