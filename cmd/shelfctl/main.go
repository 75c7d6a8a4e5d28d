// Command shelfctl is Shelfgate's operator and cloud-side tool.
//
// Usage:
//
//	shelfctl COMMAND [flags]     (shelfctl COMMAND --help for its flags)
//	shelfctl --version | version
//
// Commands (the table in commands; shelfctl --help lists them all):
//
//	tail       print telemetry batches, events, statuses and command replies as they arrive
//	collect    keep every record once in a JSON-lines file and audit every stream for gaps
//	calibrate  calibrate one HX711 load cell with a reference weight
//	model      train, quantize, evaluate, inspect, run and benchmark models
//	eval       score the plate classifiers on a scenario or a recorded trace
//	push       roll a model out to gateways over MQTT (canaries first)
//	keys       make or identify ed25519 signing keys
//	outbox     inspect an outbox, or salvage a quarantined one
//
// tail and collect share the broker connection flags (--broker, --username,
// --password-file, --ca-file, --cert-file, --key-file, --server-name,
// --connect-timeout) and read the gateway's environment variables
// SHELFGATE_BROKER_URLS, SHELFGATE_BROKER_USERNAME and
// SHELFGATE_BROKER_PASSWORD as defaults. A broker that refuses the
// credentials or fails TLS verification ends them at once, saying so.
//
// collect, when it stops, prints an audit per stream (received,
// duplicates, gaps) from the first sequence number it received per stream
// (--from-start: from 1) and exits 1 if any is missing.
//
// Exit codes: 0 success (and --help), 1 failure (or an audit with gaps),
// 2 bad usage.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/shelfgate/shelfgate/model/modelcli"
)

var errUsage = errors.New("usage")

// errAudit is returned when collect's audit finds gaps or conflicts.
var errAudit = errors.New("audit failed")

// errHelp is returned by a command that printed its help as asked.
var errHelp = flag.ErrHelp

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// command is one shelfctl subcommand.
type command struct {
	name     string
	synopsis string // the flags and arguments after "shelfctl NAME"
	summary  string // one line for the command list
	run      func(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error
	// ownHelp: the command prints its flags for -h/--help itself (to its
	// stderr argument, which is stdout then) and returns a usage or help
	// error without doing anything. Others get their synopsis printed and
	// are not run at all.
	ownHelp bool
}

// commands is every subcommand, in the order usage lists them.
func commands() []command {
	return []command{
		{name: "tail", synopsis: tailSynopsis, summary: "print telemetry batches, events, statuses and command replies as they arrive", ownHelp: true,
			run: func(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
				return tail(ctx, args, stdout, stderr)
			}},
		{name: "collect", synopsis: collectSynopsis, summary: "keep every record once in a JSON-lines file; audit every stream for gaps when stopped", ownHelp: true,
			run: func(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
				return collectCmd(ctx, args, stdout, stderr)
			}},
		{name: "calibrate", synopsis: "--bin ID --clk GPIOn --data GPIOn [--bin ID --data GPIOn ...] --reference-grams G [--mode A128|A64|B32] [--samples N] [--out FILE]", summary: "calibrate HX711 load cells with a reference weight (several bins per run)", ownHelp: true,
			run: func(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
				return calibrate(ctx, args, stdin, stdout, stderr, openHX711)
			}},
		{name: "model", synopsis: "train|quantize|eval|inspect|run|bench ... (shelfctl model help) | " + trainSynopsis, summary: "train, quantize, evaluate, inspect, run and benchmark models; retrain from collected samples", ownHelp: true,
			run: modelCmd},
		{name: "eval", synopsis: "[--classifier analytic|model|gated|both|float|all|shadow] [--model FILE] [--duration D] [--trace FILE.csv] [--json FILE] SCENARIO.yaml...", summary: "score the plate classifiers on a scenario or a recorded trace (F1, SKU, quantity, mis-pick, latency)",
			run: func(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
				return evalCmd(ctx, args, stdout, stderr)
			}},
		{name: "push", synopsis: "--broker URL --site S (--gateway G ... | --all) [--canary N] [--max-failures F] (--key KEY | --offer OFFER.json) FILE", summary: "roll a model out to gateways over MQTT: canaries first, progress per gateway, a table of outcomes",
			run: func(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
				return pushCmd(ctx, args, stdout, stderr)
			}},
		{name: "config", synopsis: configSynopsis, summary: "sign a configuration file and publish it as the desired config of a gateway or site; wait for its outcome", ownHelp: true,
			run: func(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
				return configCmd(ctx, args, stdout, stderr)
			}},
		{name: "keys", synopsis: "gen -o NAME [--force] | id FILE...", summary: "make an ed25519 signing key pair for models and manifests, or print a key's id",
			run: func(_ context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
				return keysCmd(args, stdout, stderr)
			}},
		{name: "outbox", synopsis: "inspect [--json] FILE | salvage [--dry-run] --into OUTBOX FILE", summary: "read an outbox without disturbing it, or re-queue the readable rows of a quarantined one",
			run: func(ctx context.Context, args []string, _ io.Reader, stdout, _ io.Writer) error {
				return outboxCmd(ctx, args, stdout)
			}},
		{name: "version", synopsis: "", summary: "print the version (also shelfctl --version)",
			run: func(_ context.Context, args []string, _ io.Reader, stdout, _ io.Writer) error {
				if len(args) > 0 {
					return fmt.Errorf("%w: version takes no arguments", errUsage)
				}
				fmt.Fprintln(stdout, versionString())
				return nil
			}},
	}
}

// usage is the command list, made from commands.
func usage() string {
	var b strings.Builder
	b.WriteString("usage: shelfctl COMMAND [flags]   (shelfctl COMMAND --help for its flags)\n       shelfctl --version\n\ncommands:\n")
	cmds := commands()
	width := 0
	for _, c := range cmds {
		width = max(width, len(c.name))
	}
	for _, c := range cmds {
		fmt.Fprintf(&b, "  %-*s  %s\n", width, c.name, c.summary)
	}
	b.WriteString("\n")
	for _, c := range cmds {
		fmt.Fprintln(&b, strings.TrimRight("  shelfctl "+c.name+" "+c.synopsis, " "))
	}
	return b.String()
}

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
	case err == nil, errors.Is(err, errHelp):
		return 0
	case errors.Is(err, errUsage), errors.Is(err, modelcli.ErrUsage):
		fmt.Fprintln(stderr, "shelfctl:", err)
		return 2
	default: // including errAudit
		fmt.Fprintln(stderr, "shelfctl:", err)
		return 1
	}
}

