package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/shelfgate/shelfgate/gateway/config"
	"github.com/shelfgate/shelfgate/sensors/calibration"
)

// claim is something on the host one sensor takes for itself: a GPIO pin,
// a bus (whose pins are then reserved), a device node or a bin. check-config
// reports two sensors claiming the same thing, and a pin of a bus in use.
type claim struct {
	field string // field path inside the sensor's entry, e.g. "pins.clk"
	pin   string // GPIO name, e.g. GPIO5
	bus   string // a bus that reserves pins: SPI0, SPI1, I2C0, I2C1, UART0
	dev   string // a device node the sensor opens, e.g. /dev/ttyACM0
	write bool   // dev is opened for writing too
	bin   string // a bin the sensor watches
	// shared names a group whose members may all claim the same pin (an
	// HX711 clock shared by the cells of one plate): a pin claimed only by
	// claims of the same non-empty group is no conflict.
	shared string
}

// claimer is implemented by sensor configurations that take pins, buses,
// device nodes or bins. A kind that takes none need not implement it.
type claimer interface {
	claims() []claim
}

// busPins are the GPIOs (BCM) each Raspberry Pi bus takes when enabled.
var busPins = map[string][]int{
	"I2C0":  {0, 1},
	"I2C1":  {2, 3},
	"SPI0":  {7, 8, 9, 10, 11},
	"SPI1":  {16, 17, 18, 19, 20, 21},
	"UART0": {14, 15},
}

// spiBus returns the bus of a periph SPI port name ("SPI0.0" -> SPI0) and
// its device node; "" for names that are no Pi SPI port (a simulator).
func spiBus(port string) (bus, dev string) {
	var b, cs int
	if _, err := fmt.Sscanf(port, "SPI%d.%d", &b, &cs); err != nil || fmt.Sprintf("SPI%d.%d", b, cs) != port {
		return "", ""
	}
	return fmt.Sprintf("SPI%d", b), fmt.Sprintf("/dev/spidev%d.%d", b, cs)
}

// i2cBus returns the bus of a periph I2C bus name ("", "1", "I2C1",
// "/dev/i2c-1") and its device node; "" for other names.
func i2cBus(name string) (bus, dev string) {
	if name == "" {
		name = "1" // the Pi's header bus, periph's first
	}
	n := strings.TrimPrefix(strings.TrimPrefix(name, "/dev/i2c-"), "I2C")
	var b int
	if _, err := fmt.Sscanf(n, "%d", &b); err != nil || fmt.Sprint(b) != n {
		return "", ""
	}
	return fmt.Sprintf("I2C%d", b), fmt.Sprintf("/dev/i2c-%d", b)
}

// uartBus is the bus of a serial device on the Pi's header UART; "" for
// USB serial devices.
func uartBus(dev string) string {
	switch dev {
	case "/dev/serial0", "/dev/ttyAMA0", "/dev/ttyS0":
		return "UART0"
	}
	return ""
}

// hostCheck checks what the configuration asks of this host without
// touching a pin or writing a file: whether this user can open the outbox
// and the sensors' device nodes.
type hostCheck struct {
	// access is unix.Access; tests replace it to deny access as root.
	access func(path string, mode uint32) error
}

func newHostCheck() hostCheck { return hostCheck{access: unix.Access} }

