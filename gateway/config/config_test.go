package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const good = `
gateway:
  id: gw-1
  site: s1
broker:
  urls: ["tcp://127.0.0.1:1883"]
outbox:
  path: outbox.db
  max_bytes: 64MiB
sensors:
  - name: a
    bin: shelf-01/bin-01
    unit_grams: 10
    pins: {clk: GPIO5, data: GPIO6}
    calibration: {offset: 100, counts_per_gram: 200}
`

func TestParseGood(t *testing.T) {
	c, err := Parse(strings.NewReader(good))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Outbox.MaxBytes != 64<<20 || c.Broker.KeepAlive != DefaultKeepAlive || c.Sensors[0].Type != "hx711" || c.Sensors[0].Name != "a" {
		t.Errorf("parsed %+v", c)
	}
}

// TestErrors checks that each kind of mistake yields one clear message that
// names the field path and the line.
func TestErrors(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       string // the whole message
	}{
		{"missing field", strings.Replace(good, "  id: gw-1\n", "", 1),
			"2: gateway.id: is empty"},
		{"wrong type", strings.Replace(good, "  max_bytes: 64MiB\n", "  max_bytes: 64MiB\n  commit_rows: lots\n", 1),
			`10: outbox.commit_rows: "lots" is text, want a whole number`},
		{"unknown key", strings.Replace(good, "  site: s1\n", "  site: s1\n  color: blue\n", 1),
			`5: gateway.color: unknown key "color"`},
		{"bad broker url", strings.Replace(good, "tcp://127.0.0.1:1883", "http://broker:1883", 1),
			`6: broker.urls[0]: "http://broker:1883" has scheme "http"; use tcp://, ssl:// or mqtts:// (or "embedded")`},
		{"bad port", strings.Replace(good, "tcp://127.0.0.1:1883", "tcp://broker:99999", 1),
			`6: broker.urls[0]: "tcp://broker:99999" has port "99999" out of range 1-65535`},
		{"duplicate sensor", good + "  - {name: a, type: scanner, port: /dev/ttyACM0}\n",
			`16: sensors[1].name: "a" is already used by sensors[0]`},
		{"bad size", strings.Replace(good, "64MiB", "lots", 1),
			`9: outbox.max_bytes: "lots" is not a size (e.g. 512MiB, 2GiB)`},
		{"reserved gateway id", strings.Replace(good, "id: gw-1", "id: all", 1),
			`3: gateway.id: "all" is reserved: shelfgate/v1/<site>/all/... addresses every gateway of the site (model offers, desired config)`},
		{"bad gateway id", strings.Replace(good, "id: gw-1", "id: gw/1", 1),
			`3: gateway.id: "gw/1" has '/' at byte 2; use letters, digits, '-', '_' or '.'`},
		{"not yaml", "gateway: [", "1: did not find expected node content"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse(strings.NewReader(tc.yaml))
			if err == nil {
				err = c.Validate()
			}
			var es Errors
			if !errors.As(err, &es) {
				t.Fatalf("error = %v (%T), want Errors", err, err)
			}
			if len(es) != 1 || es[0].Error() != tc.want {
				t.Fatalf("errors:\n%v\nwant exactly:\n%s", err, tc.want)
			}
		})
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	y := strings.NewReplacer("id: gw-1", "id: \"\"", "64MiB", "1KiB").Replace(good) + "log: {level: loud}\n"
	c, err := Parse(strings.NewReader(y))
	if err != nil {
		t.Fatal(err)
	}
	err = c.Validate()
	var es Errors
	if !errors.As(err, &es) || len(es) != 3 {
		t.Fatalf("got %v, want 3 problems", err)
	}
}

