// Package calibration reads and writes load-cell calibration files and
// computes a two-point calibration from raw HX711 codes.
//
// A load cell's raw code is linear in the load:
// grams = (code − Offset) / CountsPerGram, where Offset is the code of the
// empty bin (tare) and CountsPerGram the scale. The HX711 is a 24-bit ADC
// (datasheet: https://cdn.sparkfun.com/datasheets/Sensors/ForceFlex/hx711_english.pdf),
// so codes lie in −8388608..8388607.
//
// # File format
//
// A UTF-8 text file, one channel per line:
//
//	# anything after '#' is a comment; blank lines are ignored
//	shelfgate-calibration v1
//	bin=shelf-01/bin-03 offset=-81234 counts_per_gram=412.55 measured=2026-11-29
//	bin=shelf-01/bin-04 offset=10442 counts_per_gram=-398.1 measured=2026-11-28
//
// The first line that is not blank or a comment must be the header
// "shelfgate-calibration v1". Each channel line holds exactly the four
// fields bin, offset, counts_per_gram and measured as key=value pairs
// separated by spaces or tabs, in any order:
//
//   - bin: the bin id, 1 to 64 characters of A-Z a-z 0-9 . _ - / :,
//     unique in the file;
//   - offset: the tare code, a decimal int32 within the HX711's 24-bit range;
//   - counts_per_gram: a finite, non-zero decimal number (negative when the
//     cell is wired so that load lowers the code);
//   - measured: the date of the measurement, YYYY-MM-DD (UTC), after 0001-01-01.
//
// Parse rejects anything else with a *ParseError naming the line and field.
// Write produces the canonical form (fields in the order above, numbers in
// their shortest exact form), so Parse(Write(f)) == f.
package calibration

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Header is the first line of a calibration file.
const Header = "shelfgate-calibration v1"

// 24-bit two's-complement limits of HX711 codes.
const (
	MaxCode int32 = 0x7FFFFF
	MinCode int32 = -0x800000
)

// MaxBinLen is the longest bin id.
const MaxBinLen = 64

// dateLayout is the format of the measured field.
const dateLayout = "2006-01-02"

// Calibration is the calibration of one load-cell channel.
type Calibration struct {
	Bin           string    // bin id, e.g. shelf-01/bin-03
	Offset        int32     // raw code of the empty bin (tare)
	CountsPerGram float64   // scale; never 0
	Measured      time.Time // date measured, UTC midnight
}

// Grams converts a raw code with c.
func (c Calibration) Grams(code int32) float64 {
	return float64(code-c.Offset) / c.CountsPerGram
}

// Validate checks c as Parse would.
func (c Calibration) Validate() error {
	if err := checkBin(c.Bin); err != nil {
		return &FieldError{Field: "bin", Err: err}
	}
	if c.Offset < MinCode || c.Offset > MaxCode {
		return &FieldError{Field: "offset", Err: fmt.Errorf("%d outside the 24-bit range %d..%d", c.Offset, MinCode, MaxCode)}
	}
	if c.CountsPerGram == 0 || math.IsNaN(c.CountsPerGram) || math.IsInf(c.CountsPerGram, 0) {
		return &FieldError{Field: "counts_per_gram", Err: fmt.Errorf("%v is not a finite non-zero number", c.CountsPerGram)}
	}
	if c.Measured.IsZero() {
		return &FieldError{Field: "measured", Err: errors.New("no date")}
	}
	return nil
}

// File is a calibration file: one Calibration per bin.
type File struct {
	Channels []Calibration
}

// Lookup returns the calibration of bin.
func (f File) Lookup(bin string) (Calibration, bool) {
	i := slices.IndexFunc(f.Channels, func(c Calibration) bool { return c.Bin == bin })
	if i < 0 {
		return Calibration{}, false
	}
	return f.Channels[i], true
}

// ParseError is an error at a line of a calibration file.
type ParseError struct {
	Line  int    // 1-based
	Field string // the field at fault, "" for the line as a whole
	Err   error
}

func (e *ParseError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("calibration: line %d: %v", e.Line, e.Err)
	}
	return fmt.Sprintf("calibration: line %d: field %s: %v", e.Line, e.Field, e.Err)
}

func (e *ParseError) Unwrap() error { return e.Err }

// FieldError is an invalid field of a Calibration given to Write.
type FieldError struct {
	Bin   string
	Field string
	Err   error
}