// check is the config.Check of the host.
func (h hostCheck) check(cfg *config.Config) config.Errors {
	var es config.Errors
	if p := cfg.Outbox.Path; p != "" {
		dir := filepath.Dir(p)
		if st, err := os.Stat(p); err == nil && st.IsDir() {
			es = append(es, cfg.Errorf("outbox.path", "%q is a directory; name the database file in it, e.g. %s", p, filepath.Join(p, "outbox.db")))
		} else if err == nil {
			if err := h.access(p, unix.R_OK|unix.W_OK); err != nil {
				es = append(es, cfg.Errorf("outbox.path", "%s (mode %s) cannot be opened for reading and writing by this user: %v", p, st.Mode(), err))
			}
		}
		// The directory takes the database's journal, lock and gateway id
		// files too, so it must be writable even when the database exists.
		if st, err := os.Stat(dir); err == nil && st.IsDir() {
			if err := h.access(dir, unix.W_OK|unix.X_OK); err != nil {
				es = append(es, cfg.Errorf("outbox.path", "directory %s (mode %s) is not writable by this user, so the outbox, its journal and lock cannot be created: %v", dir, st.Mode(), err))
			}
		}
	}
	specs, _ := decodeSensors(cfg, sensorKinds())
	for _, sp := range specs {
		c, ok := sp.conf.(claimer)
		if !ok {
			continue
		}
		for _, cl := range c.claims() {
			if cl.dev == "" {
				continue
			}
			st, err := os.Stat(cl.dev)
			if err != nil {
				continue // not plugged in: run waits for it, doctor says so
			}
			mode, how := uint32(unix.R_OK), "reading"
			if cl.write {
				mode, how = unix.R_OK|unix.W_OK, "reading and writing"
			}
			if err := h.access(cl.dev, mode); err != nil {
				es = append(es, cfg.Errorf(sensorPath(cfg, sp.name)+"."+cl.field, "%s (mode %s) cannot be opened for %s by this user: %v (is the service user in its group?)", cl.dev, st.Mode(), how, err))
			}
		}
	}
	return es
}

// sensorPath returns the field path of the sensor named name.
func sensorPath(cfg *config.Config, name string) string {
	for i, s := range cfg.Sensors {
		if s.Name == name {
			return fmt.Sprintf("sensors[%d]", i)
		}
	}
	return "sensors"
}

// checkClaims is the config.Check of what the sensors share: no pin, device
// node or bin claimed by two sensors (a pin shared inside a declared group
// excepted), no pin of an enabled bus used as a plain GPIO.
func checkClaims(cfg *config.Config) config.Errors { return claimsCheck(sensorKinds())(cfg) }

// claimsCheck is checkClaims over the kinds of a wiring table.
func claimsCheck(kinds []sensorKind) config.Check {
	return func(cfg *config.Config) config.Errors { return claimsOf(cfg, kinds) }
}

func claimsOf(cfg *config.Config, kinds []sensorKind) config.Errors {
	specs, _ := decodeSensors(cfg, kinds)
	type owner struct {
		path string // sensors[i].field
		name string
		cl   claim
	}
	var es config.Errors
	pins, devs, bins, buses := map[string]owner{}, map[string]owner{}, map[string]owner{}, map[string]owner{}
	var all []owner
	for _, sp := range specs {
		c, ok := sp.conf.(claimer)
		if !ok {
			continue
		}
		base := sensorPath(cfg, sp.name)
		for _, cl := range c.claims() {
			o := owner{base + "." + cl.field, sp.name, cl}
			all = append(all, o)
			if cl.bus != "" {
				if _, dup := buses[cl.bus]; !dup {
					buses[cl.bus] = o
				}
			}
		}
	}
	sameSensor := func(a, b owner) bool { return a.name == b.name }
	for _, o := range all {
		cl := o.cl
		if cl.pin != "" {
			if prev, dup := pins[cl.pin]; dup && !sameSensor(prev, o) && (cl.shared == "" || cl.shared != prev.cl.shared) {
				es = append(es, cfg.Errorf(o.path, "%s is already used by %s (%s)", cl.pin, prev.path, prev.name))
			} else if !dup {
				pins[cl.pin] = o
			}
			var n int
			if _, err := fmt.Sscanf(cl.pin, "GPIO%d", &n); err == nil {
				for bus, bp := range busPins {
					if b, used := buses[bus]; used && containsInt(bp, n) {
						es = append(es, cfg.Errorf(o.path, "%s is reserved by %s, which %s (%s) uses; pick a pin outside GPIO %s", cl.pin, bus, b.path, b.name, pinList(bp)))
					}
				}
			}
		}
		if cl.dev != "" {
			if prev, dup := devs[cl.dev]; dup && !sameSensor(prev, o) && (cl.shared == "" || cl.shared != prev.cl.shared) {
				es = append(es, cfg.Errorf(o.path, "%s is already opened by %s (%s)", cl.dev, prev.path, prev.name))
			} else if !dup {
				devs[cl.dev] = o
			}
		}
		if cl.bin != "" {
			if prev, dup := bins[cl.bin]; dup && !sameSensor(prev, o) {
				es = append(es, cfg.Errorf(o.path, "%q is already watched by %s (%s); each bin has one sensor", cl.bin, prev.path, prev.name))
			} else if !dup {
				bins[cl.bin] = o
			}
		}
	}
	return es
}

