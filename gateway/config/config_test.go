package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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
	if c.Outbox.MaxBytes != 64<<20 || c.Broker.KeepAlive != 10*time.Second || c.Sensors[0].Type != "hx711" {
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
		{"wrong type", strings.Replace(good, "unit_grams: 10", "unit_grams: heavy", 1),
			`13: sensors[0].unit_grams: "heavy" is text, want a number`},
		{"unknown key", strings.Replace(good, "  site: s1\n", "  site: s1\n  color: blue\n", 1),
			`5: gateway.color: unknown key "color"`},
		{"bad broker url", strings.Replace(good, "tcp://127.0.0.1:1883", "http://broker:1883", 1),
			`6: broker.urls[0]: "http://broker:1883" has scheme "http"; use tcp://, ssl:// or mqtts:// (or "embedded")`},
		{"bad port", strings.Replace(good, "tcp://127.0.0.1:1883", "tcp://broker:99999", 1),
			`6: broker.urls[0]: "tcp://broker:99999" has port "99999" out of range 1-65535`},
		{"bad pin", strings.Replace(good, "clk: GPIO5", "clk: GPIO99", 1),
			`14: sensors[0].pins.clk: "GPIO99" is not a pin name (GPIO0-GPIO27)`},
		{"bad size", strings.Replace(good, "64MiB", "lots", 1),
			`9: outbox.max_bytes: "lots" is not a size (e.g. 512MiB, 2GiB)`},
		{"bad gateway id", strings.Replace(good, "id: gw-1", "id: gw/1", 1),
			`3: gateway.id: "gw/1" has '/' at byte 2; use letters, digits, '-', '_' or '.'`},
		{"no calibration", strings.Replace(good, "    calibration: {offset: 100, counts_per_gram: 200}\n", "", 1),
			"11: sensors[0].calibration: is missing; run 'shelfctl calibrate' to measure offset and counts_per_gram (or set calibration_file)"},
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
	y := strings.NewReplacer("id: gw-1", "id: \"\"", "clk: GPIO5", "clk: GPIO6", "unit_grams: 10", "unit_grams: 0").Replace(good)
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
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(strings.NewReader(string(data)))
		if err != nil {
			return
		}
		_ = c.Validate() // must not panic
	})
}

func TestSensorTypes(t *testing.T) {
	base := "gateway: {id: g, site: s}\nbroker: {urls: [embedded]}\noutbox: {path: o.db}\nsensors:\n"
	for _, tc := range []struct{ name, sensor, want string }{
		{"scanner serial", "  - {name: a, type: scanner, port: /dev/ttyACM0}", ""},
		{"scanner evdev", "  - {name: a, type: scanner, input: /dev/input/event3, suffix: LF}", ""},
		{"scanner none", "  - {name: a, type: scanner}", "sensors[0].port: is empty: set port (USB-CDC serial, e.g. /dev/ttyACM0) or input (evdev keyboard wedge)"},
		{"scanner suffix", "  - {name: a, type: scanner, port: /dev/x, suffix: TAB}", `sensors[0].suffix: "TAB" is not CR, LF or CRLF`},
		{"rfid", "  - {name: a, type: mfrc522, spi: SPI0.0, pins: {rst: GPIO25, irq: GPIO24}}", ""},
		{"rfid same pin", "  - {name: a, type: mfrc522, spi: SPI0.0, pins: {rst: GPIO25, irq: GPIO25}}", "sensors[0].pins.irq: GPIO25 is already used for rst"},
		{"bme280", "  - {name: a, type: bme280, i2c: '1', address: 0x77}", ""},
		{"bme280 address", "  - {name: a, type: bme280, address: 0x40}", "sensors[0].address: 0x40 is not a BME280 address (0x76 or 0x77)"},
		{"ds18b20", "  - {name: a, type: ds18b20, address: 0x28ff4c6a8016032e, interval: 30s}", ""},
		{"ds18b20 no address", "  - {name: a, type: ds18b20}", "sensors[0].address: is missing: the sensor's 64-bit 1-wire ROM code, e.g. 0x28ff4c6a8016032e"},
		{"unknown", "  - {name: a, type: lidar}", `sensors[0].type: "lidar" is not a sensor type (hx711, scanner, mfrc522, bme280, ds18b20)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse(strings.NewReader(base + tc.sensor + "\n"))
			if err == nil {
				err = c.Validate()
			}
			got := ""
			if err != nil {
				var es Errors
				if !errors.As(err, &es) || len(es) != 1 {
					t.Fatalf("errors: %v", err)
				}
				got = es[0].Path + ": " + es[0].Msg
			}
			if got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}
