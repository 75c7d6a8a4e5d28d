// Command shelfgate is the Shelfgate edge gateway daemon: it reads shelf
// sensors (or a simulated warehouse), keeps every reading in a durable SQLite
// outbox and delivers readings and warehouse events to an MQTT broker.
//
// Usage:
//
//	shelfgate run [--config FILE] [--duration D] [--summary] [--adopt-outbox]
//	shelfgate check-config [--config FILE | FILE]
//	shelfgate doctor [--config FILE]
//	shelfgate version
//
// FILE defaults to /etc/shelfgate/shelfgate.yaml. Every command takes
// --help and --version. SIGHUP makes run reload FILE.
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

// defaultConfig is where the package installs the configuration.
const defaultConfig = "/etc/shelfgate/shelfgate.yaml"

// errUsage and errConfig mark errors that exit with status 2.
var (
	errUsage  = errors.New("usage")
	errConfig = errors.New("invalid configuration")
)

// loggedError is an error already written to the log in the configured
// format: Main exits with its status without printing it again.
type loggedError struct{ err error }

func (e loggedError) Error() string { return e.err.Error() }
func (e loggedError) Unwrap() error { return e.err }

func main() {
	setMemoryLimit(os.Getenv)
	os.Exit(Main(os.Args[1:], os.Stdout, os.Stderr))
}

// defaultMemoryLimit is the Go runtime's soft memory limit (heap, stacks,
// runtime metadata; not SQLite's C memory nor the binary's pages) when
// GOMEMLIMIT sets none. The gateway's live heap is about 4 MiB with 24
// load cells at 80 samples/s; 16 MiB lets the collector run earlier than
// GOGC=100 alone would without running all the time (at 12 MiB it did,
// tripling the CPU). GOMEMLIMIT=off or a larger value (e.g. 64MiB for a
// gateway with many more sensors) overrides it.
const defaultMemoryLimit = 16 << 20

// setMemoryLimit applies defaultMemoryLimit unless GOMEMLIMIT is set.
func setMemoryLimit(getenv func(string) string) {
	if getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(defaultMemoryLimit)
	}
}

const usage = `usage:
  shelfgate run [--config FILE] [--duration D] [--summary] [--adopt-outbox]
  shelfgate check-config [--config FILE | FILE]
  shelfgate doctor [--config FILE]   (which drivers, buses and pins exist; tries every sensor)
  shelfgate version

FILE defaults to ` + defaultConfig + `. Every command takes --help and --version.
Signals to run: SIGINT/SIGTERM stop (a second skips the final flush), SIGHUP reloads FILE.
`

// Main runs the command line and returns the exit status.
func Main(args []string, stdout, stderr io.Writer) int {
	return mainWith(args, stdout, stderr, newHostCheck(), nil)
}

// mainWith is Main with the host check and, for tests, the signals that run
// would receive from the process (nil: the process's own).
func mainWith(args []string, stdout, stderr io.Writer, h hostCheck, sig <-chan os.Signal) int {
	err := dispatch(args, stdout, stderr, h, sig)
	var logged loggedError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &logged):
		if errors.Is(err, errConfig) || errors.Is(err, errUsage) {
			return 2
		}
		return 1
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

// command is a subcommand's flag set with --help and --version, whose
// usage goes to stdout when asked for and to stderr after a mistake.
type command struct {
	fs       *flag.FlagSet
	synopsis string
	about    string
	version  *bool
	stdout   io.Writer
}

func newCommand(name, synopsis, about string, stdout, stderr io.Writer) *command {
	c := &command{fs: flag.NewFlagSet(name, flag.ContinueOnError), synopsis: synopsis, stdout: stdout}
	c.fs.SetOutput(stderr)
	c.version = c.fs.Bool("version", false, "print the version and exit")
	c.about = about
	c.fs.Usage = func() {} // printed by parse: to stdout when asked for, else stderr
	return c
}

func (c *command) usage(w io.Writer) {
	fmt.Fprintf(w, "usage: %s\n\n%s\n\nflags:\n", c.synopsis, c.about)
	c.fs.SetOutput(w)
	c.fs.PrintDefaults()
}

// parse parses args; done is true when --help or --version was answered.
func (c *command) parse(args []string) (done bool, err error) {
	if err := c.fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			c.usage(c.stdout)
			return true, nil
		}
		return true, fmt.Errorf("%w: %s (--help for more)", errUsage, c.synopsis)
	}
	if *c.version {
		fmt.Fprintln(c.stdout, versionString())
		return true, nil
	}
	return false, nil
}