func containsInt(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func pinList(p []int) string {
	if len(p) == 2 {
		return fmt.Sprintf("%d and %d", p[0], p[1])
	}
	return fmt.Sprintf("%d-%d", p[0], p[len(p)-1])
}

// readCalibrations parses the calibration file for the load cells'
// checks; nil when it cannot (checkCalibrationFile reports why).
func readCalibrations(path string) *calibration.File {
	f, err := parseCalibrationFile(path)
	if err != nil {
		return nil
	}
	return f
}

func parseCalibrationFile(path string) (*calibration.File, error) {
	if path == "" {
		return nil, errors.New("not set")
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.IsDir() {
		return nil, fmt.Errorf("%s is a directory, not a calibration file (written by shelfctl calibrate --out FILE)", path)
	}
	r, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	f, err := calibration.Parse(r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &f, nil
}

// checkCalibrationFile is the config.Check of calibration_file: it must be
// a calibration file, not only exist (its absence is the config package's
// report).
func checkCalibrationFile(cfg *config.Config) config.Errors {
	if cfg.CalibrationFile == "" {
		return nil
	}
	if _, err := parseCalibrationFile(cfg.CalibrationFile); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return config.Errors{cfg.Errorf("calibration_file", "%v", err)}
	}
	return nil
}

// checkTLS is the config.Check of the TLS files' content: a CA file
// without a certificate or a key that does not match its certificate,
// which run would find only after creating the outbox. Missing files are
// the config package's report.
func checkTLS(cfg *config.Config) config.Errors {
	t := cfg.Broker.TLS
	for _, f := range []string{t.CAFile, t.CertFile, t.KeyFile} {
		if f != "" {
			if _, err := os.Stat(f); err != nil {
				return nil
			}
		}
	}
	if t.CertFile != "" && t.KeyFile == "" || t.CertFile == "" && t.KeyFile != "" {
		return nil
	}
	if _, err := tlsConfig(t); err != nil {
		field, msg, ok := strings.Cut(err.Error(), ": ")
		if !ok || !strings.HasPrefix(field, "broker.tls.") {
			field, msg = "broker.tls", err.Error()
		}
		field, _, _ = strings.Cut(field, "/")
		return config.Errors{cfg.Errorf(field, "%s", msg)}
	}
	return nil
}

// configChecks are the checks of check-config, run and doctor beyond the
// config package's own.
func configChecks(h hostCheck) []config.Check {
	return []config.Check{checkSensors, checkClaims, checkCalibrationFile, checkSimulation, checkTLS, h.check}
}

// warehouseErrors reports each of the warehouse's problems ("warehouse:
// speed: -1 must be ...") at its own field and line.
func warehouseErrors(cfg *config.Config, err error) config.Errors {
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	var es config.Errors
	for _, e := range errs {
		msg := strings.TrimPrefix(e.Error(), "warehouse: ")
		field, rest, ok := strings.Cut(msg, ": ")
		if !ok || strings.ContainsAny(field, " ") {
			es = append(es, cfg.Errorf("simulation.warehouse", "%s", msg))
			continue
		}
		es = append(es, cfg.Errorf("simulation.warehouse."+field, "%s", rest))
	}
	return es
}
