// Package trace reads and writes load-cell trace files: the samples of the
// cells of shelf plates (or one-cell bins) over time, as raw HX711 codes or
// grams, with optional ground-truth labels, in the CSV format documented in
// docs/trace-format.md. A user records their own shelves into a trace and
// scores the gateway on it; the simulator writes scenarios as traces
// (RecordPlates) so that the same scoring runs on both.
//
// The Reader is strict and streaming: the header is required, every value
// is checked, times never go backwards, and every error is a *ParseError
// naming the line and the column. The Writer checks records the same way,
// so it never writes a file the Reader rejects.
package trace

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Column names.
const (
	ColTime        = "time"
	ColPlate       = "plate"
	ColCell        = "cell"
	ColCode        = "code"
	ColGrams       = "grams"
	ColLabelAction = "label_action"
	ColLabelFacing = "label_facing"
	ColLabelSKU    = "label_sku"
	ColLabelQty    = "label_qty"
)

// Unit is what a trace's sample values are.
type Unit int

// Units.
const (
	// Code is the raw HX711 code, channel A gain 128, a signed 24-bit
	// integer (column "code").
	Code Unit = iota + 1
	// Grams is the load on the cell in grams (column "grams").
	Grams
)

// String implements fmt.Stringer; it is the column name.
func (u Unit) String() string {
	switch u {
	case Code:
		return ColCode
	case Grams:
		return ColGrams
	}
	return fmt.Sprintf("Unit(%d)", int(u))
}

// Limits of values.
const (
	MinCode     = -0x800000
	MaxCode     = 0x7FFFFF
	MaxCell     = 3    // cells 0..3: front-left, front-right, back-left, back-right
	MaxGrams    = 1e7  // |grams| bound
	MaxIDLength = 64   // plate and SKU
	MaxQty      = 1000 // units moved in one visit
	MaxFacing   = 255
	// MaxLineBytes bounds a line, so a file without newlines cannot
	// exhaust memory.
	MaxLineBytes = 4096
)

// Label actions.
const (
	ActionPick = "pick"
	ActionPut  = "put"
)

// Label is the ground truth of one visit to a plate, carried by one row of
// that plate at the time the visit settled.
type Label struct {
	Action string // ActionPick or ActionPut
	Facing int    // facing (SKU lane) index on the plate, -1 if not given
	SKU    string // "" if not given
	Qty    int    // units moved, >= 1
}

// Record is one row: one sample of one cell.
type Record struct {
	Time  time.Time
	Plate string // plate or bin ID: letters, digits and . _ / : -
	Cell  int    // 0..3
	Code  int32  // the sample when the trace's Unit is Code
	Grams float64
	Label *Label // nil: no label on this row
}

// ParseError is the error of a bad line. Column is the column name, or ""
// when the error is about the whole line.
type ParseError struct {
	Line   int
	Column string
	Err    error
}

func (e *ParseError) Error() string {
	if e.Column == "" {
		return fmt.Sprintf("trace: line %d: %v", e.Line, e.Err)
	}
	return fmt.Sprintf("trace: line %d, column %s: %v", e.Line, e.Column, e.Err)
}

func (e *ParseError) Unwrap() error { return e.Err }

// Errors wrapped by ParseError.
var (
	ErrHeader       = errors.New("bad header")
	ErrValue        = errors.New("bad value")
	ErrTimeBackward = errors.New("time goes backwards")
	ErrLineTooLong  = fmt.Errorf("line longer than %d bytes", MaxLineBytes)
)

