package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shelfgate/shelfgate/sensors/loadcell"
)

func TestCheckConfig(t *testing.T) {
	for _, tc := range []struct {
		file     string
		wantCode int
		want     string // the one line naming the problem
	}{
		{"../../configs/demo.yaml", 0, "../../configs/demo.yaml: OK"},
		{"testdata/missing-field.yaml", 2, "testdata/missing-field.yaml:1: gateway.id: is empty"},
		{"testdata/wrong-type.yaml", 2, "testdata/wrong-type.yaml:9: simulation.warehouse.speed: \"fast\" is text, want a number"},
		{"testdata/unknown-key.yaml", 2, "testdata/unknown-key.yaml:4: gateway.zone: unknown key \"zone\""},
		{"testdata/bad-broker-url.yaml", 2, "testdata/bad-broker-url.yaml:5: broker.urls[0]: \"mqtt://broker:99999\" has port \"99999\" out of range 1-65535"},
		{"testdata/no-such-file.yaml", 2, "no such file or directory"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := Main([]string{"check-config", tc.file}, &out, &errOut)
			if code != tc.wantCode {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.wantCode, out.String(), errOut.String())
			}
			got := out.String() + errOut.String()
			if !strings.Contains(got, tc.want) {
				t.Fatalf("output:\n%s\nwant a line containing:\n%s", got, tc.want)
			}
			if code != 0 {
				// Exactly one problem line after the header.
				lines := strings.Split(strings.TrimSpace(errOut.String()), "\n")
				if len(lines) > 2 {
					t.Errorf("want one problem, got:\n%s", errOut.String())
				}
			}
		})
	}
}

func TestUsageErrorsExit2(t *testing.T) {
	for _, args := range [][]string{nil, {"bogus"}, {"run", "--config"}, {"run", "--bogus"}, {"doctor", "extra"}, {"check-config", "a", "b"}} {
		var out, errOut bytes.Buffer
		if code := Main(args, &out, &errOut); code != 2 {
			t.Errorf("%q: exit %d, want 2 (%s)", args, code, errOut.String())
		}
	}
}

// --help and --version answer on stdout with exit 0, on the program and
// on every command.
func TestHelpAndVersionEverywhere(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}, {"--version"}, {"version"},
		{"run", "--help"}, {"run", "-h"}, {"run", "--version"},
		{"check-config", "--help"}, {"check-config", "--version"},
		{"doctor", "--help"}, {"doctor", "--version"}} {
		var out, errOut bytes.Buffer
		code := Main(args, &out, &errOut)
		if code != 0 || out.Len() == 0 || errOut.Len() != 0 {
			t.Errorf("%q: exit %d\nstdout: %s\nstderr: %s", args, code, out.String(), errOut.String())
		}
		wantStart := "usage"
		if strings.HasSuffix(args[len(args)-1], "version") {
			wantStart = "shelfgate "
		}
		if !strings.HasPrefix(out.String(), wantStart) {
			t.Errorf("%q: stdout %q", args, out.String())
		}
		if len(args) == 2 && wantStart == "usage" && !strings.Contains(out.String(), "/etc/shelfgate/shelfgate.yaml") {
			t.Errorf("%q: usage does not show the default config:\n%s", args, out.String())
		}
	}
}

// check-config takes --config like run, and the file positionally too;
// without either it checks the default path.
func TestCheckConfigFlag(t *testing.T) {
	for _, args := range [][]string{{"check-config", "--config", "../../configs/demo.yaml"}, {"check-config", "../../configs/demo.yaml"}} {
		var out, errOut bytes.Buffer
		if code := Main(args, &out, &errOut); code != 0 || !strings.Contains(out.String(), "demo.yaml: OK") {
			t.Errorf("%q: exit %d %s%s", args, code, out.String(), errOut.String())
		}
	}
	var out, errOut bytes.Buffer
	if code := Main([]string{"check-config"}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "/etc/shelfgate/shelfgate.yaml") {
		t.Errorf("default path: exit %d %s", code, errOut.String())
	}
	if code := Main([]string{"check-config", "--config", "a.yaml", "b.yaml"}, &out, &errOut); code != 2 {
		t.Errorf("both: exit %d", code)
	}
}