func dispatch(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: no command\n%s", errUsage, usage())
	}
	switch args[0] {
	case "-h", "--help", "-help":
		fmt.Fprint(stdout, usage())
		return nil
	case "help":
		if len(args) > 1 {
			return dispatch(ctx, []string{args[1], "--help"}, stdin, stdout, stderr)
		}
		fmt.Fprint(stdout, usage())
		return nil
	case "--version", "-version":
		fmt.Fprintln(stdout, versionString())
		return nil
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		if !wantsHelp(args[1:]) {
			return c.run(ctx, args[1:], stdin, stdout, stderr)
		}
		fmt.Fprintf(stdout, "usage: %s\n\n%s\n", strings.TrimRight("shelfctl "+c.name+" "+c.synopsis, " "), c.summary)
		if !c.ownHelp {
			return nil
		}
		fmt.Fprintln(stdout)
		err := c.run(ctx, args[1:], stdin, stdout, stdout)
		if err == nil || errors.Is(err, errHelp) || errors.Is(err, errUsage) || errors.Is(err, modelcli.ErrUsage) {
			return nil
		}
		return err
	}
	return fmt.Errorf("%w: unknown command %q\n%s", errUsage, args[0], usage())
}

// wantsHelp reports whether args ask for help (-h, -help or --help before
// a "--").
func wantsHelp(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "-h", "-help", "--help":
			return true
		}
	}
	return false
}

// parseFlags parses a command's flags. -h/--help prints the flags to
// stdout and returns errHelp; a bad flag is a usage error (the flags are
// printed to stderr).
func parseFlags(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) error {
	fs.SetOutput(stderr)
	fs.Usage = func() {}
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fs.SetOutput(stdout)
		fmt.Fprintln(stdout, "flags:")
		fs.PrintDefaults()
		return errHelp
	case err != nil:
		fmt.Fprintln(stderr, "flags:")
		fs.PrintDefaults()
		return fmt.Errorf("%w: %s: %v", errUsage, fs.Name(), err)
	}
	return nil
}

func versionString() string {
	v := version
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v += " (" + s.Value[:12] + ")"
			}
		}
		return fmt.Sprintf("shelfctl %s %s", v, bi.GoVersion)
	}
	return "shelfctl " + v
}
