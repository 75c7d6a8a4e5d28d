package modelcli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shelfgate/shelfgate/model"
)

// TestMain doubles as the helper process of TestSignalEndsCommand: with
// SHELFGATE_MODELCLI_HELPER set it runs Main as shelfctl does, under a
// context cancelled by SIGINT and SIGTERM.
func TestMain(m *testing.M) {
	if os.Getenv("SHELFGATE_MODELCLI_HELPER") == "1" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		err := Main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
		stop()
		if err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// smallModel trains and quantizes a 20-feature, 5-class model and returns
// its path and a CSV of labelled rows (header first).
func smallModel(t *testing.T) (path string, rows []string) {
	t.Helper()
	dir := t.TempDir()
	p := func(n string) string { return filepath.Join(dir, n) }
	must(t, "", "synth", "-samples", "600", "-features", "20", "-classes", "5", "-seed", "3", "-o", p("train.csv"))
	must(t, "", "train", "-q", "-hidden", "8", "-epochs", "3", "-o", p("f.json"), p("train.csv"))
	must(t, "", "quantize", "-f", p("f.json"), "-golden", "4", "-o", p("m.sgm"), p("train.csv"))
	data, err := os.ReadFile(p("train.csv"))
	if err != nil {
		t.Fatal(err)
	}
	return p("m.sgm"), strings.Split(strings.TrimSpace(string(data)), "\n")[:6]
}

func TestRunRejectsMalformedRows(t *testing.T) {
	path, rows := smallModel(t)
	header, row := rows[0], rows[1]
	fields := strings.Split(row, ",")
	if len(fields) != 21 {
		t.Fatalf("row has %d fields", len(fields))
	}
	features := strings.Join(fields[:20], ",")
	// Accepted: header, a label column that is one of the model's labels,
	// bare features, JSON.
	out := must(t, header+"\n"+row+"\n"+features+"\n["+features+"]\n", "run", path)
	if n := strings.Count(out, "\n"); n != 3 {
		t.Fatalf("3 rows gave %d results:\n%s", n, out)
	}
	cases := []struct {
		name, stdin string
		want        []string
	}{
		{"F+1 numbers", header + "\n" + features + ",0.5\n", []string{"line 2", "21 fields", `"0.5"`}},
		{"index column", "0," + features + "\n", []string{"line 1", "21 fields", "index"}},
		{"index and label", "0," + row + "\n", []string{"line 1", "22 fields"}},
		{"semicolons", strings.ReplaceAll(features, ",", ";") + "\n", []string{"line 1", "1 fields", `";"`}},
		{"semicolon header", strings.ReplaceAll(header, ",", ";") + "\n" + strings.ReplaceAll(features, ",", ";") + "\n", []string{"line 1", `";"`}},
		{"short row", row + "\n" + strings.Join(fields[:19], ",") + "\n", []string{"line 2", "19 fields"}},
		{"JSON F+1", "[" + features + ",1]\n", []string{"line 1", "21 values"}},
		{"header only", header + "\n", []string{"no feature rows"}},
		{"second header", header + "\n" + row + "\n" + header + "\n", []string{"line 3", `"label"`}},
		{"not a number", strings.Replace(features, fields[3], "x", 1) + "\n", []string{"line 1 field 4", `"x"`}},
	}
	for _, c := range cases {
		out, err := run(t, c.stdin, "run", path)
		if !errors.Is(err, model.ErrInput) {
			t.Errorf("%s: %v (output %q), want ErrInput", c.name, err, out)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %q does not name %s", c.name, err, w)
			}
		}
	}
}

func TestRunKernelChoiceIsChecked(t *testing.T) {
	path, rows := smallModel(t)
	if _, err := run(t, rows[1], "run", "-kernel", "avx9000", path); !errors.Is(err, ErrUsage) || !errors.Is(err, model.ErrKernel) {
		t.Fatalf("-kernel avx9000: %v", err)
	}
	t.Setenv("SHELFGATE_KERNEL", "avx9000")
	for _, args := range [][]string{{"run", path}, {"inspect", path}, {"bench", "-time", "10ms", path}} {
		_, err := run(t, rows[1], args...)
		if !errors.Is(err, model.ErrKernel) || !strings.Contains(err.Error(), `"avx9000"`) {
			t.Errorf("%v with SHELFGATE_KERNEL=avx9000: %v", args, err)
		}
	}
	// An explicit -kernel does not consult the environment.
	if _, err := run(t, rows[1], "run", "-kernel", "generic", path); err != nil {
		t.Fatalf("-kernel generic: %v", err)
	}
}

func TestCommandsStopWhenCancelled(t *testing.T) {
	path, rows := smallModel(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	dir := t.TempDir()
	for _, args := range [][]string{
		{"inspect", path},
		{"run", path},
		{"bench", "-time", "1h", path},
		{"eval", "-m", path, "-"},
		{"synth", "-samples", "100000", "-features", "1000", "-o", filepath.Join(dir, "s.csv")},
		{"train", "-q", "-hidden", "500", "-epochs", "1000", "-o", filepath.Join(dir, "f.json"), "-"},
	} {
		err := Main(ctx, args, strings.NewReader(strings.Join(rows, "\n")), io.Discard, io.Discard)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%v: %v, want context.Canceled", args, err)
		}
	}
	// run waiting on input that never comes returns when cancelled.
	pr, pw := io.Pipe()
	defer pw.Close()
	ctx, cancel = context.WithCancel(context.Background())
	done := make(chan error, 1)
	outR, outW := io.Pipe()
	go func() { done <- Main(ctx, []string{"run", path}, pr, outW, io.Discard) }()
	go fmt.Fprintln(pw, rows[1])
	if _, err := bufio.NewReader(outR).ReadString('\n'); err != nil { // the first row's result: run is reading
		t.Fatal(err)
	}
	go io.Copy(io.Discard, outR)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "after line 1") {
		t.Fatalf("run cancelled while waiting for input: %v", err)
	}
}

// TestSignalEndsCommand runs "model run" in a child process whose stdin
// stays open, and checks that SIGTERM and SIGINT end it with an error.
func TestSignalEndsCommand(t *testing.T) {
	path, rows := smallModel(t)
	for _, sig := range []os.Signal{syscall.SIGTERM, os.Interrupt} {
		cmd := exec.Command(os.Args[0], "run", path)
		cmd.Env = append(os.Environ(), "SHELFGATE_MODELCLI_HELPER=1")
		stdin, _ := cmd.StdinPipe()
		stdout, _ := cmd.StdoutPipe()
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			if errors.Is(err, syscall.ENOEXEC) {
				// make test-arm64 runs this binary under qemu-user with
				// no binfmt handler, so it cannot start itself again; the
				// native run covers the signal handling.
				t.Skipf("cannot re-exec the test binary here: %v", err)
			}
			t.Fatal(err)
		}
		fmt.Fprintln(stdin, rows[1])
		if _, err := bufio.NewReader(stdout).ReadString('\n'); err != nil {
			t.Fatalf("%v: no result for the first row: %v (%s)", sig, err, stderr.String())
		}
		cmd.Process.Signal(sig)
		waited := make(chan error, 1)
		go func() { waited <- cmd.Wait() }()
		select {
		case err := <-waited:
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(stderr.String(), "context canceled") {
				t.Fatalf("%v: exit %v, stderr %q; want status 1 naming the cancellation", sig, err, stderr.String())
			}
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			t.Fatalf("%v: the command still runs 30 s after the signal", sig)
		}
		stdin.Close()
	}
}
