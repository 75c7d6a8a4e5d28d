// Package config reads and checks Shelfgate's YAML configuration file.
//
// Parse decodes strictly (unknown keys and wrong types are errors with their
// line), fills defaults, and Validate reports every problem with its field
// path and line, e.g.
//
//	configs/x.yaml:14: sensors[2].pins.clk: "GPIO99" is not a pin name (GPIO0-GPIO27)
//
// Sensor entries and the simulation section are kept undecoded: their
// owners (cmd/shelfgate's sensor kinds and simulation) decode them with
// DecodeSensor and DecodeSimulation, just as strictly, and add their checks
// to Load and Validate, so every problem still comes with file, line and
// field path and this package depends on no sensor or simulator.
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
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

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
	CalibrationFile string `yaml:"calibration_file"`
	// Simulation replaces the hardware with simulators. Its content is
	// decoded by the program that runs the simulation (DecodeSimulation),
	// so this package does not depend on the simulators; nil when absent.
	Simulation *Section `yaml:"simulation"`
	Metrics    Metrics  `yaml:"metrics"`
	Log        Log      `yaml:"log"`
	// Models configures model updates over MQTT (modelsync.go).
	Models ModelSync `yaml:"models"`

	root       *yaml.Node // for line numbers; nil for Default()
	file       string
	decodeErrs Errors // values Load could not decode, reported by Validate
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

// TypeHX711 is the sensor type of an entry without a type.
const TypeHX711 = "hx711"

// Sensor is one entry of the sensors list: its name and type, and the rest
// of the entry kept undecoded. Each sensor kind owns its typed
// configuration; the program that knows the kinds decodes the entry with
// DecodeSensor.
type Sensor struct {
	Name string `yaml:"name"`
	Type string `yaml:"type"` // default hx711

	node *yaml.Node
}

// Section is a part of the file kept undecoded for its owner to decode.
type Section struct{ node *yaml.Node }

// UnmarshalYAML keeps the section's node.
func (s *Section) UnmarshalYAML(n *yaml.Node) error {
	s.node = n
	return nil
}

// UnmarshalYAML keeps the entry's node for DecodeSensor.
func (s *Sensor) UnmarshalYAML(n *yaml.Node) error {
	var head struct {
		Name string `yaml:"name"`
		Type string `yaml:"type"`
	}
	if err := n.Decode(&head); err != nil {
		return err
	}
	s.Name, s.Type, s.node = head.Name, head.Type, n
	return nil
}

// Metrics configures the Prometheus endpoint (/metrics, /healthz, /readyz).
type Metrics struct {
	Listen     string     `yaml:"listen"`      // host:port; empty = off
	StatusPage StatusPage `yaml:"status_page"` // the page at / on Listen
}

// Log configures logging.
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // text or json
}

// Default returns a configuration that runs the simulated demo (with the
// simulation's own defaults) against the embedded broker with an outbox in
// the working directory.
func Default() *Config {
	c := &Config{
		Gateway:    Gateway{ID: "gw-01", Site: "demo"},
		Broker:     Broker{URLs: []string{Embedded}},
		Outbox:     Outbox{Path: "shelfgate-outbox.db"},
		Simulation: &Section{node: &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}},
	}
	c.fill()
	return c
}

// Defaults of the configuration file. This is the one place they are
// written down: cmd/shelfgate passes every value to the outbox and the
// uplink explicitly, so their own zero-value defaults never apply to the
// daemon. Sensor kinds own their defaults (see DecodeSensor).
const (
	DefaultEmbeddedAddr       = "127.0.0.1:1883"
	DefaultKeepAlive          = 10 * time.Second
	DefaultMaxBytes           = ByteSize(1 << 30)
	DefaultCommitInterval     = 5 * time.Millisecond
	DefaultCommitRows         = 8192
	DefaultBatchRecords       = 500
	DefaultWindow             = 32
	DefaultAckTimeout         = 20 * time.Second
	DefaultAckMode            = "broker"
	DefaultConsumerAckTimeout = 30 * time.Second
	DefaultFlushTimeout       = 5 * time.Second
	DefaultLogLevel           = "info"
	DefaultLogFormat          = "text"
)

