package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/shelfgate/shelfgate/gateway"
	"github.com/shelfgate/shelfgate/gateway/classify"
	"github.com/shelfgate/shelfgate/gateway/config"
	"github.com/shelfgate/shelfgate/gateway/outbox"
	"github.com/shelfgate/shelfgate/gateway/shelf"
	"github.com/shelfgate/shelfgate/gateway/statuspage"
	"github.com/shelfgate/shelfgate/gateway/uplink"
	"github.com/shelfgate/shelfgate/sensors/calibration"
	"github.com/shelfgate/shelfgate/sensors/env"
	"github.com/shelfgate/shelfgate/sensors/loadcell"
	"github.com/shelfgate/shelfgate/sensors/rfid"
	"github.com/shelfgate/shelfgate/sensors/scanner"
)

// rebaseliner forgets a bin's settled level after its readings moved (a
// tare or calibration), so the move is not taken for a pick
// (shelf.Detector.Rebaseline).
type rebaseliner interface {
	Rebaseline(bin string) bool
}

// flusher asks the uplink for a delivery attempt now (uplink.Uplink.Flush).
type flusher interface {
	Flush() (connected bool)
}

// outboxStats reports the backlog (outbox.Outbox.Stats).
type outboxStatser interface {
	Stats(ctx context.Context) (outbox.Stats, error)
}

// rebooter re-initialises a sensor's hardware while its source runs and
// returns when that is done (loadcell.Source, scanner.Source,
// rfid.Source, env.Source): reboot-sensors. A source that has no Reboot
// is reported as not supported for its kind.
type rebooter interface {
	Reboot(ctx context.Context) error
}

var (
	_ rebooter      = (*loadcell.Source)(nil)
	_ rebooter      = (*scanner.Source)(nil)
	_ rebooter      = (*rfid.Source)(nil)
	_ rebooter      = (*env.Source)(nil)
	_ rebaseliner   = (*shelf.Detector)(nil)
	_ flusher       = (*uplink.Uplink)(nil)
	_ outboxStatser = (*outbox.Outbox)(nil)
)

// commandDeps is what the gateway's commands act on. A nil dependency
// makes its command answer with an error saying it is not available here.
type commandDeps struct {
	Birth func() map[string]any // status fields (the birth status)
	// Cells are the live load-cell calibrations by bin; CalibrationFile is
	// where tare and calibrate persist them (calibration.Save, as
	// the status page does).
	Cells           statuspage.Calibrator
	CalibrationFile string
	Detectors       []rebaseliner // told of every tare and calibration
	Level           *slog.LevelVar
	Uplink          flusher
	Outbox          outboxStatser
	Sensors         []sensorRef // the configured sensors (reboot-sensors)
	Samples         *sampleBook // correct: recent plate events to label
	Now             func() time.Time
	Log             *slog.Logger
}

// Bounds of command arguments.
const (
	maxReferenceGrams = statuspage.MaxReference
	tareMaxNoiseGram  = statuspage.TareMaxNoiseGram
	// calibrateMinCounts is the least span, in ADC counts, between the
	// empty offset and the reference: less is a reference too light for
	// the cell (or no reference on it at all).
	calibrateMinCounts = 1000
	maxCorrectQty      = 10000
)

// errArgs marks an error in a command's arguments; the message names the
// field.
var errArgs = errors.New("bad args")

// argError returns an error about the field args.<field>.
func argError(field, format string, a ...any) error {
	return fmt.Errorf("%w: args.%s: %s", errArgs, field, fmt.Sprintf(format, a...))
}

// decodeArgs decodes a command's args strictly into v: unknown fields,
// wrong types and trailing data are errors naming the field.
func decodeArgs(args json.RawMessage, v any) error {
	if len(args) == 0 {
		args = []byte("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(args))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return argError(te.Field, "%s is not a %s", te.Value, te.Type)
		}
		if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			return fmt.Errorf("%w: args: unknown field %s", errArgs, f)
		}
		return fmt.Errorf("%w: args: %v", errArgs, err)
	}
	if dec.More() {
		return fmt.Errorf("%w: args: data after the object", errArgs)
	}
	return nil
}

