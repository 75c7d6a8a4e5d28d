// Command shelfgate is the Shelfgate edge gateway daemon: it reads shelf
// sensors (or a simulated warehouse), keeps every reading in a durable SQLite
// outbox and delivers readings and warehouse events to an MQTT broker.
//
// Usage:
//
//	shelfgate run --config FILE [--duration D] [--summary]
//	shelfgate check-config FILE
//	shelfgate doctor --config FILE
//	shelfgate version
//
// Exit codes: 0 success, 1 runtime failure, 2 bad usage or configuration.
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
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// errUsage and errConfig mark errors that exit with status 2.
var (
	errUsage  = errors.New("usage")
	errConfig = errors.New("invalid configuration")
)

func main() {
	os.Exit(Main(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `usage:
  shelfgate run --config FILE [--duration D] [--summary]
  shelfgate check-config FILE
  shelfgate doctor --config FILE   (which drivers, buses and pins exist; tries every sensor)
  shelfgate version
`

// Main runs the command line and returns the exit status.
func Main(args []string, stdout, stderr io.Writer) int {
	err := dispatch(args, stdout, stderr)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintln(stderr, err)
		return 2
	case errors.Is(err, errConfig):
		fmt.Fprintln(stderr, "shelfgate:", err)
		return 2
	default:
		fmt.Fprintln(stderr, "shelfgate:", err)
		return 1
	}
}

func dispatch(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: no command\n%s", errUsage, usage)
	}
	switch args[0] {
	case "version":
		fmt.Fprintln(stdout, versionString())
		return nil
	case "check-config":
		fs := flag.NewFlagSet("check-config", flag.ContinueOnError)
		fs.SetOutput(stderr)
		if err := fs.Parse(args[1:]); err != nil || fs.NArg() != 1 {
			return fmt.Errorf("%w: shelfgate check-config FILE", errUsage)
		}
		cfg, err := loadConfig(fs.Arg(0))
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: OK (gateway %s, site %s, %d sensors, simulation %v, brokers %v)\n",
			fs.Arg(0), cfg.Gateway.ID, cfg.Gateway.Site, len(cfg.Sensors), cfg.Simulation != nil, cfg.Broker.URLs)
		return nil
	case "doctor":
		fs := flag.NewFlagSet("doctor", flag.ContinueOnError)
		fs.SetOutput(stderr)
		path := fs.String("config", "", "configuration file (YAML)")
		if err := fs.Parse(args[1:]); err != nil || *path == "" || fs.NArg() != 0 {
			return fmt.Errorf("%w: shelfgate doctor --config FILE", errUsage)
		}
		cfg, err := loadConfig(*path)
		if err != nil {
			return err
		}
		return doctor(context.Background(), cfg, stdout)
	case "run":
		fs := flag.NewFlagSet("run", flag.ContinueOnError)
		fs.SetOutput(stderr)
		path := fs.String("config", "", "configuration file (YAML)")
		duration := fs.Duration("duration", 0, "stop by itself after this long (0 = run until SIGINT/SIGTERM)")
		summary := fs.Bool("summary", false, "print a SUMMARY line on exit")
		if err := fs.Parse(args[1:]); err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		if *path == "" || fs.NArg() != 0 {
			return fmt.Errorf("%w: shelfgate run --config FILE", errUsage)
		}
		cfg, err := loadConfig(*path)
		if err != nil {
			return err
		}
		ctx, flushCtx, stop := signals(stderr)
		defer stop()
		if *duration > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, *duration)
			defer cancel()
		}
		return run(ctx, flushCtx, cfg, stdout, stderr, *summary)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	return fmt.Errorf("%w: unknown command %q\n%s", errUsage, args[0], usage)
}

// signals returns a context cancelled by the first SIGINT/SIGTERM and a
// flush context cancelled by the second; a third exits at once. The outbox
// is durable, so a forced exit loses nothing that was accepted.
func signals(stderr io.Writer) (ctx, flushCtx context.Context, stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	flushCtx, cancelFlush := context.WithCancel(context.Background())
	ch := make(chan os.Signal, 3)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		n := 0
		for range ch {
			n++
			switch n {
			case 1:
				cancel()
			case 2:
				fmt.Fprintln(stderr, "shelfgate: second signal: skipping the final flush (the backlog stays in the outbox)")
				cancelFlush()
			default:
				fmt.Fprintln(stderr, "shelfgate: forced exit")
				os.Exit(1)
			}
		}
	}()
	return ctx, flushCtx, func() { signal.Stop(ch); cancel(); cancelFlush() }
}

func versionString() string {
	v := version
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v += " (" + s.Value[:12] + ")"
			}
		}
		return fmt.Sprintf("shelfgate %s %s", v, bi.GoVersion)
	}
	return "shelfgate " + v
}
