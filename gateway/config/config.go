// Package config reads and checks Shelfgate's YAML configuration file.
//
// Parse decodes strictly (unknown keys and wrong types are errors with their
// line), fills defaults, and Validate reports every problem with its field
// path and line, e.g.
//
//	configs/x.yaml:14: sensors[2].pins.clk: "GPIO99" is not a pin name (GPIO0-GPIO27)
//
// Environment variables override the broker connection settings, so secrets
// need not be written in the file: SHELFGATE_BROKER_URLS (comma-separated),
// SHELFGATE_BROKER_USERNAME, SHELFGATE_BROKER_PASSWORD.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/shelfgate/shelfgate/firmware-sim/warehouse"
	"github.com/shelfgate/shelfgate/gateway"
)

// Embedded is the broker URL that starts the in-process broker.
const Embedded = "embedded"

// Config is the whole configuration file.
type Config struct {
	Gateway Gateway  `yaml:"gateway"`
	Broker  Broker   `yaml:"broker"`
	Outbox  Outbox   `yaml:"outbox"`
	Uplink  Uplink   `yaml:"uplink"`
	Sensors []Sensor `yaml:"sensors"`
	// CalibrationFile holds load-cell calibrations written by `shelfctl
	// calibrate`; hx711 sensors without an inline calibration are looked up
	// in it by bin (and mode).
	CalibrationFile string      `yaml:"calibration_file"`
	Simulation      *Simulation `yaml:"simulation"`
	Metrics         Metrics     `yaml:"metrics"`
	Log             Log         `yaml:"log"`

	root *yaml.Node // for line numbers; nil for Default()
	file string
}

// Gateway identifies this gateway; both become MQTT topic levels.
type Gateway struct {
	ID   string `yaml:"id"`
	Site string `yaml:"site"`
}

// Broker is how the uplink reaches MQTT.
type Broker struct {
	URLs         []string      `yaml:"urls"`          // "embedded", tcp://, ssl://, mqtts://; tried in turn
	EmbeddedAddr string        `yaml:"embedded_addr"` // listen address of the embedded broker
	Username     string        `yaml:"username"`
	PasswordFile string        `yaml:"password_file"` // the password is read from this file
	Password     string        `yaml:"-"`             // only from SHELFGATE_BROKER_PASSWORD or PasswordFile
	TLS          TLS           `yaml:"tls"`
	KeepAlive    time.Duration `yaml:"keepalive"`
}

// TLS names the files for server verification and mutual TLS.
type TLS struct {
	CAFile     string `yaml:"ca_file"`
	CertFile   string `yaml:"cert_file"`
	KeyFile    string `yaml:"key_file"`
	ServerName string `yaml:"server_name"`
}

// Outbox configures the SQLite outbox.
type Outbox struct {
	Path           string        `yaml:"path"`
	MaxBytes       ByteSize      `yaml:"max_bytes"`
	CommitInterval time.Duration `yaml:"commit_interval"`
	CommitRows     int           `yaml:"commit_rows"`
}

// Uplink tunes delivery.
type Uplink struct {
	BatchRecords int           `yaml:"batch_records"`
	Window       int           `yaml:"window"`
	AckTimeout   time.Duration `yaml:"ack_timeout"`
	FlushTimeout time.Duration `yaml:"flush_timeout"` // how long shutdown tries to deliver the backlog
	ReplayRate   int           `yaml:"replay_rate"`   // telemetry records/s cap (0 = none) so a fleet's backlog replay does not flood the broker
	Compress     bool          `yaml:"compress"`      // send batches as zstd frames (for metered links)
	// AckMode says when a row may leave the outbox: "broker" (at the
	// broker's PUBACK) or "consumer" (when the cloud consumer confirms it on
	// .../ack: survives a broker that crashes before persisting).
	AckMode            string        `yaml:"ack_mode"`
	ConsumerAckTimeout time.Duration `yaml:"consumer_ack_timeout"` // re-send rows unconfirmed this long after sending
}