// fill sets defaults for fields left empty.
func (c *Config) fill() {
	if len(c.Broker.URLs) == 0 {
		c.Broker.URLs = []string{Embedded}
	}
	setDefault(&c.Broker.EmbeddedAddr, DefaultEmbeddedAddr)
	setDefault(&c.Broker.KeepAlive, DefaultKeepAlive)
	setDefault(&c.Outbox.MaxBytes, DefaultMaxBytes)
	setDefault(&c.Outbox.CommitInterval, DefaultCommitInterval)
	setDefault(&c.Outbox.CommitRows, DefaultCommitRows)
	setDefault(&c.Uplink.BatchRecords, DefaultBatchRecords)
	setDefault(&c.Uplink.Window, DefaultWindow)
	setDefault(&c.Uplink.AckTimeout, DefaultAckTimeout)
	setDefault(&c.Uplink.AckMode, DefaultAckMode)
	setDefault(&c.Uplink.ConsumerAckTimeout, DefaultConsumerAckTimeout)
	setDefault(&c.Uplink.FlushTimeout, DefaultFlushTimeout)
	setDefault(&c.Log.Level, DefaultLogLevel)
	setDefault(&c.Log.Format, DefaultLogFormat)
	for i := range c.Sensors {
		setDefault(&c.Sensors[i].Type, TypeHX711)
	}
	if c.Simulation != nil && (c.Simulation.node == nil || c.Simulation.node.Tag == "!!null") {
		c.Simulation = nil // "simulation:" with nothing after it
	}
}

// setDefault sets *field to def when it is the zero value.
func setDefault[T comparable](field *T, def T) {
	var zero T
	if *field == zero {
		*field = def
	}
}

// Check is a validation added by the caller: the checks of the sensor
// kinds and of the simulation, which this package does not know. It
// reports problems with c.Errorf, so they name the file, line and field path.
type Check func(c *Config) Errors

// Load reads, parses, applies the environment and validates the file at
// path, running checks after the built-in validation; every problem found
// is reported at once: a value of the wrong type or an unreadable password
// file is reported beside the other problems, not instead of them.
func Load(path string, checks ...Check) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	c, decodeErrs, err := parse(f)
	if err != nil {
		return nil, prefixFile(path, err)
	}
	c.file = path
	c.decodeErrs = decodeErrs
	for i := range c.decodeErrs {
		c.decodeErrs[i].File = path
	}
	if err := c.ApplyEnv(os.LookupEnv); err != nil {
		var es Errors
		if !errors.As(err, &es) {
			return nil, prefixFile(path, err)
		}
		c.decodeErrs = append(c.decodeErrs, es...)
	}
	if err := c.Validate(checks...); err != nil {
		return nil, err
	}
	return c, nil
}

// File returns the path the configuration was loaded from ("" if parsed).
func (c *Config) File() string { return c.file }

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

// Parse decodes a configuration strictly and fills defaults. It does not
// validate. A value of the wrong type is an error here; Load reports it
// beside the other problems instead.
func Parse(r io.Reader) (*Config, error) {
	c, decodeErrs, err := parse(r)
	if err != nil {
		return nil, err
	}
	if len(decodeErrs) > 0 {
		return nil, decodeErrs
	}
	return c, nil
}

// parse decodes r: err when it is no YAML at all; decodeErrs for the
// values that could not be decoded (wrong type, unknown key, bad size),
// with c holding everything else and defaults for the rest.
func parse(r io.Reader) (c *Config, decodeErrs Errors, err error) {
	data, err := io.ReadAll(io.LimitReader(r, 1<<20+1))
	if err != nil {
		return nil, nil, fmt.Errorf("config: read: %w", err)
	}
	if len(data) > 1<<20 {
		return nil, nil, Errors{{Msg: "file is larger than 1 MiB"}}
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, nil, syntaxErrors(err, data)
	}
	c = &Config{}
	if len(bytes.TrimSpace(data)) > 0 {
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
			var te *yaml.TypeError
			if !errors.As(err, &te) {
				return nil, nil, yamlErrors(err, &root)
			}
			// yaml.v3 decodes all it can and lists the rest.
			errors.As(yamlErrors(err, &root), &decodeErrs)
		}
	}
	c.root = &root
	c.fill()
	return c, decodeErrs, nil
}