// gatewayCommands are the commands of a running gateway: the built-ins
// (ping, status) and tare, calibrate, flush, set-log-level,
// reboot-sensors and correct. See docs/protocol.md for each one's args
// and result.
func gatewayCommands(d commandDeps) map[string]commandFunc {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	cmds := builtinCommands(nil)
	cmds["status"] = d.status
	cmds["tare"] = d.tare
	cmds["calibrate"] = d.calibrate
	cmds["flush"] = d.flush
	cmds["set-log-level"] = d.setLogLevel
	cmds["reboot-sensors"] = d.rebootSensors
	cmds["correct"] = d.correct
	return cmds
}

// status answers the birth fields plus the backlog per class and the log
// level.
func (d commandDeps) status(ctx context.Context, args json.RawMessage) (any, []gateway.Record, error) {
	if err := decodeArgs(args, &struct{}{}); err != nil {
		return nil, nil, err
	}
	out := map[string]any{}
	if d.Birth != nil {
		for k, v := range d.Birth() {
			out[k] = v
		}
	}
	if d.Outbox != nil {
		bl, err := d.backlog(ctx)
		if err != nil {
			return nil, nil, err
		}
		out["outbox"] = bl
	}
	if d.Level != nil {
		out["log_level"] = strings.ToLower(d.Level.Level().String())
	}
	return out, nil, nil
}

// backlogReport is the backlog part of the status and flush results.
type backlogReport struct {
	Backlog    int64            `json:"backlog"`
	ByClass    map[string]int64 `json:"by_class"`
	Shed       map[string]int64 `json:"shed"`
	OldestAgeS float64          `json:"oldest_age_s"`
}

func (d commandDeps) backlog(ctx context.Context) (backlogReport, error) {
	st, err := d.Outbox.Stats(ctx)
	if err != nil {
		return backlogReport{}, fmt.Errorf("outbox stats: %w", err)
	}
	return backlogReport{
		Backlog: st.Backlog,
		ByClass: map[string]int64{
			gateway.ClassTelemetry.String(): st.Backlog - st.Events - st.Samples,
			gateway.ClassEvent.String():     st.Events,
			gateway.ClassSamples.String():   st.Samples,
		},
		Shed: map[string]int64{
			gateway.ClassTelemetry.String(): st.ShedTelemetry,
			gateway.ClassEvent.String():     st.ShedEvents,
			gateway.ClassSamples.String():   st.ShedSamples,
		},
		OldestAgeS: math.Round(st.OldestAge.Seconds()*1000) / 1000,
	}, nil
}

type binArgs struct {
	Bin string `json:"bin"`
}

// tareResult is the result of tare and calibrate.
type tareResult struct {
	Bin              string  `json:"bin"`
	Key              string  `json:"key"` // the bin's key in the calibration file
	Offset           int32   `json:"offset"`
	CountsPerGram    float64 `json:"counts_per_gram"`
	OldOffset        int32   `json:"old_offset"`
	OldCountsPerGram float64 `json:"old_counts_per_gram"`
	GramsBefore      float64 `json:"grams_before"` // what the bin read with the old calibration
	Samples          int     `json:"samples"`
	File             string  `json:"file"`
	Rebaselined      bool    `json:"rebaselined"` // a detector re-took the bin's level
}

// steadyCodes returns the bin's recent codes, their median and the current
// calibration, refusing a bin that saturates or is not steady.
func (d commandDeps) steadyCodes(bin string) (statuspage.CellCalibration, []int32, float64, error) {
	if d.Cells == nil {
		return statuspage.CellCalibration{}, nil, 0, errors.New("this gateway has no load cells to calibrate")
	}
	if d.CalibrationFile == "" {
		return statuspage.CellCalibration{}, nil, 0, fmt.Errorf("no calibration file is configured (calibration_file): a change to bin %s would not survive a restart", bin)
	}
	cur, err := d.Cells.Calibration(bin)
	if err != nil {
		return cur, nil, 0, argError("bin", "%q: %v", bin, err)
	}
	codes, err := d.Cells.RecentCodes(bin)
	if err != nil {
		return cur, nil, 0, fmt.Errorf("bin %s: %w", bin, err)
	}
	if len(codes) < calibration.MinSamples {
		return cur, nil, 0, fmt.Errorf("bin %s: only %d recent codes, need %d (is the load cell reading?)", bin, len(codes), calibration.MinSamples)
	}
	for _, c := range codes {
		if c >= calibration.MaxCode || c <= calibration.MinCode {
			return cur, nil, 0, fmt.Errorf("bin %s: %w: %d", bin, calibration.ErrSaturated, c)
		}
	}
	med, mad := calibration.MedianMAD(codes)
	if sigma := 1.4826 * mad / math.Abs(cur.CountsPerGram); sigma > tareMaxNoiseGram {
		return cur, nil, 0, fmt.Errorf("bin %s is not steady (recent readings scatter by %.1f g, max %.1f g): wait until it settles", bin, sigma, tareMaxNoiseGram)
	}
	return cur, codes, med, nil
}