// Sensor types.
const (
	TypeHX711   = "hx711"   // load cell: pins.clk, pins.data, bin, unit_grams, calibration
	TypeScanner = "scanner" // barcode scanner: port (USB-CDC serial) or input (evdev keyboard wedge)
	TypeMFRC522 = "mfrc522" // RFID reader: spi, pins.rst, pins.irq
	TypeBME280  = "bme280"  // temperature/pressure/humidity: i2c, address
	TypeDS18B20 = "ds18b20" // temperature: onewire, address
)

// Sensor is one physical (or simulated) sensor.
type Sensor struct {
	Name string `yaml:"name"`
	Type string `yaml:"type"` // hx711 (default), scanner, mfrc522, bme280, ds18b20

	// hx711
	Bin         string       `yaml:"bin"` // e.g. shelf-01/bin-03
	SKU         string       `yaml:"sku"`
	UnitGrams   float64      `yaml:"unit_grams"`
	LowStock    int          `yaml:"low_stock"`
	Calibration *Calibration `yaml:"calibration"`
	Mode        string       `yaml:"mode"` // HX711 input and gain: A128 (default), A64 or B32
	Pins        Pins         `yaml:"pins"`

	// scanner
	Port   string `yaml:"port"`   // /dev/ttyACM0 or /dev/serial/by-id/...
	Baud   int    `yaml:"baud"`   // default 9600
	Suffix string `yaml:"suffix"` // CR (default), LF or CRLF
	Input  string `yaml:"input"`  // /dev/input/by-id/...-event-kbd (instead of port)

	// mfrc522
	SPI string `yaml:"spi"` // periph SPI port name, e.g. SPI0.0

	// bme280, ds18b20
	I2C      string        `yaml:"i2c"`      // periph I2C bus name, "" = first
	OneWire  string        `yaml:"onewire"`  // periph 1-wire bus name, "" = first
	Address  uint64        `yaml:"address"`  // I2C address (0x76/0x77) or 1-wire ROM code
	Interval time.Duration `yaml:"interval"` // sampling interval, default 10s
}

// Pins are GPIO pin names (Raspberry Pi BCM numbering, GPIO0-GPIO27).
type Pins struct {
	Clk  string `yaml:"clk"`
	Data string `yaml:"data"`
	Rst  string `yaml:"rst"`
	IRQ  string `yaml:"irq"`
}

// Calibration converts raw HX711 codes to grams: grams = (code - Offset) / CountsPerGram.
type Calibration struct {
	Offset        int32   `yaml:"offset"`
	CountsPerGram float64 `yaml:"counts_per_gram"`
}

// Simulation replaces the hardware with the simulated warehouse: a load
// cell under every bin, and optionally a barcode scanner (typing the
// warehouse's scans into a pseudo-terminal), an RFID reader at the dock and
// a cold-room BME280, each behind its bus-level simulator and read through
// the same sensor packages and periph drivers as real hardware.
type Simulation struct {
	Warehouse warehouse.Config `yaml:"warehouse"`
	Scanner   bool             `yaml:"scanner"`
	RFID      bool             `yaml:"rfid"`
	Env       bool             `yaml:"env"`
}

// Metrics configures the Prometheus endpoint (/metrics, /healthz, /readyz).
type Metrics struct {
	Listen string `yaml:"listen"` // host:port; empty = off
}

// Log configures logging.
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // text or json
}

// Default returns a configuration that runs the simulated demo against the
// embedded broker with an outbox in the working directory.
func Default() *Config {
	wh := warehouse.DefaultConfig()
	c := &Config{
		Gateway:    Gateway{ID: "gw-01", Site: "demo"},
		Broker:     Broker{URLs: []string{Embedded}},
		Outbox:     Outbox{Path: "shelfgate-outbox.db"},
		Simulation: &Simulation{Warehouse: wh},
	}
	c.fill()
	return c
}

