package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shelfgate/shelfgate/model/features"
)

func TestBuildsFromScenarioFiles(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "w.sgds")
	scenarios := []string{"../../configs/scenarios/corner-shop.yaml", "../../configs/scenarios/cold-room.yaml"}
	var stdout, stderr bytes.Buffer
	args := append([]string{"-o", out, "-duration", "2h", "-seed", "5"}, scenarios...)
	if code := Main(args, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d, err := features.ReadDataset(f)
	if err != nil {
		t.Fatal(err)
	}
	if d.Meta["name"] != "corner-shop,cold-room" || !strings.HasPrefix(d.Meta["scenario.cold-room"], "seed=5 ") || d.Meta["window"] != features.DefaultWindow(10).String() {
		t.Fatalf("metadata %v", d.Meta)
	}
	if d.Counts()["idle"] == 0 || d.Counts()["pick1"] == 0 {
		t.Fatalf("counts %v", d.Counts())
	}
	first, _ := os.ReadFile(out)
	csvOut := filepath.Join(dir, "w.csv")
	if code := Main(append([]string{"-o", csvOut, "-duration", "2h", "-seed", "5"}, scenarios...), &stdout, &stderr); code != 0 {
		t.Fatalf("csv: exit %d: %s", code, stderr.String())
	}
	if b, _ := os.ReadFile(csvOut); !bytes.HasPrefix(b, []byte("s0,s1,")) {
		t.Fatalf("CSV starts %q", b[:min(len(b), 20)])
	}
	if code := Main(append([]string{"-o", out, "-duration", "2h", "-seed", "5"}, scenarios...), &stdout, &stderr); code != 0 {
		t.Fatal(stderr.String())
	}
	if again, _ := os.ReadFile(out); !bytes.Equal(first, again) {
		t.Fatal("same flags, different file")
	}
}

func TestUsageErrors(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("warehouse:\n  shelves: 0\n"), 0o644)
	unknown := filepath.Join(t.TempDir(), "unknown.yaml")
	os.WriteFile(unknown, []byte("warehouse:\n  shelfs: 2\n"), 0o644)
	out := filepath.Join(t.TempDir(), "x.sgds")
	for _, args := range [][]string{
		{},
		{"-o", out, "-bogus"},
		{"-o", out, bad},
		{"-o", out, unknown},
		{"-o", out, "/no/such/file.yaml"},
		{"-o", out, "-samples", "3"},
	} {
		var stdout, stderr bytes.Buffer
		if code := Main(args, &stdout, &stderr); code != 2 {
			t.Errorf("%q: exit %d, want 2 (%s)", args, code, stderr.String())
		}
	}
	var stdout, stderr bytes.Buffer
	if code := Main([]string{"-o", out, "-duration", "30m", "../../configs/scenarios/corner-shop.yaml", "../../configs/scenarios/busy-dc.yaml"}, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "merge") {
		t.Errorf("10 Hz and 80 Hz windows merged: exit %d %s", code, stderr.String())
	}
}

func TestPlateWindows(t *testing.T) {
	out := filepath.Join(t.TempDir(), "p.sgds")
	var stdout, stderr bytes.Buffer
	if code := Main([]string{"-plates", "-duration", "30m", "-o", out}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d, err := features.ReadDataset(f)
	if err != nil {
		t.Fatal(err)
	}
	if w, err := d.Window(); err != nil || w.Cells != 4 || d.Features() != 120 || d.Labels[len(d.Labels)-1] != "none" || d.Counts()["facing0"] == 0 {
		t.Fatalf("window %v (%v), %d features, labels %v", w, err, d.Features(), d.Labels)
	}
}
