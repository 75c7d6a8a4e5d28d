// Package modelcli implements the "shelfctl model ..." subcommands: train,
// quantize, eval, inspect, run and bench. The shelfctl main program calls
// Main with the words after "model".
package modelcli

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// ErrUsage marks a command-line usage error; the caller exits with status 2.
var ErrUsage = errors.New("usage error")

const usage = `usage: shelfctl model <command> [flags] [args]

commands:
  synth     write a synthetic labelled dataset as CSV
  windows   write labelled load-cell windows from the warehouse simulator as CSV
  train     train a float32 MLP from CSV (features..., label)
  quantize  post-training quantization of a float model to an int8 model file
  eval      accuracy, confusion matrix and float/int8 agreement on a CSV
  inspect   show layers, shapes, version, hash and signature (--json: all parameters)
  run       classify feature rows (CSV or JSON lines, or int8 rows with --quantized) from stdin
  bench     time inference of a model file
`

// Main runs one model subcommand. args are the words after "model".
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("model: missing command: %w", ErrUsage)
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	c, ok := commands[cmd]
	if !ok {
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("model: unknown command %q: %w", cmd, ErrUsage)
	}
	return c(ctx, rest, stdin, stdout, stderr)
}

type command func(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error

var commands = map[string]command{}