func TestVersion(t *testing.T) {
	var out bytes.Buffer
	if code := Main([]string{"version"}, &out, &out); code != 0 || !strings.HasPrefix(out.String(), "shelfgate ") {
		t.Fatalf("version: %d %q", code, out.String())
	}
}

func TestDoctor(t *testing.T) {
	if testing.Short() {
		t.Skip("doctor runs each sensor for a few seconds")
	}
	// The demo's simulated sensors all produce through their drivers.
	var out, errOut bytes.Buffer
	if code := Main([]string{"doctor", "--config", "../../configs/demo.yaml"}, &out, &errOut); code != 0 {
		t.Fatalf("doctor on the demo: exit %d\n%s%s", code, out.String(), errOut.String())
	}
	for _, want := range []string{"periph drivers loaded:", "OK   simulation: source cell-shelf-01/bin-01:", "OK   simulation: source cell-shelf-02/bin-04:", "OK   simulation: source picking-1:", "OK   simulation: source dock-1:", "OK   simulation: source coldroom-1:",
		"loadcell/shelf-01/bin-01: healthy"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("doctor output lacks %q:\n%s", want, out.String())
		}
	}
	// Real hardware that this host does not have fails, naming the pin.
	out.Reset()
	errOut.Reset()
	if code := Main([]string{"doctor", "--config", "testdata/hardware.yaml"}, &out, &errOut); code != 1 {
		t.Fatalf("doctor on missing hardware: exit %d, want 1\n%s%s", code, out.String(), errOut.String())
	}
	if !strings.Contains(out.String(), "FAIL sensor bin1 (hx711): pin GPIO5 does not exist on this host") {
		t.Errorf("doctor output:\n%s", out.String())
	}
	// A scanner whose device cannot be opened fails, named, with the cause.
	out.Reset()
	errOut.Reset()
	cfg := filepath.Join(t.TempDir(), "scanner.yaml")
	os.WriteFile(cfg, []byte("gateway: {id: gw-1, site: s1}\noutbox: {path: o.db}\nsensors:\n  - {name: picking-1, type: scanner, port: /dev/ttyACM-missing}\n"), 0o644)
	if code := Main([]string{"doctor", "--config", cfg}, &out, &errOut); code != 1 {
		t.Fatalf("doctor on a missing scanner: exit %d\n%s%s", code, out.String(), errOut.String())
	}
	if !strings.Contains(out.String(), "FAIL sensor picking-1 (scanner): source picking-1: 0 readings, 0 events in 3s: device /dev/ttyACM-missing cannot be opened: open /dev/ttyACM-missing: ") {
		t.Errorf("doctor output:\n%s", out.String())
	}
}

func TestCalibrationFromFile(t *testing.T) {
	dir := t.TempDir()
	cal := dir + "/shelf.cal"
	if err := os.WriteFile(cal, []byte("shelfgate-calibration v1\nbin=shelf-01/bin-01 offset=-81234 counts_per_gram=412.55 measured=2026-11-29\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cells := []loadcell.Channel{
		{Stream: "loadcell/shelf-01/bin-01", Bin: "shelf-01/bin-01"},
		{Stream: "loadcell/shelf-01/bin-02", Bin: "shelf-01/bin-02", Offset: 5, CountsPerGram: 100}, // inline wins
	}
	got, err := calibrateFromFile(cal, cells)
	if err != nil {
		t.Fatal(err)
	}
	if got[0].Offset != -81234 || got[0].CountsPerGram != 412.55 || got[1].Offset != 5 || got[1].CountsPerGram != 100 {
		t.Fatalf("channels %+v", got)
	}
	cells = append(cells, loadcell.Channel{Stream: "loadcell/shelf-02/bin-01", Bin: "shelf-02/bin-01"})
	if _, err := calibrateFromFile(cal, cells); err == nil || !strings.Contains(err.Error(), "shelf-02/bin-01") {
		t.Fatalf("missing bin: %v", err)
	}
}