func (e *FieldError) Error() string {
	if e.Bin == "" {
		return fmt.Sprintf("calibration: field %s: %v", e.Field, e.Err)
	}
	return fmt.Sprintf("calibration: bin %s: field %s: %v", e.Bin, e.Field, e.Err)
}

func (e *FieldError) Unwrap() error { return e.Err }

// Sentinel errors, wrapped by ParseError, FieldError and FromMeasurements.
var (
	ErrNoHeader        = errors.New("missing header \"" + Header + "\"")
	ErrDuplicateBin    = errors.New("duplicate bin")
	ErrTooFewSamples   = errors.New("calibration: too few samples")
	ErrZeroSpan        = errors.New("calibration: loaded and empty codes do not differ")
	ErrTooNoisy        = errors.New("calibration: samples too noisy")
	ErrSaturated       = errors.New("calibration: saturated ADC code")
	ErrBadReference    = errors.New("calibration: reference weight must be a finite positive number of grams")
	errMissingField    = errors.New("missing")
	errUnknownField    = errors.New("unknown field")
	errRepeatedField   = errors.New("given twice")
	errNotKeyValuePair = errors.New("not a key=value pair")
)

// maxLine bounds a line, so a corrupt file cannot make Parse buffer without limit.
const maxLine = 1024

// Parse reads a calibration file.
func Parse(r io.Reader) (File, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 256), maxLine)
	var f File
	seen := map[string]bool{}
	header := false
	line := 0
	for sc.Scan() {
		line++
		text := sc.Text()
		if i := strings.IndexByte(text, '#'); i >= 0 {
			text = text[:i]
		}
		text = strings.TrimRight(text, " \t\r")
		if strings.TrimLeft(text, " \t") == "" {
			continue
		}
		if !header {
			if strings.TrimLeft(text, " \t") != Header {
				return File{}, &ParseError{Line: line, Err: ErrNoHeader}
			}
			header = true
			continue
		}
		c, err := parseLine(text)
		if err != nil {
			err.Line = line
			return File{}, err
		}
		if seen[c.Bin] {
			return File{}, &ParseError{Line: line, Field: "bin", Err: fmt.Errorf("%w %q", ErrDuplicateBin, c.Bin)}
		}
		seen[c.Bin] = true
		f.Channels = append(f.Channels, c)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return File{}, &ParseError{Line: line + 1, Err: fmt.Errorf("longer than %d bytes", maxLine)}
		}
		return File{}, fmt.Errorf("calibration: read: %w", err)
	}
	if !header {
		return File{}, &ParseError{Line: line + 1, Err: ErrNoHeader}
	}
	return f, nil
}

func parseLine(text string) (Calibration, *ParseError) {
	var c Calibration
	var have [4]bool
	names := [4]string{"bin", "offset", "counts_per_gram", "measured"}
	for _, kv := range strings.FieldsFunc(text, func(r rune) bool { return r == ' ' || r == '\t' }) {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return c, &ParseError{Err: fmt.Errorf("%q: %w", kv, errNotKeyValuePair)}
		}
		i := slices.Index(names[:], k)
		if i < 0 {
			return c, &ParseError{Field: k, Err: errUnknownField}
		}
		if have[i] {
			return c, &ParseError{Field: k, Err: errRepeatedField}
		}
		have[i] = true
		var err error
		switch i {
		case 0:
			err = checkBin(v)
			c.Bin = v
		case 1:
			var n int64
			n, err = strconv.ParseInt(v, 10, 32)
			if err == nil && (n < int64(MinCode) || n > int64(MaxCode)) {
				err = fmt.Errorf("%d outside the 24-bit range %d..%d", n, MinCode, MaxCode)
			}
			c.Offset = int32(n)
		case 2:
			c.CountsPerGram, err = strconv.ParseFloat(v, 64)
			if err == nil && (c.CountsPerGram == 0 || math.IsInf(c.CountsPerGram, 0) || math.IsNaN(c.CountsPerGram)) {
				err = fmt.Errorf("%q is not a finite non-zero number", v)
			}
		case 3:
			c.Measured, err = time.Parse(dateLayout, v)
			if err == nil && c.Measured.IsZero() {
				err = errors.New("0001-01-01 is not a date of measurement")
			}
		}
		if err != nil {
			var ne *strconv.NumError
			if errors.As(err, &ne) {
				err = fmt.Errorf("%q: %w", v, ne.Err)
			}
			return c, &ParseError{Field: k, Err: err}
		}
	}
	for i, ok := range have {
		if !ok {
			return c, &ParseError{Field: names[i], Err: errMissingField}
		}
	}
	return c, nil
}

