package main

import (
	"fmt"
	"io"

	"github.com/prometheus/client_golang/prometheus"
	"periph.io/x/devices/v3/mfrc522"

	"github.com/shelfgate/shelfgate/sensors/rfid"
)

// mfrc522Config is an RFID reader on SPI with reset and IRQ pins.
type mfrc522Config struct {
	SPI  string      `yaml:"spi"` // periph SPI port name, e.g. SPI0.0
	Pins mfrc522Pins `yaml:"pins"`
}

type mfrc522Pins struct {
	Rst string `yaml:"rst"`
	IRQ string `yaml:"irq"`
}

func newMFRC522Config() sensorConfig { return &mfrc522Config{} }

func (c *mfrc522Config) check(_ sensorEnv, report func(field, format string, args ...any)) {
	if c.SPI == "" {
		report("spi", "is empty (e.g. SPI0.0)")
	}
	checkPins(report, []string{"rst", "irq"}, []string{c.Pins.Rst, c.Pins.IRQ})
}

var _ claimer = (*mfrc522Config)(nil)

// claims: the SPI bus (and with it its pins), its device node, the reset
// and IRQ pins.
func (c *mfrc522Config) claims() []claim {
	var cl []claim
	if bus, dev := spiBus(c.SPI); bus != "" {
		cl = append(cl, claim{field: "spi", bus: bus, dev: dev, write: true})
	}
	for _, p := range []struct{ field, pin string }{{"pins.rst", c.Pins.Rst}, {"pins.irq", c.Pins.IRQ}} {
		if pinName(p.pin) == nil {
			cl = append(cl, claim{field: p.field, pin: p.pin})
		}
	}
	return cl
}

func (c *mfrc522Config) open(name string, b buses, _ sensorEnv) (*sensor, error) {
	port, err := b.spi(c.SPI)
	if err != nil {
		return nil, err
	}
	rst, err := b.pinOut(c.Pins.Rst)
	if err != nil {
		return nil, err
	}
	irq, err := b.pinIn(c.Pins.IRQ)
	if err != nil {
		return nil, err
	}
	dev, err := mfrc522.NewSPI(port, rst, irq)
	if err != nil {
		return nil, fmt.Errorf("mfrc522 on %s: %w", c.SPI, err)
	}
	// With its reset pin, so reboot-sensors can hard-reset the reader.
	src, err := rfid.New(name, rfid.FromDevReset(dev, rst), rfid.Options{})
	if err != nil {
		return nil, err
	}
	return &sensor{
		source:  src,
		collect: func(ch chan<- prometheus.Metric) { collectRFID(ch, src, name) },
		report: func(w io.Writer) {
			st := src.Stats()
			fmt.Fprintf(w, "     %s: %d polls, %d tags, %d failed polls\n", src.Stream(), st.Polls, st.Reads, st.Errors)
		},
		// No tag in the field is normal; a reader that never answers is not.
		probe: func(_, _ int64) error {
			st := src.Stats()
			switch {
			case st.Polls == 0:
				return fmt.Errorf("reader on %s was never polled", c.SPI)
			case st.Errors == st.Polls:
				return fmt.Errorf("all %d polls of the reader on %s failed (wiring, power, or the wrong SPI port?)", st.Polls, c.SPI)
			}
			return nil
		},
	}, nil
}

// The RFID readers' metrics, labelled sensor.
var (
	rfidPolls  = prometheus.NewDesc("shelfgate_rfid_polls_total", "Reader polls.", []string{"sensor"}, nil)
	rfidReads  = prometheus.NewDesc("shelfgate_rfid_reads_total", "Tag presentations emitted.", []string{"sensor"}, nil)
	rfidEmpty  = prometheus.NewDesc("shelfgate_rfid_empty_polls_total", "Polls with no tag in the field.", []string{"sensor"}, nil)
	rfidErrors = prometheus.NewDesc("shelfgate_rfid_errors_total", "Failed polls: bus errors, bad answers, no reader.", []string{"sensor"}, nil)
)

func collectRFID(ch chan<- prometheus.Metric, src *rfid.Source, name string) {
	st := src.Stats()
	for d, v := range map[*prometheus.Desc]int64{rfidPolls: st.Polls, rfidReads: st.Reads, rfidEmpty: st.Empty, rfidErrors: st.Errors} {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), name)
	}
}