func dispatch(args []string, stdout, stderr io.Writer, h hostCheck, sig <-chan os.Signal) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: no command\n%s", errUsage, usage)
	}
	switch args[0] {
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, versionString())
		return nil
	case "check-config":
		c := newCommand("check-config", "shelfgate check-config [--config FILE | FILE]",
			"Checks FILE as run would, without touching the disk or a pin, and lists every problem with its line and field.", stdout, stderr)
		path := c.fs.String("config", defaultConfig, "configuration file (YAML)")
		if done, err := c.parse(args[1:]); done {
			return err
		}
		switch {
		case c.fs.NArg() == 1 && !flagSet(c.fs, "config"):
			*path = c.fs.Arg(0)
		case c.fs.NArg() != 0:
			return fmt.Errorf("%w: %s", errUsage, c.synopsis)
		}
		cfg, err := loadConfigWith(*path, h)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: OK (gateway %s, site %s, %d sensors, simulation %v, brokers %v)\n",
			*path, cfg.Gateway.ID, cfg.Gateway.Site, len(cfg.Sensors), cfg.Simulation != nil, cfg.Broker.URLs)
		return nil
	case "doctor":
		c := newCommand("doctor", "shelfgate doctor [--config FILE]",
			"Lists the drivers, buses and pins periph finds on this host and runs every configured sensor for a few seconds; fails naming each sensor that cannot be opened or produces nothing.", stdout, stderr)
		path := c.fs.String("config", defaultConfig, "configuration file (YAML)")
		if done, err := c.parse(args[1:]); done {
			return err
		}
		if c.fs.NArg() != 0 {
			return fmt.Errorf("%w: %s", errUsage, c.synopsis)
		}
		cfg, err := loadConfigWith(*path, h)
		if err != nil {
			return err
		}
		return doctor(context.Background(), cfg, stdout)
	case "run":
		c := newCommand("run", "shelfgate run [--config FILE] [--duration D] [--summary] [--adopt-outbox]",
			"Runs the gateway until SIGINT or SIGTERM; SIGHUP reloads FILE.", stdout, stderr)
		path := c.fs.String("config", defaultConfig, "configuration file (YAML)")
		duration := c.fs.Duration("duration", 0, "stop by itself after this long (0 = run until SIGINT/SIGTERM)")
		summary := c.fs.Bool("summary", false, "print a SUMMARY line on exit")
		adopt := c.fs.Bool("adopt-outbox", false, "take over an outbox recorded for another gateway.id (its backlog is then delivered under this gateway's id)")
		if done, err := c.parse(args[1:]); done {
			return err
		}
		if *path == "" || c.fs.NArg() != 0 {
			return fmt.Errorf("%w: %s", errUsage, c.synopsis)
		}
		cfg, err := loadConfigWith(*path, h)
		if err != nil {
			return err
		}
		ctx, flushCtx, hup, stop := signals(stderr, sig)
		defer stop()
		if *duration > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, *duration)
			defer cancel()
		}
		return run(ctx, flushCtx, cfg, runOptions{stdout: stdout, stderr: stderr, summary: *summary, adopt: *adopt, reload: hup, host: h})
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	return fmt.Errorf("%w: unknown command %q\n%s", errUsage, args[0], usage)
}

// flagSet reports whether the flag name was given on the command line.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// signals returns a context cancelled by the first SIGINT/SIGTERM, a flush
// context cancelled by the second (a third exits at once) and a channel
// that receives SIGHUP. The outbox is durable, so a forced exit loses
// nothing that was accepted. sig replaces the process's signals in tests.
func signals(stderr io.Writer, sig <-chan os.Signal) (ctx, flushCtx context.Context, hup <-chan struct{}, stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	flushCtx, cancelFlush := context.WithCancel(context.Background())
	hupCh := make(chan struct{}, 1)
	ch := sig
	stopNotify := func() {}
	if ch == nil {
		own := make(chan os.Signal, 4)
		signal.Notify(own, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
		ch, stopNotify = own, func() { signal.Stop(own) }
	}
	done := make(chan struct{})
	go func() {
		n := 0
		for {
			var s os.Signal
			select {
			case <-done:
				return
			case s = <-ch:
			}
			if s == syscall.SIGHUP {
				select {
				case hupCh <- struct{}{}:
				default: // a reload is already pending
				}
				continue
			}
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
	return ctx, flushCtx, hupCh, func() { stopNotify(); close(done); cancel(); cancelFlush() }
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