// apply persists the new calibration of bin (the same atomic write as the
// status page), applies it live and re-baselines the detectors.
func (d commandDeps) apply(kind, bin string, cur statuspage.CellCalibration, offset int32, cpg float64, codes []int32, med float64) (tareResult, error) {
	now := d.Now().UTC()
	cal := calibration.Calibration{Bin: cur.Key, Offset: offset, CountsPerGram: cpg,
		Measured: time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)}
	if err := cal.Validate(); err != nil {
		return tareResult{}, fmt.Errorf("bin %s: %s would be invalid: %w", bin, kind, err)
	}
	if err := calibration.Save(d.CalibrationFile, cal); err != nil {
		return tareResult{}, fmt.Errorf("persist %s of bin %s: %w", kind, bin, err)
	}
	if err := d.Cells.SetCalibration(bin, offset, cpg); err != nil {
		return tareResult{}, fmt.Errorf("apply %s of bin %s (saved to %s): %w", kind, bin, d.CalibrationFile, err)
	}
	r := tareResult{Bin: bin, Key: cur.Key, Offset: offset, CountsPerGram: cpg, OldOffset: cur.Offset, OldCountsPerGram: cur.CountsPerGram,
		GramsBefore: math.Round((med-float64(cur.Offset))/cur.CountsPerGram*10) / 10, Samples: len(codes), File: d.CalibrationFile}
	for _, det := range d.Detectors {
		r.Rebaselined = det.Rebaseline(bin) || r.Rebaselined
	}
	d.Log.Info("command: calibration applied", "kind", kind, "bin", bin, "offset", offset, "counts_per_gram", cpg,
		"old_offset", cur.Offset, "old_counts_per_gram", cur.CountsPerGram, "file", d.CalibrationFile, "rebaselined", r.Rebaselined)
	return r, nil
}

// tare takes the median of the bin's recent codes as its new offset; the
// bin must be empty and steady.
func (d commandDeps) tare(_ context.Context, args json.RawMessage) (any, []gateway.Record, error) {
	var a binArgs
	if err := decodeArgs(args, &a); err != nil {
		return nil, nil, err
	}
	if a.Bin == "" {
		return nil, nil, argError("bin", "missing")
	}
	cur, codes, med, err := d.steadyCodes(a.Bin)
	if err != nil {
		return nil, nil, err
	}
	r, err := d.apply("tare", a.Bin, cur, int32(math.Round(med)), cur.CountsPerGram, codes, med)
	return r, nil, err
}

type calibrateArgs struct {
	Bin            string   `json:"bin"`
	ReferenceGrams *float64 `json:"reference_grams"`
}

