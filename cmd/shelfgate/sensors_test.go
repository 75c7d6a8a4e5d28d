package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shelfgate/shelfgate/gateway/config"
)

// Every sensor kind checks its own entry; the problems name the file, the
// line and the field path, and come in the same list as the rest of the
// file's.
func TestSensorKindChecks(t *testing.T) {
	dir := t.TempDir()
	base := "gateway: {id: g, site: s}\nbroker: {urls: [embedded]}\noutbox: {path: o.db}\nsensors:\n"
	for _, tc := range []struct{ name, sensor, want string }{
		{"hx711", "  - {name: a, bin: s/b, unit_grams: 10, pins: {clk: GPIO5, data: GPIO6}, calibration: {offset: 1, counts_per_gram: 2}}", ""},
		{"hx711 bad pin", "  - {name: a, bin: s/b, unit_grams: 10, pins: {clk: GPIO99, data: GPIO6}, calibration: {offset: 1, counts_per_gram: 2}}",
			`c.yaml:5: sensors[0].pins.clk: "GPIO99" is not a pin name (GPIO0-GPIO27)`},
		{"hx711 wrong type", "  - {name: a, bin: s/b, unit_grams: heavy, pins: {clk: GPIO5, data: GPIO6}, calibration: {offset: 1, counts_per_gram: 2}}",
			`c.yaml:5: sensors[0].unit_grams: "heavy" is text, want a number`},
		{"hx711 unknown key", "  - {name: a, bin: s/b, unit_grams: 1, colour: red, pins: {clk: GPIO5, data: GPIO6}, calibration: {offset: 1, counts_per_gram: 2}}",
			`c.yaml:5: sensors[0].colour: unknown key "colour"`},
		{"hx711 key of another kind", "  - {name: a, bin: s/b, unit_grams: 1, port: /dev/ttyACM0, pins: {clk: GPIO5, data: GPIO6}, calibration: {offset: 1, counts_per_gram: 2}}",
			`c.yaml:5: sensors[0].port: unknown key "port"`},
		{"hx711 no calibration", "  - name: a\n    bin: s/b\n    unit_grams: 1\n    pins: {clk: GPIO5, data: GPIO6}",
			"c.yaml:5: sensors[0].calibration: is missing; run 'shelfctl calibrate' to measure offset and counts_per_gram (or set calibration_file)"},
		{"hx711 mode", "  - name: a\n    bin: s/b\n    unit_grams: 1\n    mode: A32\n    pins: {clk: GPIO5, data: GPIO6}\n    calibration: {offset: 1, counts_per_gram: 2}",
			`c.yaml:8: sensors[0].mode: "A32" is not A128, A64 or B32`},
		{"scanner serial", "  - {name: a, type: scanner, port: /dev/ttyACM0}", ""},
		{"scanner evdev", "  - {name: a, type: scanner, input: /dev/input/event3, suffix: LF}", ""},
		{"scanner none", "  - {name: a, type: scanner}", "c.yaml:5: sensors[0].port: is empty: set port (USB-CDC serial, e.g. /dev/ttyACM0) or input (evdev keyboard wedge)"},
		{"scanner suffix", "  - {name: a, type: scanner, port: /dev/x, suffix: TAB}", `c.yaml:5: sensors[0].suffix: "TAB" is not CR, LF or CRLF`},
		{"rfid", "  - {name: a, type: mfrc522, spi: SPI0.0, pins: {rst: GPIO25, irq: GPIO24}}", ""},
		{"rfid same pin", "  - {name: a, type: mfrc522, spi: SPI0.0, pins: {rst: GPIO25, irq: GPIO25}}", "c.yaml:5: sensors[0].pins.irq: GPIO25 is already used for rst"},
		{"bme280", "  - {name: a, type: bme280, i2c: '1', address: 0x77}", ""},
		{"bme280 address", "  - {name: a, type: bme280, address: 0x40}", "c.yaml:5: sensors[0].address: 0x40 is not a BME280 address (0x76 or 0x77)"},
		{"ds18b20", "  - {name: a, type: ds18b20, address: 0x28ff4c6a8016032e, interval: 30s}", ""},
		{"ds18b20 no address", "  - {name: a, type: ds18b20}", "c.yaml:5: sensors[0].address: is missing: the sensor's 64-bit 1-wire ROM code, e.g. 0x28ff4c6a8016032e"},
		{"ds18b20 interval", "  - {name: a, type: ds18b20, address: 0x28ff4c6a8016032e, interval: 2h}", "c.yaml:5: sensors[0].interval: 2h0m0s must be between 1s and 1h"},
		{"unknown", "  - {name: a, type: lidar}", `c.yaml:5: sensors[0].type: "lidar" is not a sensor type (hx711, scanner, mfrc522, bme280, ds18b20, plate)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, "c.yaml")
			if err := os.WriteFile(p, []byte(base+tc.sensor+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := config.Load(p, checkSensors, checkSimulation) // as loadConfig
			got := ""
			if err != nil {
				var es config.Errors
				if !errors.As(err, &es) || len(es) != 1 {
					t.Fatalf("errors: %v", err)
				}
				got = strings.ReplaceAll(es[0].Error(), dir+"/", "")
			}
			if got != tc.want {
				t.Fatalf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}

// The shipped configurations load through the sensor kinds: the demo
// entirely, the example except for files that exist only on a gateway.
func TestShippedConfigsThroughKinds(t *testing.T) {
	cfg, err := loadConfig("../../configs/demo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	sc, err := decodeSimulation(cfg)
	if err != nil || sc == nil || !sc.Scanner || !sc.RFID || !sc.Env || sc.Warehouse.Seed != 42 || sc.Warehouse.Speed != 10 {
		t.Fatalf("demo simulation %+v, %v", sc, err)
	}
	f, err := os.Open("../../configs/shelfgate.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfg, err = config.Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	err = cfg.Validate(checkSensors, checkSimulation)
	var es config.Errors
	errors.As(err, &es)
	for _, e := range es {
		if !strings.HasPrefix(e.Path, "broker.tls.") && e.Path != "outbox.path" && e.Path != "calibration_file" {
			t.Errorf("example config: %v", e)
		}
	}
	specs, des := decodeSensors(cfg, sensorKinds())
	if len(des) != 0 || len(specs) != 8 {
		t.Fatalf("example sensors: %d decoded, %v", len(specs), des)
	}
	if h := specs[0].conf.(*hx711Config); h.Bin != "shelf-01/bin-01" || h.Mode != "A128" || h.Calibration.CountsPerGram != 212.4 || h.Pins.Clk != "GPIO5" {
		t.Errorf("first hx711 decoded as %+v", h)
	}
	if s := specs[3].conf.(*scannerConfig); s.Baud != 9600 || s.Suffix != "CR" {
		t.Errorf("scanner decoded as %+v", s)
	}
	if e := specs[7].conf.(*ds18b20Config); e.Address != 0x28ff4c6a8016032e {
		t.Errorf("ds18b20 decoded as %+v", e)
	}
}

// The simulation's sensors are built by the same kinds as hardware: every
// bin gets an hx711 sensor, with its own source.
func TestSimulationBuildsThroughKinds(t *testing.T) {
	wc := smallWarehouse()
	ss, err := buildSimulation(&simConfig{Warehouse: wc, RFID: true, Env: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ss.close()
	var kinds []string
	for _, s := range ss.sensors {
		kinds = append(kinds, s.kind+":"+s.name)
	}
	want := "hx711:cell-shelf-01/bin-01 hx711:cell-shelf-01/bin-02 mfrc522:dock-1 bme280:coldroom-1"
	if strings.Join(kinds, " ") != want {
		t.Fatalf("sensors %v, want %s", kinds, want)
	}
	if len(ss.bins()) != 2 || len(ss.sources()) != 5 { // + the tote feeder
		t.Fatalf("%d bins, %d sources", len(ss.bins()), len(ss.sources()))
	}
}

// FuzzSensorKinds feeds configuration files through the parser and the
// sensor kinds' and simulation's checks: whatever the file, they report
// problems and never panic.
func FuzzSensorKinds(f *testing.F) {
	for _, p := range []string{"../../configs/demo.yaml", "../../configs/shelfgate.example.yaml", "testdata/hardware.yaml"} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("sensors: [{name: a, type: scanner, baud: x}, {name: b, type: ds18b20, address: -1}]\nsimulation: {warehouse: {skus: [{code: 1, bogus: 2}]}}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := config.Parse(strings.NewReader(string(data)))
		if err != nil {
			return
		}
		_ = cfg.Validate(checkSensors, checkSimulation)
	})
}