// syntaxErrors reports a YAML syntax error. yaml.v3 reports an unclosed
// flow collection ("[" or "{") at the line before the one it opens on; the
// line of the opening bracket is what the operator must fix.
func syntaxErrors(err error, data []byte) error {
	es := yamlErrors(err, nil).(Errors)
	for i, e := range es {
		if e.Line > 0 && (strings.Contains(e.Msg, "did not find expected ',' or ']'") || strings.Contains(e.Msg, "did not find expected ',' or '}'")) {
			open := "["
			if strings.HasSuffix(e.Msg, "'}'") {
				open = "{"
			}
			if l := unclosedLine(data, open, e.Line); l > 0 {
				es[i].Line = l
			}
		}
	}
	return es
}

// unclosedLine returns the line, at or after from, of the first flow
// collection opened with open and not closed on its line; 0 if none.
func unclosedLine(data []byte, open string, from int) int {
	closer := map[string]string{"[": "]", "{": "}"}[open]
	for i, l := range strings.Split(string(data), "\n") {
		if i+1 < from {
			continue
		}
		if k := strings.IndexByte(l, '#'); k >= 0 {
			l = l[:k]
		}
		if strings.Count(l, open) > strings.Count(l, closer) {
			return i + 1
		}
	}
	return 0
}

var yamlLine = regexp.MustCompile(`^line (\d+): (.*)$`)

