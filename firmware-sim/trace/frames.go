package trace

import (
	"errors"
	"fmt"
	"io"
	"math"
	"time"
)

// FrameOpts configures LoadFrames.
type FrameOpts struct {
	// Rate is the sample rate of the trace in samples per second (10 or
	// 80 for an HX711). Sample k of a plate is due at the first record's
	// time + k/Rate; a record more than a quarter period off the grid is
	// an error.
	Rate float64
	// CountsPerGram converts a grams trace to codes: code = round(grams ×
	// CountsPerGram), clamped to 24 bits. Required for grams traces,
	// ignored for code traces.
	CountsPerGram float64
	// MaxFrames bounds the frames (samples of one plate) held in memory;
	// 0 means DefaultMaxFrames.
	MaxFrames int
}

// DefaultMaxFrames is 4 Mi frames, 80 MiB: an hour of 14 plates at 80
// samples/s.
const DefaultMaxFrames = 4 << 20

// ErrGrid is wrapped by the ParseError of a record that is not on the
// trace's sample grid, or a second sample of the same cell at one time.
var ErrGrid = errors.New("not on the sample grid")

// Frames is a trace held in memory as lockstep frames: sample k of plate p
// is the four cells' codes at Start + k/Rate. It implements
// firmware-sim/hx711sim's PlateSource, so a recorded trace can drive the
// simulated HX711s of a plate and the gateway read it through the periph
// driver as if it were the shelf. Its methods are safe for concurrent use
// once loaded.
type Frames struct {
	Start  time.Time
	Rate   float64
	Unit   Unit     // of the file; the frames are codes either way
	Plates []string // plate IDs, in order of first appearance
	Labels []FrameLabel
	// Gaps counts the frames in which a cell the plate has lacks a
	// sample (a sample dropped by the logger, or a plate whose recording
	// starts later or ends sooner than the others'): each holds the
	// cell's previous value, or its first. Cells a plate never has (cells
	// 1–3 of a one-cell bin) read 0 and are not counted.
	Gaps int

	frames [][]frame
}

type frame struct {
	code [4]int32
	seen uint8 // bit c: cell c has a sample in this frame
}

// FrameLabel is a label of a trace with the plate index and sample it
// belongs to.
type FrameLabel struct {
	Plate int
	K     int64
	Time  time.Time
	Label Label
}

// LoadFrames reads the whole trace from r (positioned after the header)
// into frames.
func LoadFrames(r *Reader, o FrameOpts) (*Frames, error) {
	if o.Rate <= 0 || math.IsNaN(o.Rate) || math.IsInf(o.Rate, 0) || o.Rate > 1e4 {
		return nil, fmt.Errorf("trace: load frames: rate %v must be > 0 and at most 10000 samples/s", o.Rate)
	}
	if r.Unit() == Grams && (!(o.CountsPerGram > 0) || math.IsInf(o.CountsPerGram, 0)) {
		return nil, fmt.Errorf("trace: load frames: counts per gram %v must be > 0 for a grams trace", o.CountsPerGram)
	}
	if o.MaxFrames <= 0 {
		o.MaxFrames = DefaultMaxFrames
	}
	period := float64(time.Second) / o.Rate
	f := &Frames{Rate: o.Rate, Unit: r.Unit()}
	ids := map[string]int{}
	total := 0
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if r.Rows() == 1 {
			f.Start = rec.Time
		}
		off := float64(rec.Time.Sub(f.Start)) / period
		k := int64(math.Round(off))
		if math.Abs(off-float64(k)) > 0.25 {
			return nil, &ParseError{Line: r.Line(), Column: ColTime, Err: fmt.Errorf("%w: %s is %.2f samples after the first record at %v samples/s", ErrGrid, rec.Time.Format(time.RFC3339Nano), off, o.Rate)}
		}
		p, ok := ids[rec.Plate]
		if !ok {
			p = len(f.Plates)
			ids[rec.Plate] = p
			f.Plates = append(f.Plates, rec.Plate)
			f.frames = append(f.frames, nil)
		}
		fs := f.frames[p]
		if grow := k + 1 - int64(len(fs)); grow > 0 {
			if int64(total)+grow > int64(o.MaxFrames) {
				return nil, &ParseError{Line: r.Line(), Column: ColTime, Err: fmt.Errorf("%w: more than %d frames in memory", ErrValue, o.MaxFrames)}
			}
			total += int(grow)
			fs = append(fs, make([]frame, grow)...)
			f.frames[p] = fs
		}
		fr := &fs[k]
		if fr.seen&(1<<rec.Cell) != 0 {
			return nil, &ParseError{Line: r.Line(), Column: ColCell, Err: fmt.Errorf("%w: plate %s cell %d has two samples at sample %d", ErrGrid, rec.Plate, rec.Cell, k)}
		}
		fr.seen |= 1 << rec.Cell
		if r.Unit() == Code {
			fr.code[rec.Cell] = rec.Code
		} else {
			fr.code[rec.Cell] = int32(min(max(math.Round(rec.Grams*o.CountsPerGram), MinCode), MaxCode))
		}
		if rec.Label != nil {
			f.Labels = append(f.Labels, FrameLabel{Plate: p, K: k, Time: rec.Time, Label: *rec.Label})
		}
	}
	if len(f.frames) == 0 {
		return nil, &ParseError{Line: max(r.Line(), 1), Err: fmt.Errorf("%w: the trace has no samples", ErrValue)}
	}
	// All plates run to the same length, and missing samples hold.
	n := 0
	for _, fs := range f.frames {
		n = max(n, len(fs))
	}
	for p, fs := range f.frames {
		fs = append(fs, make([]frame, n-len(fs))...)
		f.frames[p] = fs
		var present uint8
		for _, fr := range fs {
			present |= fr.seen
		}
		for c := range 4 {
			if present&(1<<c) == 0 {
				continue
			}
			first := 0
			for fs[first].seen&(1<<c) == 0 {
				first++
			}
			prev := fs[first].code[c]
			for k := range fs {
				if fs[k].seen&(1<<c) != 0 {
					prev = fs[k].code[c]
				} else {
					fs[k].code[c] = prev
					f.Gaps++
				}
			}
		}
	}
	return f, nil
}

// Len returns the number of samples per plate.
func (f *Frames) Len() int64 {
	if len(f.frames) == 0 {
		return 0
	}
	return int64(len(f.frames[0]))
}

// PlateCodes returns the codes of the four cells of plate (an index into
// Plates) at sample k. Before the first sample it returns the first, after
// the last the last: the shelf stays as recorded. It panics if plate is
// out of range or the trace is empty.
func (f *Frames) PlateCodes(plate int, k int64) [4]int32 {
	fs := f.frames[plate]
	return fs[min(max(k, 0), int64(len(fs)-1))].code
}
