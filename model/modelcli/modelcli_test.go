package modelcli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shelfgate/shelfgate/model"
)

func run(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := Main(context.Background(), args, strings.NewReader(stdin), &out, &errb)
	return out.String(), err
}

func must(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	out, err := run(t, stdin, args...)
	if err != nil {
		t.Fatalf("%v: %v", args, err)
	}
	return out
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		nil,
		{"frobnicate"},
		{"inspect"},
		{"inspect", "--bogus", "x"},
		{"train", "-hidden", "a,b", "x.csv"},
		{"quantize", "-rounding", "triple", "x.csv"},
		{"synth", "-classes", "1"},
	} {
		if _, err := run(t, "", args...); !errors.Is(err, ErrUsage) {
			t.Errorf("%q: %v, want ErrUsage", args, err)
		}
	}
	if _, err := run(t, "", "inspect", "/no/such/file.sgm"); err == nil || errors.Is(err, ErrUsage) {
		t.Errorf("missing file: %v", err)
	}
}

func TestWindowsCommand(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.csv")
	must(t, "", "windows", "-shelves", "1", "-bins", "1", "-duration", "1h", "-o", path)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) < 20 || !strings.HasPrefix(lines[0], "s0,s1,") || !strings.Contains(string(data), ",idle\n") {
		t.Fatalf("windows CSV: %d lines, header %q", len(lines), lines[0])
	}
	if _, err := run(t, "", "windows", "-shelves", "0"); !errors.Is(err, ErrUsage) {
		t.Fatalf("bad config: %v", err)
	}
}

func TestEndToEnd(t *testing.T) {
	dir := t.TempDir()
	p := func(n string) string { return filepath.Join(dir, n) }
	must(t, "", "synth", "-samples", "1500", "-features", "20", "-classes", "5", "-seed", "3", "-o", p("train.csv"))
	must(t, "", "synth", "-samples", "400", "-features", "20", "-classes", "5", "-seed", "3", "-sample-seed", "9", "-o", p("all.csv"))
	out := must(t, "", "train", "-q", "-hidden", "24", "-epochs", "25", "-o", p("f.json"), p("train.csv"))
	if !strings.Contains(out, "trained [20 24 5]") {
		t.Fatalf("train: %s", out)
	}
	key := strings.Repeat("ab", 32)
	os.WriteFile(p("key"), []byte(key+"\n"), 0o600)
	out = must(t, "", "quantize", "-f", p("f.json"), "-observer", "percentile", "-name", "demo", "-version", "4", "-sign-key", p("key"), "-eval", p("all.csv"), "-o", p("m.sgm"), p("train.csv"))
	if !strings.Contains(out, "signed true") || !strings.Contains(out, "top-1 agreement") {
		t.Fatalf("quantize: %s", out)
	}

	out = must(t, "", "inspect", p("m.sgm"))
	for _, want := range []string{"name      demo", "version   4", "fully_connected", "softmax", "golden    8 vectors"} {
		if !strings.Contains(out, want) {
			t.Errorf("inspect output lacks %q:\n%s", want, out)
		}
	}
	var dump jsonModel
	if err := json.Unmarshal([]byte(must(t, "", "inspect", "--json", p("m.sgm"))), &dump); err != nil {
		t.Fatal(err)
	}
	if len(dump.Layers) != 3 || len(dump.Layers[0].Weights) != 20*24 || len(dump.Layers[1].Multipliers) != 5 || dump.Layers[2].InputMult == 0 || !dump.Signed {
		t.Fatalf("inspect --json lacks parameters: %+v", dump.Layers[2])
	}
	if _, err := run(t, "", "inspect", "-trusted-key", strings.Repeat("00", 32), p("m.sgm")); err == nil {
		t.Fatal("untrusted key accepted")
	}

	out = must(t, "", "eval", "-m", p("m.sgm"), "-f", p("f.json"), p("all.csv"))
	for _, want := range []string{"int8 accuracy", "top-1 agreement", "true\\pred"} {
		if !strings.Contains(out, want) {
			t.Errorf("eval output lacks %q:\n%s", want, out)
		}
	}

	csvRows, _ := os.ReadFile(p("all.csv"))
	lines := strings.Split(string(csvRows), "\n")
	out = must(t, strings.Join(lines[:4], "\n"), "run", p("m.sgm"))
	res := strings.Split(strings.TrimSpace(out), "\n")
	if len(res) != 3 {
		t.Fatalf("run printed %d rows for a header and 3 rows:\n%s", len(res), out)
	}
	var r runResult
	if err := json.Unmarshal([]byte(res[0]), &r); err != nil || len(r.Logits) != 5 || len(r.ProbsQ) != 5 || len(r.Probs) != 5 || r.Label == "" {
		t.Fatalf("run row: %s (%v)", res[0], err)
	}
	// The same row as a JSON line and as quantized input give the same answer.
	fields := strings.Split(lines[1], ",")
	jl := "[" + strings.Join(fields[:20], ",") + "]"
	out2 := must(t, jl, "run", p("m.sgm"))
	if strings.TrimSpace(out2) != res[0] {
		t.Fatalf("JSON line gave %s, CSV gave %s", out2, res[0])
	}
	if _, err := run(t, "[1,2]", "run", p("m.sgm")); !errors.Is(err, model.ErrInput) || errors.Is(err, ErrUsage) {
		t.Fatalf("short row: %v", err)
	}
	q := strings.TrimSuffix(strings.Repeat("-128,", 20), ",")
	if out := must(t, q+"\n"+strings.ReplaceAll(q, "-128", "127"), "run", "--quantized", p("m.sgm")); strings.Count(out, "\n") != 2 {
		t.Fatalf("quantized run: %s", out)
	}
	if _, err := run(t, strings.Repeat("300,", 19)+"300", "run", "--quantized", p("m.sgm")); !errors.Is(err, model.ErrInput) {
		t.Fatal("out-of-range quantized value accepted")
	}
	if out := must(t, "", "bench", "-time", "50ms", p("m.sgm")); !strings.Contains(out, "inferences/s") {
		t.Fatalf("bench: %s", out)
	}
}