func TestEnvOverrides(t *testing.T) {
	c, err := Parse(strings.NewReader(good))
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"SHELFGATE_BROKER_URLS": "tcp://a:1883, ssl://b:8883", "SHELFGATE_BROKER_USERNAME": "u", "SHELFGATE_BROKER_PASSWORD": "p"}
	if err := c.ApplyEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok }); err != nil {
		t.Fatal(err)
	}
	if strings.Join(c.Broker.URLs, " ") != "tcp://a:1883 ssl://b:8883" || c.Broker.Username != "u" || c.Broker.Password != "p" {
		t.Errorf("broker = %+v", c.Broker)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestPasswordFile(t *testing.T) {
	pw := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(pw, []byte("s3cret\n"), 0o600)
	c, _ := Parse(strings.NewReader(good + "\nlog: {level: debug}\n"))
	c.Broker.PasswordFile = pw
	if err := c.ApplyEnv(func(string) (string, bool) { return "", false }); err != nil {
		t.Fatal(err)
	}
	if c.Broker.Password != "s3cret" {
		t.Errorf("password = %q", c.Broker.Password)
	}
}

func TestShippedConfigs(t *testing.T) {
	for _, f := range []string{"../../configs/demo.yaml"} {
		c, err := Load(f)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if !c.UsesEmbeddedBroker() || c.Simulation == nil {
			t.Errorf("%s: demo must use the embedded broker and the simulation", f)
		}
	}
	// The example names files that exist only on a real gateway; everything
	// else in it must be valid.
	c, err := Parse(mustOpen(t, "../../configs/shelfgate.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	err = c.Validate()
	var es Errors
	errors.As(err, &es)
	for _, e := range es {
		if !strings.HasPrefix(e.Path, "broker.tls.") && e.Path != "outbox.path" && e.Path != "calibration_file" {
			t.Errorf("example config: %v", e)
		}
	}
}

func mustOpen(t *testing.T, path string) *os.File {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func TestByteSize(t *testing.T) {
	for in, want := range map[string]ByteSize{"2GiB": 2 << 30, "500MB": 500e6, "1024": 1024, "1.5KiB": 1536} {
		got, err := ParseByteSize(in)
		if err != nil || got != want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "GiB", "-1MiB", "1XB"} {
		if _, err := ParseByteSize(bad); err == nil {
			t.Errorf("ParseByteSize(%q) succeeded", bad)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(good))
	f.Add([]byte("gateway: {id: x}\nsensors: [{pins: {clk: GPIO1}}]"))
	f.Add([]byte("outbox: {max_bytes: -1MiB, commit_rows: x}\nbroker: {urls: [tcp://a:1], tls: {ca_file: x}}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		// As Load does: what decodes is validated beside what does not.
		c, decodeErrs, err := parse(strings.NewReader(string(data)))
		if err != nil {
			return
		}
		c.decodeErrs = decodeErrs
		_ = c.Validate() // must not panic
	})
}

// hx711Conf stands for a sensor kind's typed configuration.
type hx711Conf struct {
	Bin       string  `yaml:"bin"`
	UnitGrams float64 `yaml:"unit_grams"`
	Pins      struct {
		Clk  string `yaml:"clk"`
		Data string `yaml:"data"`
	} `yaml:"pins"`
	Calibration *struct {
		Offset        int32   `yaml:"offset"`
		CountsPerGram float64 `yaml:"counts_per_gram"`
	} `yaml:"calibration"`
}

// DecodeSensor decodes strictly and names file, line and field path of
// unknown keys (nested too) and wrong types; Load runs the caller's checks
// with the built-in ones and reports them together.
func TestDecodeSensorAndChecks(t *testing.T) {
	dir := t.TempDir()
	write := func(y string) string {
		p := filepath.Join(dir, "c.yaml")
		if err := os.WriteFile(p, []byte(y), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	decodeAll := func(c *Config) Errors {
		var es Errors
		for i := range c.Sensors {
			var v hx711Conf
			if err := c.DecodeSensor(i, &v); err != nil {
				es = append(es, err.(Errors)...)
			} else if v.UnitGrams <= 0 {
				es = append(es, c.Errorf(fmt.Sprintf("sensors[%d].unit_grams", i), "%v must be above 0", v.UnitGrams))
			}
		}
		return es
	}
	for _, tc := range []struct{ name, yaml, want string }{
		{"good", good, ""},
		{"wrong type", strings.Replace(good, "unit_grams: 10", "unit_grams: heavy", 1),
			`c.yaml:13: sensors[0].unit_grams: "heavy" is text, want a number`},
		{"unknown key", strings.Replace(good, "unit_grams: 10", "unit_gram: 10", 1),
			`c.yaml:13: sensors[0].unit_gram: unknown key "unit_gram"`},
		{"unknown nested key", strings.Replace(good, "clk: GPIO5", "clock: GPIO5", 1),
			`c.yaml:14: sensors[0].pins.clock: unknown key "clock"`},
		{"check and built-in together", strings.Replace(strings.Replace(good, "unit_grams: 10", "unit_grams: -1", 1), "id: gw-1", "id: \"\"", 1),
			"c.yaml:3: gateway.id: is empty\nc.yaml:13: sensors[0].unit_grams: -1 must be above 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(write(tc.yaml), decodeAll)
			got := ""
			if err != nil {
				got = strings.ReplaceAll(err.Error(), dir+"/", "")
			}
			if got != tc.want {
				t.Fatalf("got\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}

func TestDecodeSimulation(t *testing.T) {
	type wh struct {
		Seed  int64   `yaml:"seed"`
		Speed float64 `yaml:"speed"`
	}
	type sim struct {
		Warehouse wh   `yaml:"warehouse"`
		Scanner   bool `yaml:"scanner"`
	}
	base := "gateway: {id: g, site: s}\noutbox: {path: o.db}\n"
	c, err := Parse(strings.NewReader(base + "simulation:\n  warehouse: {seed: 7}\n  scanner: true\n"))
	if err != nil {
		t.Fatal(err)
	}
	v := sim{Warehouse: wh{Speed: 1}} // defaults survive
	if err := c.DecodeSimulation(&v); err != nil || v.Warehouse.Seed != 7 || v.Warehouse.Speed != 1 || !v.Scanner {
		t.Fatalf("decoded %+v, %v", v, err)
	}
	c, _ = Parse(strings.NewReader(base + "simulation:\n  warehouse: {seed: 7, speed: fast}\n  radar: true\n"))
	err = c.DecodeSimulation(&sim{})
	if err == nil || err.Error() != "5: simulation.radar: unknown key \"radar\"\n4: simulation.warehouse.speed: \"fast\" is text, want a number" {
		t.Fatalf("err = %v", err)
	}
	// Lists of structs are checked too.
	type whSKUs struct {
		SKUs []struct {
			Code string `yaml:"code"`
		} `yaml:"skus"`
	}
	c, _ = Parse(strings.NewReader(base + "simulation:\n  warehouse:\n    skus:\n      - {code: \"1\", weight: 2}\n"))
	err = c.DecodeSimulation(&struct {
		Warehouse whSKUs `yaml:"warehouse"`
	}{})
	if err == nil || err.Error() != `6: simulation.warehouse.skus[0].weight: unknown key "weight"` {
		t.Fatalf("err = %v", err)
	}
	// "simulation:" with nothing after it is no simulation.
	c, _ = Parse(strings.NewReader(base + "simulation:\n"))
	if c.Simulation != nil {
		t.Fatal("empty simulation section kept")
	}
	if Default().Simulation == nil {
		t.Fatal("Default has no simulation")
	}
}

// Load reports every problem at once: values of the wrong type, bad sizes
// and an unreadable password file beside the semantic problems, each at
// its own line and field; a field that failed to decode is not reported a
// second time.
func TestLoadReportsEverything(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "c.yaml")
	yaml := `gateway:
  id: gw/1
  site: s1
broker:
  urls: ["tcp://broker:1883"]
  keepalive: soon
  password_file: ` + filepath.Join(dir, "missing") + `
  tls: {server_name: broker}
outbox:
  path: outbox.db
  max_bytes: -1MiB
  commit_rows: lots
metrics: {listen: "127.0.0.1:65536"}
simulation: {warehouse: {}}
`
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SHELFGATE_BROKER_PASSWORD", "")
	os.Unsetenv("SHELFGATE_BROKER_PASSWORD")
	_, err := Load(path)
	var es Errors
	if !errors.As(err, &es) {
		t.Fatalf("err %v", err)
	}
	var got []string
	for _, e := range es {
		got = append(got, fmt.Sprintf("%d %s", e.Line, e.Path))
		if e.File != path {
			t.Errorf("%v: file %q", e, e.File)
		}
	}
	want := []string{"6 broker.keepalive", "11 outbox.max_bytes", "12 outbox.commit_rows", "7 broker.password_file",
		"2 gateway.id", "5 broker.urls[0]", "13 metrics.listen"}
	if strings.Join(got, ", ") != strings.Join(want, ", ") {
		t.Fatalf("problems at\n%s\nwant\n%s\n%v", strings.Join(got, ", "), strings.Join(want, ", "), err)
	}
}

func TestByteSizeErrors(t *testing.T) {
	for in, want := range map[string]string{
		"-1MiB": `"-1MiB" is negative`,
		"lots":  `"lots" is not a size`,
		"NaN":   `"NaN" is not a size`,
		"9EiB":  `"9EiB" is not a size`,
		"1e30":  `"1e30" is too large`,
	} {
		if _, err := ParseByteSize(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseByteSize(%q): %v, want %s", in, err, want)
		}
	}
	if v, err := ParseByteSize("1.5KiB"); err != nil || v != 1536 {
		t.Errorf("1.5KiB: %v %v", v, err)
	}
}

func TestCheckListen(t *testing.T) {
	for addr, ok := range map[string]bool{"127.0.0.1:0": true, ":9464": true, "127.0.0.1:65535": true, "[::1]:1883": true,
		"127.0.0.1:65536": false, "127.0.0.1:99999": false, "127.0.0.1:-1": false, "127.0.0.1": false, "127.0.0.1:nope": false} {
		if err := checkListen(addr); (err == nil) != ok {
			t.Errorf("checkListen(%q) = %v", addr, err)
		}
	}
}

// An unclosed flow sequence is reported at the line of its '[', where
// yaml.v3 names the line before.
func TestUnclosedBracketLine(t *testing.T) {
	_, err := Parse(strings.NewReader("gateway: {id: a, site: b}\noutbox:\n  path: x\nbroker:\n  urls: [tcp://a:1, tcp://b:1\n  keepalive: 10s\n"))
	var es Errors
	if !errors.As(err, &es) || len(es) != 1 || es[0].Line != 5 {
		t.Fatalf("%v", err)
	}
}

func TestWithin(t *testing.T) {
	for _, tc := range []struct {
		path, field string
		want        bool
	}{
		{"sensors[0].pins.clk", "sensors[0].pins", true},
		{"sensors[0].pins", "sensors[0].pins", true},
		{"sensors[0]", "sensors[0].pins", false},
		{"sensors[10].bin", "sensors[1]", false},
		{"sensors[1][2]", "sensors[1]", true},
	} {
		if got := Within(tc.path, tc.field); got != tc.want {
			t.Errorf("Within(%q, %q) = %v", tc.path, tc.field, got)
		}
	}
}