// fill sets defaults for fields left empty.
func (c *Config) fill() {
	if len(c.Broker.URLs) == 0 {
		c.Broker.URLs = []string{Embedded}
	}
	if c.Broker.EmbeddedAddr == "" {
		c.Broker.EmbeddedAddr = "127.0.0.1:1883"
	}
	if c.Broker.KeepAlive == 0 {
		c.Broker.KeepAlive = 10 * time.Second
	}
	if c.Outbox.MaxBytes == 0 {
		c.Outbox.MaxBytes = 1 << 30
	}
	if c.Outbox.CommitInterval == 0 {
		c.Outbox.CommitInterval = 5 * time.Millisecond
	}
	if c.Outbox.CommitRows == 0 {
		c.Outbox.CommitRows = 8192
	}
	if c.Uplink.BatchRecords == 0 {
		c.Uplink.BatchRecords = 500
	}
	if c.Uplink.Window == 0 {
		c.Uplink.Window = 32
	}
	if c.Uplink.AckTimeout == 0 {
		c.Uplink.AckTimeout = 20 * time.Second
	}
	if c.Uplink.AckMode == "" {
		c.Uplink.AckMode = "broker"
	}
	if c.Uplink.ConsumerAckTimeout == 0 {
		c.Uplink.ConsumerAckTimeout = 30 * time.Second
	}
	if c.Uplink.FlushTimeout == 0 {
		c.Uplink.FlushTimeout = 5 * time.Second
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Format == "" {
		c.Log.Format = "text"
	}
	for i := range c.Sensors {
		s := &c.Sensors[i]
		if s.Type == "" {
			s.Type = TypeHX711
		}
		switch s.Type {
		case TypeHX711:
			if s.Mode == "" {
				s.Mode = "A128"
			}
		case TypeScanner:
			if s.Baud == 0 {
				s.Baud = 9600
			}
			if s.Suffix == "" {
				s.Suffix = "CR"
			}
		case TypeBME280:
			if s.Address == 0 {
				s.Address = 0x76
			}
			fallthrough
		case TypeDS18B20:
			if s.Interval == 0 {
				s.Interval = 10 * time.Second
			}
		}
	}
}

// Load reads, parses, applies the environment and validates the file at path.
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	c, err := Parse(f)
	if err != nil {
		return nil, prefixFile(path, err)
	}
	c.file = path
	if err := c.ApplyEnv(os.LookupEnv); err != nil {
		return nil, prefixFile(path, err)
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

func prefixFile(path string, err error) error {
	var es Errors
	if errors.As(err, &es) {
		for i := range es {
			es[i].File = path
		}
		return es
	}
	return fmt.Errorf("%s: %w", path, err)
}

// Parse decodes a configuration strictly and fills defaults. It does not validate.
func Parse(r io.Reader) (*Config, error) {
	data, err := io.ReadAll(io.LimitReader(r, 1<<20+1))
	if err != nil {
		return nil, fmt.Errorf("config: read: %w", err)
	}
	if len(data) > 1<<20 {
		return nil, Errors{{Msg: "file is larger than 1 MiB"}}
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, yamlErrors(err, nil)
	}
	c := &Config{}
	if len(bytes.TrimSpace(data)) > 0 {
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
			return nil, yamlErrors(err, &root)
		}
	}
	c.root = &root
	c.fill()
	return c, nil
}

var yamlLine = regexp.MustCompile(`^line (\d+): (.*)$`)

var (
	unknownKey = regexp.MustCompile(`^field (\S+) not found in type \S+$`)
	wrongType  = regexp.MustCompile(`^cannot unmarshal !!(\w+) ` + "`" + `(.*)` + "`" + ` into (\S+)$`)
)

// yamlErrors turns yaml.v3's messages ("line 3: field x not found in type
// config.Gateway") into Errors with lines and, found in root, field paths.
func yamlErrors(err error, root *yaml.Node) error {
	var te *yaml.TypeError
	var msgs []string
	if errors.As(err, &te) {
		msgs = te.Errors
	} else {
		msgs = []string{strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	var es Errors
	for _, m := range msgs {
		e := Error{Msg: m}
		if g := yamlLine.FindStringSubmatch(m); g != nil {
			e.Line, _ = strconv.Atoi(g[1])
			e.Msg = g[2]
		}
		if root != nil && e.Line > 0 {
			hint := ""
			if g := wrongType.FindStringSubmatch(e.Msg); g != nil {
				hint = g[2]
			} else if g := unknownKey.FindStringSubmatch(e.Msg); g != nil {
				hint = g[1]
			}
			e.Path = pathAtLine(root, e.Line, hint)
		}
		if g := unknownKey.FindStringSubmatch(e.Msg); g != nil {
			e.Msg = fmt.Sprintf("unknown key %q", g[1])
		} else if g := wrongType.FindStringSubmatch(e.Msg); g != nil {
			e.Msg = fmt.Sprintf("%q is %s, want %s", g[2], yamlKind(g[1]), typeName(g[3]))
		}
		es = append(es, e)
	}
	return es
}

// ApplyEnv applies SHELFGATE_BROKER_URLS, SHELFGATE_BROKER_USERNAME and
// SHELFGATE_BROKER_PASSWORD, and reads Broker.PasswordFile.
func (c *Config) ApplyEnv(lookup func(string) (string, bool)) error {
	if v, ok := lookup("SHELFGATE_BROKER_URLS"); ok && v != "" {
		c.Broker.URLs = nil
		for _, u := range strings.Split(v, ",") {
			c.Broker.URLs = append(c.Broker.URLs, strings.TrimSpace(u))
		}
	}
	if v, ok := lookup("SHELFGATE_BROKER_USERNAME"); ok {
		c.Broker.Username = v
	}
	if v, ok := lookup("SHELFGATE_BROKER_PASSWORD"); ok {
		c.Broker.Password = v
	} else if c.Broker.PasswordFile != "" {
		p, err := os.ReadFile(c.Broker.PasswordFile)
		if err != nil {
			return Errors{{Path: "broker.password_file", Line: c.line("broker.password_file"), Msg: err.Error()}}
		}
		c.Broker.Password = strings.TrimRight(string(p), "\r\n")
	}
	return nil
}

// Error is one configuration problem.
type Error struct {
	File string
	Line int    // 0 when unknown
	Path string // e.g. sensors[2].pins.clk
	Msg  string
}

func (e Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteString(":")
	}
	if e.Line > 0 {
		b.WriteString(strconv.Itoa(e.Line))
		b.WriteString(":")
	}
	if b.Len() > 0 {
		b.WriteString(" ")
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found, one per line.
type Errors []Error

func (es Errors) Error() string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// Validate checks every field and returns Errors listing all problems.
func (c *Config) Validate() error {
	var es Errors
	add := func(path, format string, args ...any) {
		es = append(es, Error{File: c.file, Line: c.line(path), Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	if err := gateway.ValidTopicLevel(c.Gateway.ID); err != nil {
		add("gateway.id", "%v", err)
	}
	if err := gateway.ValidTopicLevel(c.Gateway.Site); err != nil {
		add("gateway.site", "%v", err)
	}
	for i, u := range c.Broker.URLs {
		if err := checkBrokerURL(u); err != nil {
			add(fmt.Sprintf("broker.urls[%d]", i), "%q %v", u, err)
		}
	}
	if c.usesEmbedded() {
		if _, _, err := net.SplitHostPort(c.Broker.EmbeddedAddr); err != nil {
			add("broker.embedded_addr", "%q is not host:port", c.Broker.EmbeddedAddr)
		}
	}
	if c.Broker.KeepAlive < time.Second || c.Broker.KeepAlive > time.Hour {
		add("broker.keepalive", "%s must be between 1s and 1h", c.Broker.KeepAlive)
	}
	t := c.Broker.TLS
	if (t.CertFile == "") != (t.KeyFile == "") {
		add("broker.tls", "cert_file and key_file go together (mutual TLS needs both)")
	}
	for _, f := range []struct{ path, file string }{{"broker.tls.ca_file", t.CAFile}, {"broker.tls.cert_file", t.CertFile}, {"broker.tls.key_file", t.KeyFile}} {
		if f.file != "" {
			if _, err := os.Stat(f.file); err != nil {
				add(f.path, "%q: %v", f.file, errors.Unwrap(err))
			}
		}
	}
	if c.Outbox.Path == "" {
		add("outbox.path", "is empty")
	} else if dir := filepath.Dir(c.Outbox.Path); dir != "." {
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			add("outbox.path", "directory %q does not exist", dir)
		}
	}
	if c.Outbox.MaxBytes < 1<<20 {
		add("outbox.max_bytes", "%s is below the minimum of 1MiB", c.Outbox.MaxBytes)
	}
	if c.Outbox.CommitInterval < 100*time.Microsecond || c.Outbox.CommitInterval > 10*time.Second {
		add("outbox.commit_interval", "%s must be between 100µs and 10s", c.Outbox.CommitInterval)
	}
	if c.Outbox.CommitRows < 1 || c.Outbox.CommitRows > 1<<20 {
		add("outbox.commit_rows", "%d must be between 1 and 1048576", c.Outbox.CommitRows)
	}
	if c.Uplink.BatchRecords < 1 || c.Uplink.BatchRecords > 10000 {
		add("uplink.batch_records", "%d must be between 1 and 10000", c.Uplink.BatchRecords)
	}
	if c.Uplink.Window < 1 || c.Uplink.Window > 1000 {
		add("uplink.window", "%d must be between 1 and 1000", c.Uplink.Window)
	}
	if c.Uplink.AckTimeout < time.Second {
		add("uplink.ack_timeout", "%s is below 1s", c.Uplink.AckTimeout)
	}
	if c.Uplink.AckMode != "broker" && c.Uplink.AckMode != "consumer" {
		add("uplink.ack_mode", "%q is not broker or consumer", c.Uplink.AckMode)
	}
	if c.Uplink.ConsumerAckTimeout < time.Second {
		add("uplink.consumer_ack_timeout", "%s is below 1s", c.Uplink.ConsumerAckTimeout)
	}
	if c.Uplink.ReplayRate < 0 {
		add("uplink.replay_rate", "%d is negative (0 means no cap)", c.Uplink.ReplayRate)
	}
	if c.Uplink.FlushTimeout < 0 {
		add("uplink.flush_timeout", "%s is negative", c.Uplink.FlushTimeout)
	}
	names := map[string]int{}
	for i, s := range c.Sensors {
		p := fmt.Sprintf("sensors[%d]", i)
		if s.Name == "" {
			add(p+".name", "is empty")
		} else if j, dup := names[s.Name]; dup {
			add(p+".name", "%q is already used by sensors[%d]", s.Name, j)
		} else {
			names[s.Name] = i
		}
		pins := func(keys ...string) {
			vals := map[string]string{"clk": s.Pins.Clk, "data": s.Pins.Data, "rst": s.Pins.Rst, "irq": s.Pins.IRQ}
			seen := map[string]string{}
			for _, k := range keys {
				if err := checkPin(vals[k]); err != nil {
					add(p+".pins."+k, "%v", err)
				} else if other, dup := seen[vals[k]]; dup {
					add(p+".pins."+k, "%s is already used for %s", vals[k], other)
				} else {
					seen[vals[k]] = k
				}
			}
		}
		switch s.Type {
		case TypeHX711:
			pins("clk", "data")
			if s.UnitGrams <= 0 {
				add(p+".unit_grams", "%v must be above 0", s.UnitGrams)
			}
			if s.Calibration == nil && c.CalibrationFile == "" {
				add(p+".calibration", "is missing; run 'shelfctl calibrate' to measure offset and counts_per_gram (or set calibration_file)")
			} else if s.Calibration != nil && s.Calibration.CountsPerGram == 0 {
				add(p+".calibration.counts_per_gram", "must not be 0")
			}
			if s.Bin == "" {
				add(p+".bin", "is empty")
			}
			switch s.Mode {
			case "A128", "A64", "B32":
			default:
				add(p+".mode", "%q is not A128, A64 or B32", s.Mode)
			}
		case TypeScanner:
			switch {
			case s.Port == "" && s.Input == "":
				add(p+".port", "is empty: set port (USB-CDC serial, e.g. /dev/ttyACM0) or input (evdev keyboard wedge)")
			case s.Port != "" && s.Input != "":
				add(p+".input", "set either port or input, not both")
			}
			if s.Baud < 300 || s.Baud > 4000000 {
				add(p+".baud", "%d must be between 300 and 4000000", s.Baud)
			}
			switch s.Suffix {
			case "CR", "LF", "CRLF":
			default:
				add(p+".suffix", "%q is not CR, LF or CRLF", s.Suffix)
			}
		case TypeMFRC522:
			if s.SPI == "" {
				add(p+".spi", "is empty (e.g. SPI0.0)")
			}
			pins("rst", "irq")
		case TypeBME280:
			if s.Address != 0x76 && s.Address != 0x77 {
				add(p+".address", "%#x is not a BME280 address (0x76 or 0x77)", s.Address)
			}
		case TypeDS18B20:
			if s.Address == 0 {
				add(p+".address", "is missing: the sensor's 64-bit 1-wire ROM code, e.g. 0x28ff4c6a8016032e")
			} else if s.Address&0xff != 0x28 && s.Address>>56 != 0x28 {
				add(p+".address", "%#x is not a DS18B20 ROM code (family 0x28)", s.Address)
			}
		default:
			add(p+".type", "%q is not a sensor type (hx711, scanner, mfrc522, bme280, ds18b20)", s.Type)
		}
		if (s.Type == TypeBME280 || s.Type == TypeDS18B20) && (s.Interval < time.Second || s.Interval > time.Hour) {
			add(p+".interval", "%s must be between 1s and 1h", s.Interval)
		}
	}
	if c.CalibrationFile != "" {
		if _, err := os.Stat(c.CalibrationFile); err != nil {
			add("calibration_file", "%q: %v", c.CalibrationFile, errors.Unwrap(err))
		}
	}
	if c.Simulation != nil {
		if err := c.Simulation.Warehouse.Validate(); err != nil {
			add("simulation.warehouse", "%s", strings.TrimPrefix(err.Error(), "warehouse: "))
		}
	} else if len(c.Sensors) == 0 {
		add("sensors", "no sensors and no simulation: nothing to read")
	}
	if c.Metrics.Listen != "" {
		if _, _, err := net.SplitHostPort(c.Metrics.Listen); err != nil {
			add("metrics.listen", "%q is not host:port (e.g. 127.0.0.1:9464)", c.Metrics.Listen)
		}
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		add("log.level", "%q is not one of debug, info, warn, error", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		add("log.format", "%q is not text or json", c.Log.Format)
	}
	if len(es) == 0 {
		return nil
	}
	return es
}

func (c *Config) usesEmbedded() bool {
	for _, u := range c.Broker.URLs {
		if u == Embedded {
			return true
		}
	}
	return false
}

// UsesEmbeddedBroker reports whether the broker list names the embedded broker.
func (c *Config) UsesEmbeddedBroker() bool { return c.usesEmbedded() }

func checkBrokerURL(s string) error {
	if s == Embedded {
		return nil
	}
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("is not a URL: %v", errors.Unwrap(err))
	}
	switch u.Scheme {
	case "tcp", "mqtt", "ssl", "tls", "mqtts", "ws", "wss":
	default:
		return fmt.Errorf("has scheme %q; use tcp://, ssl:// or mqtts:// (or %q)", u.Scheme, Embedded)
	}
	if u.Hostname() == "" {
		return errors.New("has no host")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("has port %q out of range 1-65535", p)
		}
	}
	return nil
}

var pinName = regexp.MustCompile(`^GPIO(\d+)$`)

func checkPin(s string) error {
	if s == "" {
		return errors.New("is empty")
	}
	g := pinName.FindStringSubmatch(s)
	if g == nil {
		return fmt.Errorf("%q is not a pin name (GPIO0-GPIO27)", s)
	}
	if n, _ := strconv.Atoi(g[1]); n > 27 {
		return fmt.Errorf("%q is not a pin name (GPIO0-GPIO27)", s)
	}
	return nil
}

// line finds the line of a field path like "sensors[2].pins.clk" in the
// parsed document; it falls back to the nearest parent that exists.
func (c *Config) line(path string) int {
	if c.root == nil || len(c.root.Content) == 0 {
		return 0
	}
	n := c.root.Content[0]
	best := 0
	for _, part := range splitPath(path) {
		var next *yaml.Node
		switch {
		case part.key != "" && n.Kind == yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == part.key {
					next = n.Content[i+1]
					best = n.Content[i].Line
				}
			}
		case part.key == "" && n.Kind == yaml.SequenceNode && part.index < len(n.Content):
			next = n.Content[part.index]
			best = next.Line
		}
		if next == nil {
			return best
		}
		n = next
	}
	return best
}

type pathPart struct {
	key   string
	index int
}

func splitPath(path string) []pathPart {
	var parts []pathPart
	for _, seg := range strings.Split(path, ".") {
		key, rest, _ := strings.Cut(seg, "[")
		parts = append(parts, pathPart{key: key})
		for rest != "" {
			idx, after, _ := strings.Cut(rest, "]")
			n, _ := strconv.Atoi(idx)
			parts = append(parts, pathPart{index: n})
			_, rest, _ = strings.Cut(after, "[")
		}
	}
	return parts
}

func yamlKind(tag string) string {
	switch tag {
	case "str":
		return "text"
	case "int":
		return "a whole number"
	case "float":
		return "a number"
	case "bool":
		return "true or false"
	case "seq":
		return "a list"
	case "map":
		return "a mapping"
	}
	return "a " + tag
}

func typeName(goType string) string {
	switch {
	case strings.HasPrefix(goType, "float"):
		return "a number"
	case strings.HasPrefix(goType, "int"), strings.HasPrefix(goType, "uint"):
		return "a whole number"
	case goType == "bool":
		return "true or false"
	case goType == "time.Duration":
		return "a duration like 5s"
	case strings.HasPrefix(goType, "[]"):
		return "a list"
	case goType == "string":
		return "a string"
	}
	return "a mapping"
}

// pathAtLine returns the field path of the key or value on line, e.g.
// "sensors[0].unit_grams"; "" when none is there. Where several fields share
// the line (a flow mapping), the one whose key or value is hint wins.
func pathAtLine(root *yaml.Node, line int, hint string) string {
	if hint != "" {
		if p := pathAt(root, line, hint); p != "" {
			return p
		}
	}
	return pathAt(root, line, "")
}

func pathAt(root *yaml.Node, line int, hint string) string {
	var walk func(n *yaml.Node, path string) string
	walk = func(n *yaml.Node, path string) string {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				if p := walk(c, path); p != "" {
					return p
				}
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				p := k.Value
				if path != "" {
					p = path + "." + k.Value
				}
				if sub := walk(v, p); sub != "" {
					return sub
				}
				if (k.Line == line || (v.Kind == yaml.ScalarNode && v.Line == line)) &&
					(hint == "" || k.Value == hint || (v.Kind == yaml.ScalarNode && v.Value == hint)) {
					return p
				}
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				p := fmt.Sprintf("%s[%d]", path, i)
				if sub := walk(c, p); sub != "" {
					return sub
				}
				if c.Kind == yaml.ScalarNode && c.Line == line && (hint == "" || c.Value == hint) {
					return p
				}
			}
		}
		return ""
	}
	return walk(root, "")
}