// calibrate is the one-step calibration: with the reference weight on the
// bin, counts per gram become (median − offset) / reference_grams, where
// offset is the bin's current (tared) empty offset. Tare the empty bin
// first; the two commands together are the status page's two steps.
func (d commandDeps) calibrate(_ context.Context, args json.RawMessage) (any, []gateway.Record, error) {
	var a calibrateArgs
	if err := decodeArgs(args, &a); err != nil {
		return nil, nil, err
	}
	if a.Bin == "" {
		return nil, nil, argError("bin", "missing")
	}
	if a.ReferenceGrams == nil {
		return nil, nil, argError("reference_grams", "missing")
	}
	ref := *a.ReferenceGrams
	if !(ref > 0) || ref > maxReferenceGrams {
		return nil, nil, argError("reference_grams", "%v must be above 0 and at most %v grams", ref, maxReferenceGrams)
	}
	cur, codes, med, err := d.steadyCodes(a.Bin)
	if err != nil {
		return nil, nil, err
	}
	span := med - float64(cur.Offset)
	if math.Abs(span) < calibrateMinCounts {
		return nil, nil, fmt.Errorf("bin %s: the reading moved %.0f counts from the empty offset %d, less than %d: is the %v g reference on the bin (and was it tared empty)?",
			a.Bin, span, cur.Offset, calibrateMinCounts, ref)
	}
	r, err := d.apply("calibrate", a.Bin, cur, cur.Offset, span/ref, codes, med)
	return r, nil, err
}

// flush asks the uplink to deliver now and reports the backlog.
func (d commandDeps) flush(ctx context.Context, args json.RawMessage) (any, []gateway.Record, error) {
	if err := decodeArgs(args, &struct{}{}); err != nil {
		return nil, nil, err
	}
	if d.Uplink == nil || d.Outbox == nil {
		return nil, nil, errors.New("flush: no uplink on this gateway")
	}
	connected := d.Uplink.Flush()
	bl, err := d.backlog(ctx)
	if err != nil {
		return nil, nil, err
	}
	return map[string]any{"connected": connected, "outbox": bl}, nil, nil
}

// logLevels are the levels set-log-level accepts.
var logLevels = []string{"debug", "info", "warn", "error"}

type levelArgs struct {
	Level string `json:"level"`
}

// setLogLevel changes the daemon's log level until a restart, or a reload
// whose file changes log.level.
func (d commandDeps) setLogLevel(_ context.Context, args json.RawMessage) (any, []gateway.Record, error) {
	var a levelArgs
	if err := decodeArgs(args, &a); err != nil {
		return nil, nil, err
	}
	if d.Level == nil {
		return nil, nil, errors.New("set-log-level: the log level is fixed on this gateway")
	}
	l := strings.ToLower(a.Level)
	if !slices.Contains(logLevels, l) {
		return nil, nil, argError("level", "%q is not one of %s", a.Level, strings.Join(logLevels, ", "))
	}
	prev := strings.ToLower(d.Level.Level().String())
	d.Level.Set(parseLevel(l))
	d.Log.Info("command: log level set", "level", l, "previous", prev)
	return map[string]string{"level": l, "previous": prev}, nil, nil
}

type rebootArgs struct {
	Sensor string `json:"sensor"`
}

// sensorRef is a configured sensor as reboot-sensors sees it.
type sensorRef struct {
	Name, Kind string
	Reboot     rebooter // nil: its kind cannot be re-initialised
}

// rebootTimeout bounds one reboot-sensors: a load cell waits for its read
// in progress (at most its timeout) and its chip's power cycle; a scanner
// for its device to open again.
const rebootTimeout = 15 * time.Second

// Outcomes of one sensor in reboot-sensors' result.
const (
	rebootDone         = "rebooted"
	rebootNotSupported = "not_supported"
	rebootFailed       = "error"
)

// rebootOutcome is one sensor's line in the result of reboot-sensors.
type rebootOutcome struct {
	Sensor string `json:"sensor"`
	Kind   string `json:"kind"`
	Status string `json:"status"`          // rebooted, not_supported or error
	Error  string `json:"error,omitempty"` // why not
}

type rebootResult struct {
	Sensors      []rebootOutcome `json:"sensors"`
	Rebooted     int             `json:"rebooted"`
	NotSupported int             `json:"not_supported"`
	Failed       int             `json:"failed"`
}