func checkBin(b string) error {
	if b == "" || len(b) > MaxBinLen {
		return fmt.Errorf("bin id must be 1 to %d characters", MaxBinLen)
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("._-/:", c) >= 0) {
			return fmt.Errorf("bin id %q: character %q not allowed", b, c)
		}
	}
	return nil
}

// Write writes f in the canonical form. It rejects invalid channels and
// duplicate bins with an error naming them. Measured is written as its UTC
// date: a time of day is not kept.
func Write(w io.Writer, f File) error {
	var b strings.Builder
	b.WriteString(Header + "\n")
	seen := map[string]bool{}
	for i, c := range f.Channels {
		if err := c.Validate(); err != nil {
			var fe *FieldError
			if errors.As(err, &fe) {
				fe.Bin = c.Bin
				if fe.Bin == "" {
					fe.Bin = fmt.Sprintf("#%d", i)
				}
			}
			return err
		}
		if seen[c.Bin] {
			return &FieldError{Bin: c.Bin, Field: "bin", Err: ErrDuplicateBin}
		}
		seen[c.Bin] = true
		fmt.Fprintf(&b, "bin=%s offset=%d counts_per_gram=%s measured=%s\n",
			c.Bin, c.Offset, strconv.FormatFloat(c.CountsPerGram, 'g', -1, 64), c.Measured.UTC().Format(dateLayout))
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("calibration: write: %w", err)
	}
	return nil
}

// Two-point calibration limits.
const (
	// MinSamples is the fewest codes FromMeasurements takes per point.
	MinSamples = 3
	// MaxNoise is the largest robust standard deviation (1.4826 × the
	// median absolute deviation) of either sample set, as a fraction of the
	// span between the two medians: above it the calibration would be off by
	// more than about 1% and FromMeasurements refuses it.
	MaxNoise = 0.01
)

// FromMeasurements computes a two-point calibration from codes read with
// the bin empty and with referenceGrams on it: Offset is the median of
// emptyCodes, CountsPerGram the span between the medians divided by
// referenceGrams. Medians make a single glitch harmless. It fails with
// ErrTooFewSamples, ErrSaturated, ErrBadReference, ErrZeroSpan or
// ErrTooNoisy (see MaxNoise). Bin and Measured are left for the caller.
func FromMeasurements(emptyCodes []int32, loadedCodes []int32, referenceGrams float64) (Calibration, error) {
	if !(referenceGrams > 0) || math.IsInf(referenceGrams, 0) {
		return Calibration{}, fmt.Errorf("%w: %v", ErrBadReference, referenceGrams)
	}
	if len(emptyCodes) < MinSamples || len(loadedCodes) < MinSamples {
		return Calibration{}, fmt.Errorf("%w: %d empty and %d loaded, need %d of each", ErrTooFewSamples, len(emptyCodes), len(loadedCodes), MinSamples)
	}
	for _, set := range [][]int32{emptyCodes, loadedCodes} {
		for _, c := range set {
			if c >= MaxCode || c <= MinCode {
				return Calibration{}, fmt.Errorf("%w: %d", ErrSaturated, c)
			}
		}
	}
	e, eMAD := MedianMAD(emptyCodes)
	l, lMAD := MedianMAD(loadedCodes)
	span := l - e
	if span == 0 {
		return Calibration{}, fmt.Errorf("%w (median %v)", ErrZeroSpan, e)
	}
	noise := 1.4826 * max(eMAD, lMAD)
	if noise > MaxNoise*math.Abs(span) {
		return Calibration{}, fmt.Errorf("%w: robust σ %.1f counts is %.2f%% of the %.0f-count span (max %.0f%%)", ErrTooNoisy, noise, 100*noise/math.Abs(span), span, 100*MaxNoise)
	}
	return Calibration{Offset: int32(math.Round(e)), CountsPerGram: span / referenceGrams}, nil
}

// MedianMAD returns the median of codes and their median absolute
// deviation: the robust level and scatter FromMeasurements judges a
// calibration by, for callers (a tare) that need the same measure.
func MedianMAD(codes []int32) (med, mad float64) {
	v := make([]float64, len(codes))
	for i, c := range codes {
		v[i] = float64(c)
	}
	med = median(v)
	for i := range v {
		v[i] = math.Abs(v[i] - med)
	}
	return med, median(v)
}

func median(v []float64) float64 {
	slices.Sort(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}