var (
	unknownKey  = regexp.MustCompile(`^field (\S+) not found in type \S+$`)
	quotedValue = regexp.MustCompile(`^"([^"]*)" `)
	wrongType   = regexp.MustCompile(`^cannot unmarshal !!(\w+) ` + "`" + `(.*)` + "`" + ` into (\S+)$`)
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
			} else if g := quotedValue.FindStringSubmatch(e.Msg); g != nil {
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

// Within reports whether the field path is field or inside it:
// Within("sensors[0].pins.clk", "sensors[0].pins") is true.
func Within(path, field string) bool {
	return path == field || strings.HasPrefix(path, field+".") || strings.HasPrefix(path, field+"[")
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
			return Errors{c.Errorf("broker.password_file", "%v", err)}
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

// Errorf returns the problem at field path (e.g. "sensors[2].pins.clk"),
// with the file and the line of the field (or its nearest parent present).
func (c *Config) Errorf(path, format string, args ...any) Error {
	return Error{File: c.file, Line: c.line(path), Path: path, Msg: fmt.Sprintf(format, args...)}
}

// problems collects Errors during validation.
type problems struct {
	c  *Config
	es Errors
}

func (p *problems) add(path, format string, args ...any) {
	p.es = append(p.es, p.c.Errorf(path, format, args...))
}

// Validate checks every field, then runs checks, and returns Errors listing
// all problems. The values Load could not decode are listed first; a field
// that could not be decoded is not checked again (its zero value would only
// add a second, misleading message).
func (c *Config) Validate(checks ...Check) error {
	p := &problems{c: c}
	c.validateGateway(p)
	c.validateBroker(p)
	c.validateOutbox(p)
	c.validateUplink(p)
	c.validateSensors(p)
	c.validateRest(p)
	c.validateModels(p)
	c.validateStatusPage(p)
	for _, check := range checks {
		p.es = append(p.es, check(c)...)
	}
	es := append(Errors(nil), c.decodeErrs...)
	for _, e := range p.es {
		if !c.undecoded(e.Path) {
			es = append(es, e)
		}
	}
	if len(es) == 0 {
		return nil
	}
	return es
}

// undecoded reports whether the field at path, or one it is inside, could
// not be decoded.
func (c *Config) undecoded(path string) bool {
	if path == "" {
		return false
	}
	for _, e := range c.decodeErrs {
		if Within(path, e.Path) {
			return true
		}
	}
	return false
}

func (c *Config) validateGateway(p *problems) {
	if err := gateway.ValidTopicLevel(c.Gateway.ID); err != nil {
		p.add("gateway.id", "%v", err)
	} else if c.Gateway.ID == "all" {
		p.add("gateway.id", `"all" is reserved: shelfgate/v1/<site>/all/... addresses every gateway of the site (model offers, desired config)`)
	}
	if err := gateway.ValidTopicLevel(c.Gateway.Site); err != nil {
		p.add("gateway.site", "%v", err)
	}
}

func (c *Config) validateBroker(p *problems) {
	for i, u := range c.Broker.URLs {
		if err := checkBrokerURL(u); err != nil {
			p.add(fmt.Sprintf("broker.urls[%d]", i), "%q %v", u, err)
		}
	}
	if c.usesEmbedded() {
		if err := checkListen(c.Broker.EmbeddedAddr); err != nil {
			p.add("broker.embedded_addr", "%q %v", c.Broker.EmbeddedAddr, err)
		}
	}
	if c.Broker.KeepAlive < time.Second || c.Broker.KeepAlive > time.Hour {
		p.add("broker.keepalive", "%s must be between 1s and 1h", c.Broker.KeepAlive)
	}
	t := c.Broker.TLS
	if t != (TLS{}) {
		for i, u := range c.Broker.URLs {
			if plainURL(u) {
				p.add(fmt.Sprintf("broker.urls[%d]", i), "%q is a plain (unencrypted) URL but broker.tls is set; use ssl:// or mqtts:// (port 8883), or remove the tls block", u)
			}
		}
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		p.add("broker.tls", "cert_file and key_file go together (mutual TLS needs both)")
	}
	for _, f := range []struct{ path, file string }{{"broker.tls.ca_file", t.CAFile}, {"broker.tls.cert_file", t.CertFile}, {"broker.tls.key_file", t.KeyFile}} {
		if f.file != "" {
			if _, err := os.Stat(f.file); err != nil {
				p.add(f.path, "%q: %v", f.file, errors.Unwrap(err))
			}
		}
	}
}

func (c *Config) validateOutbox(p *problems) {
	if c.Outbox.Path == "" {
		p.add("outbox.path", "is empty")
	} else if dir := filepath.Dir(c.Outbox.Path); dir != "." {
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			p.add("outbox.path", "directory %q does not exist", dir)
		}
	}
	if c.Outbox.MaxBytes < 1<<20 {
		p.add("outbox.max_bytes", "%s is below the minimum of 1MiB", c.Outbox.MaxBytes)
	}
	if c.Outbox.CommitInterval < 100*time.Microsecond || c.Outbox.CommitInterval > 10*time.Second {
		p.add("outbox.commit_interval", "%s must be between 100µs and 10s", c.Outbox.CommitInterval)
	}
	if c.Outbox.CommitRows < 1 || c.Outbox.CommitRows > 1<<20 {
		p.add("outbox.commit_rows", "%d must be between 1 and 1048576", c.Outbox.CommitRows)
	}
}

func (c *Config) validateUplink(p *problems) {
	u := c.Uplink
	if u.BatchRecords < 1 || u.BatchRecords > 10000 {
		p.add("uplink.batch_records", "%d must be between 1 and 10000", u.BatchRecords)
	}
	if u.Window < 1 || u.Window > 1000 {
		p.add("uplink.window", "%d must be between 1 and 1000", u.Window)
	}
	if u.AckTimeout < time.Second {
		p.add("uplink.ack_timeout", "%s is below 1s", u.AckTimeout)
	}
	if u.AckMode != "broker" && u.AckMode != "consumer" {
		p.add("uplink.ack_mode", "%q is not broker or consumer", u.AckMode)
	}
	if u.ConsumerAckTimeout < time.Second {
		p.add("uplink.consumer_ack_timeout", "%s is below 1s", u.ConsumerAckTimeout)
	}
	if u.ReplayRate < 0 {
		p.add("uplink.replay_rate", "%d is negative (0 means no cap)", u.ReplayRate)
	}
	if u.FlushTimeout < 0 {
		p.add("uplink.flush_timeout", "%s is negative", u.FlushTimeout)
	}
}

// validateSensors checks what every sensor entry has: a unique name. Types
// and everything else are checked by the sensor kinds (a Check).
func (c *Config) validateSensors(p *problems) {
	names := map[string]int{}
	for i, s := range c.Sensors {
		path := fmt.Sprintf("sensors[%d]", i)
		if s.Name == "" {
			p.add(path+".name", "is empty")
		} else if j, dup := names[s.Name]; dup {
			p.add(path+".name", "%q is already used by sensors[%d]", s.Name, j)
		} else {
			names[s.Name] = i
		}
	}
	if c.Simulation == nil && len(c.Sensors) == 0 {
		p.add("sensors", "no sensors and no simulation: nothing to read")
	}
}

func (c *Config) validateRest(p *problems) {
	if c.CalibrationFile != "" {
		if _, err := os.Stat(c.CalibrationFile); err != nil {
			p.add("calibration_file", "%q: %v", c.CalibrationFile, errors.Unwrap(err))
		}
	}
	if c.Metrics.Listen != "" {
		if err := checkListen(c.Metrics.Listen); err != nil {
			p.add("metrics.listen", "%q %v (e.g. 127.0.0.1:9464)", c.Metrics.Listen, err)
		}
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		p.add("log.level", "%q is not one of debug, info, warn, error", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		p.add("log.format", "%q is not text or json", c.Log.Format)
	}
}

// DecodeSensor decodes sensors[i] strictly onto v, a pointer to the
// kind's configuration struct (holding its defaults): a key v has no field
// for (other than name and type) and a value of the wrong type are Errors
// with their line and field path.
func (c *Config) DecodeSensor(i int, v any) error {
	n := c.Sensors[i].node
	if n == nil {
		return nil // built in code, not parsed
	}
	return c.decodeStrict(n, fmt.Sprintf("sensors[%d]", i), v, "name", "type")
}

// DecodeSimulation decodes the simulation section strictly onto v, as
// DecodeSensor does. It does nothing when there is no simulation section.
func (c *Config) DecodeSimulation(v any) error {
	if c.Simulation == nil {
		return nil
	}
	return c.decodeStrict(c.Simulation.node, "simulation", v)
}

func (c *Config) decodeStrict(n *yaml.Node, path string, v any, allowed ...string) error {
	var es Errors
	c.unknownKeys(n, reflect.TypeOf(v), path, allowed, &es)
	if err := n.Decode(v); err != nil {
		var yes Errors
		if errors.As(yamlErrors(err, c.root), &yes) {
			for _, e := range yes {
				e.File = c.file
				es = append(es, e)
			}
		}
	}
	if len(es) == 0 {
		return nil
	}
	return es
}

// unknownKeys reports the keys of mapping n that t (a struct, or a pointer
// to one) has no yaml field for, descending into nested structs and lists
// of structs.
func (c *Config) unknownKeys(n *yaml.Node, t reflect.Type, path string, allowed []string, es *Errors) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() == reflect.Slice && n.Kind == yaml.SequenceNode {
		for i, e := range n.Content {
			c.unknownKeys(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i), nil, es)
		}
		return
	}
	if n.Kind != yaml.MappingNode || t.Kind() != reflect.Struct {
		return
	}
	fields := map[string]reflect.Type{}
	for _, a := range allowed {
		fields[a] = nil
	}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		fields[name] = f.Type
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		ft, ok := fields[k.Value]
		p := path + "." + k.Value
		if !ok {
			*es = append(*es, Error{File: c.file, Line: k.Line, Path: p, Msg: fmt.Sprintf("unknown key %q", k.Value)})
			continue
		}
		if ft != nil {
			c.unknownKeys(n.Content[i+1], ft, p, nil, es)
		}
	}
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

// checkListen checks a listen address: host:port with a port 0-65535
// (0 picks a free port).
func checkListen(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return errors.New("is not host:port")
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		if _, lerr := net.LookupPort("tcp", port); lerr == nil {
			return nil // a service name such as "mqtt"
		}
		return fmt.Errorf("has port %q, not a number", port)
	}
	if n < 0 || n > 65535 {
		return fmt.Errorf("has port %d out of range 0-65535", n)
	}
	return nil
}

// plainURL reports whether the broker URL u is unencrypted.
func plainURL(u string) bool {
	scheme, _, ok := strings.Cut(u, "://")
	if !ok {
		return false
	}
	switch strings.ToLower(scheme) {
	case "tcp", "mqtt", "ws":
		return true
	}
	return false
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