// rebootSensors re-initialises the hardware of the named sensor, or of
// every sensor, while the gateway runs: each source does it between two of
// its reads, so nothing already read is lost (loadcell.Source.Reboot,
// scanner.Source.Reboot, rfid.Source.Reboot, env.Source.Reboot). The sensors are rebooted at once, in parallel;
// the result lists each one, in configuration order, as rebooted, not
// supported by its kind, or failed with the reason. A sensor name that is
// not configured is an argument error.
func (d commandDeps) rebootSensors(ctx context.Context, args json.RawMessage) (any, []gateway.Record, error) {
	var a rebootArgs
	if err := decodeArgs(args, &a); err != nil {
		return nil, nil, err
	}
	targets := d.Sensors
	if a.Sensor != "" {
		i := slices.IndexFunc(d.Sensors, func(s sensorRef) bool { return s.Name == a.Sensor })
		if i < 0 {
			names := make([]string, len(d.Sensors))
			for j, s := range d.Sensors {
				names[j] = s.Name
			}
			return nil, nil, argError("sensor", "%q is not a configured sensor (have %s)", a.Sensor, strings.Join(names, ", "))
		}
		targets = d.Sensors[i : i+1]
	}
	ctx, cancel := context.WithTimeout(ctx, rebootTimeout)
	defer cancel()
	res := rebootResult{Sensors: make([]rebootOutcome, len(targets))}
	var wg sync.WaitGroup
	for i, s := range targets {
		res.Sensors[i] = rebootOutcome{Sensor: s.Name, Kind: s.Kind, Status: rebootDone}
		if s.Reboot == nil {
			res.Sensors[i].Status, res.Sensors[i].Error = rebootNotSupported, fmt.Sprintf("not supported for this kind (%s)", s.Kind)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.Reboot.Reboot(ctx)
			switch {
			case errors.Is(err, loadcell.ErrNoPowerCycle) || errors.Is(err, rfid.ErrNoInit) || errors.Is(err, env.ErrNoReinit):
				res.Sensors[i].Status, res.Sensors[i].Error = rebootNotSupported, fmt.Sprintf("not supported for this kind (%s): %v", s.Kind, err)
			case err != nil:
				res.Sensors[i].Status, res.Sensors[i].Error = rebootFailed, err.Error()
			}
		}()
	}
	wg.Wait()
	for _, o := range res.Sensors {
		switch o.Status {
		case rebootDone:
			res.Rebooted++
			d.Log.Info("command: sensor rebooted", "sensor", o.Sensor, "kind", o.Kind)
		case rebootNotSupported:
			res.NotSupported++
		default:
			res.Failed++
			d.Log.Warn("command: sensor reboot failed", "sensor", o.Sensor, "kind", o.Kind, "err", o.Error)
		}
	}
	return res, nil, nil
}

// commandSet builds the commands of a running gateway from what run built:
// the load cells and calibration file (as the status page finds them), the
// detectors of the classifier chain, the sensors, and a sample book when
// the gateway has shelf plates (it must join the classifier chain after
// the plate links, and its Run commit the scan-confirmed samples).
func commandSet(cfg *config.Config, ss *sensorSet, chain []gateway.Classifier, windows windowSource, birth func() map[string]any,
	ob *outbox.Outbox, up *uplink.Uplink, level *slog.LevelVar, log *slog.Logger) (map[string]commandFunc, *sampleBook) {
	d := commandDeps{Birth: birth, Level: level, Uplink: up, Outbox: ob, Log: log,
		CalibrationFile: cmp(os.Getenv(envStatusCalFile), cfg.CalibrationFile)}
	cells := loadCells{}
	var plates []classify.Plate
	for _, s := range ss.sensors {
		ref := sensorRef{Name: s.name, Kind: s.kind}
		if r, ok := s.source.(rebooter); ok {
			ref.Reboot = r
		}
		d.Sensors = append(d.Sensors, ref)
		switch src := s.source.(type) {
		case *loadcell.Source:
			for _, b := range s.bins {
				cells[b.ID] = src
			}
		case *plateSource:
			plates = append(plates, src.plate)
		}
	}
	if len(cells) > 0 {
		d.Cells = cells
	}
	for _, c := range chain {
		if r, ok := c.(rebaseliner); ok {
			d.Detectors = append(d.Detectors, r)
		}
	}
	if len(plates) > 0 {
		// windows: the plates' WindowRecorders (kind_plate.go), so samples
		// carry the model window their event was decided on.
		d.Samples = newSampleBook(cfg.Gateway.ID, plates, windows)
	}
	return gatewayCommands(d), d.Samples
}