// parseTime accepts RFC 3339 with optional fractional seconds, or unix
// seconds with an optional fraction of up to 9 digits.
func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, fmt.Errorf("%w: empty time", ErrValue)
	}
	if strings.ContainsAny(s, "T-:") {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return time.Time{}, fmt.Errorf("%w: time %q is neither RFC 3339 nor unix seconds", ErrValue, s)
		}
		if t.Year() < 1970 || t.Year() > 9999 {
			return time.Time{}, fmt.Errorf("%w: time %q out of range 1970..9999", ErrValue, s)
		}
		return t, nil
	}
	sec, frac, _ := strings.Cut(s, ".")
	if sec == "" || len(sec) > 12 || !allDigits(sec) || len(frac) > 9 || !allDigits(frac) || (strings.HasSuffix(s, ".") && frac == "") {
		return time.Time{}, fmt.Errorf("%w: time %q is neither RFC 3339 nor unix seconds (digits, optional . and up to 9 digits)", ErrValue, s)
	}
	n, _ := strconv.ParseInt(sec, 10, 64) // at most 12 digits
	var ns int64
	if frac != "" {
		ns, _ = strconv.ParseInt(frac+strings.Repeat("0", 9-len(frac)), 10, 64)
	}
	return time.Unix(n, ns).UTC(), nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// validID reports whether s is a plate or SKU identifier.
func validID(s string) bool {
	if s == "" || len(s) > MaxIDLength {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '.' || c == '_' || c == '/' || c == ':' || c == '-':
		default:
			return false
		}
	}
	return true
}

// parseInt parses a decimal integer in [lo, hi] without sign oddities:
// an optional '-' and digits.
func parseInt(s string, lo, hi int64) (int64, bool) {
	d := strings.TrimPrefix(s, "-")
	if d == "" || len(d) > 10 || !allDigits(d) {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < lo || n > hi {
		return 0, false
	}
	return n, true
}

func parseGrams(s string) (float64, bool) {
	if s == "" || len(s) > 32 || strings.ContainsAny(s, "xXpP_iInN") { // no hex, no Inf/NaN
		return 0, false
	}
	g, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(g) || math.IsInf(g, 0) || math.Abs(g) > MaxGrams {
		return 0, false
	}
	return g, true
}

// checkRecord validates what a Writer writes.
func checkRecord(r Record, unit Unit, labels bool) (string, error) {
	switch {
	case r.Time.IsZero() || r.Time.Year() < 1970 || r.Time.Year() > 9999:
		return ColTime, fmt.Errorf("%w: time %s out of range 1970..9999", ErrValue, r.Time)
	case !validID(r.Plate):
		return ColPlate, fmt.Errorf("%w: plate %q must be 1..%d of letters, digits and . _ / : -", ErrValue, r.Plate, MaxIDLength)
	case r.Cell < 0 || r.Cell > MaxCell:
		return ColCell, fmt.Errorf("%w: cell %d must be between 0 and %d", ErrValue, r.Cell, MaxCell)
	case unit == Code && (r.Code < MinCode || r.Code > MaxCode):
		return ColCode, fmt.Errorf("%w: code %d outside the 24-bit range", ErrValue, r.Code)
	case unit == Grams && (math.IsNaN(r.Grams) || math.IsInf(r.Grams, 0) || math.Abs(r.Grams) > MaxGrams):
		return ColGrams, fmt.Errorf("%w: grams %v must be finite with magnitude at most %g", ErrValue, r.Grams, MaxGrams)
	}
	if r.Label == nil {
		return "", nil
	}
	if !labels {
		return ColLabelAction, fmt.Errorf("%w: label on a trace without label columns", ErrValue)
	}
	return checkLabel(*r.Label)
}

func checkLabel(l Label) (string, error) {
	switch {
	case l.Action != ActionPick && l.Action != ActionPut:
		return ColLabelAction, fmt.Errorf("%w: label_action %q must be pick or put", ErrValue, l.Action)
	case l.Facing < -1 || l.Facing > MaxFacing:
		return ColLabelFacing, fmt.Errorf("%w: label_facing %d must be between 0 and %d", ErrValue, l.Facing, MaxFacing)
	case l.SKU != "" && !validID(l.SKU):
		return ColLabelSKU, fmt.Errorf("%w: label_sku %q must be 1..%d of letters, digits and . _ / : -", ErrValue, l.SKU, MaxIDLength)
	case l.Qty < 1 || l.Qty > MaxQty:
		return ColLabelQty, fmt.Errorf("%w: label_qty %d must be between 1 and %d", ErrValue, l.Qty, MaxQty)
	}
	return "", nil
}
