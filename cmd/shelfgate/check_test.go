package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/shelfgate/shelfgate/gateway/config"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/check")

// denyNoaccess is a hostCheck that denies access to paths named
// "noaccess", as the kernel would to a user outside the device's group
// (the tests may run as root, who is never denied).
func denyNoaccess() hostCheck {
	return hostCheck{access: func(path string, mode uint32) error {
		if strings.Contains(filepath.Base(path), "noaccess") {
			return unix.EACCES
		}
		return unix.Access(path, mode)
	}}
}

// TestCheckConfigGolden runs check-config on every fixture in
// testdata/check and compares its exit status and output with the
// fixture's .golden file (go test -run TestCheckConfigGolden -update
// rewrites them). The fixtures cover each kind of mistake issue 12 lists;
// several hold more than one mistake, to show that none hides another.
func TestCheckConfigGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/check/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	t.Setenv("SHELFGATE_BROKER_PASSWORD", "")
	os.Unsetenv("SHELFGATE_BROKER_PASSWORD")
	// The modes are in the messages: make them independent of the umask
	// the files were checked out with.
	for p, m := range map[string]os.FileMode{"testdata/check/noaccess-dir": 0o755, "testdata/check/noaccess-tty": 0o644} {
		if err := os.Chmod(p, m); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := mainWith([]string{"check-config", f}, &out, &errOut, denyNoaccess(), nil)
			got := fmt.Sprintf("exit %d\n%s%s", code, out.String(), errOut.String())
			golden := strings.TrimSuffix(f, ".yaml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("check-config %s:\n%s\nwant (%s):\n%s", f, got, golden, want)
			}
		})
	}
}

// A fake kind whose sensors share a clock pin inside a declared group:
// the mechanism infer's plate kind uses. Sharing is allowed only between
// members of the same group.
type groupedConfig struct {
	Group string `yaml:"group"`
	Clk   string `yaml:"clk"`
}

func (c *groupedConfig) check(sensorEnv, func(string, string, ...any)) {}
func (c *groupedConfig) open(string, buses, sensorEnv) (*sensor, error) {
	return nil, fmt.Errorf("not openable")
}
func (c *groupedConfig) claims() []claim {
	return []claim{{field: "clk", pin: c.Clk, shared: c.Group}}
}

func TestSharedPinGroups(t *testing.T) {
	kinds := append(sensorKinds(), sensorKind{typ: "grouped", new: func() sensorConfig { return &groupedConfig{} }})
	const yaml = `gateway: {id: gw-1, site: s1}
outbox: {path: outbox.db}
sensors:
  - {name: a, type: grouped, group: plate1, clk: GPIO5}
  - {name: b, type: grouped, group: plate1, clk: GPIO5}
  - {name: c, type: grouped, group: plate2, clk: GPIO5}
  - {name: d, type: grouped, clk: GPIO6}
  - {name: e, type: hx711, bin: x, unit_grams: 1, pins: {clk: GPIO6, data: GPIO7}, calibration: {offset: 0, counts_per_gram: 1}}
`
	cfg, err := config.Parse(strings.NewReader(yaml))
	if err != nil {
		t.Fatal(err)
	}
	es := claimsCheck(kinds)(cfg)
	var got []string
	for _, e := range es {
		got = append(got, e.Error())
	}
	want := []string{
		`6: sensors[2].clk: GPIO5 is already used by sensors[0].clk (a)`,
		`8: sensors[4].pins.clk: GPIO6 is already used by sensors[3].clk (d)`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
