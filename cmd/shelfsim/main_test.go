package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

func TestRunScoresDetector(t *testing.T) {
	for _, sc := range []string{"corner-shop", "cold-room"} {
		t.Run(sc, func(t *testing.T) {
			labels := filepath.Join(t.TempDir(), "labels.jsonl")
			var out, errOut bytes.Buffer
			code := Main([]string{"run", "--scenario", "../../configs/scenarios/" + sc + ".yaml", "--hours", "1", "--labels", labels}, &out, &errOut)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut.String())
			}
			m := regexp.MustCompile(`visits=(\d+) found=(\d+) .* recall=([0-9.]+) precision=([0-9.]+)`).FindStringSubmatch(out.String())
			if m == nil {
				t.Fatalf("no detector line:\n%s", out.String())
			}
			visits, _ := strconv.Atoi(m[1])
			recall, _ := strconv.ParseFloat(m[3], 64)
			precision, _ := strconv.ParseFloat(m[4], 64)
			if visits < 10 || recall < 0.9 || precision < 0.9 {
				t.Errorf("visits %d recall %v precision %v:\n%s", visits, recall, precision, out.String())
			}
			data, err := os.ReadFile(labels)
			if err != nil {
				t.Fatal(err)
			}
			if n := strings.Count(string(data), "\n"); n != visits {
				t.Errorf("labels file has %d lines, want %d", n, visits)
			}
		})
	}
}

func TestBadScenario(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"unknown-key.yaml": "warehouse:\n  seed: 1\n  colour: red\n",
		"invalid.yaml":     "warehouse:\n  shelves: 0\n",
	} {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(body), 0o644)
		var out, errOut bytes.Buffer
		if code := Main([]string{"run", "--scenario", p}, &out, &errOut); code != 2 {
			t.Errorf("%s: exit %d, want 2 (%s)", name, code, errOut.String())
		}
	}
}
