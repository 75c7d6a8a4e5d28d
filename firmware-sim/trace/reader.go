package trace

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// Reader reads a trace record by record. It is not safe for concurrent
// use.
type Reader struct {
	csv    *csv.Reader
	lines  *lineLimiter
	cols   []string
	idx    map[string]int
	unit   Unit
	labels bool
	last   time.Time
	rows   int
}

// NewReader reads and checks the header of the trace in r. The header names
// the columns, in any order: time, plate, cell, exactly one of code and
// grams, and optionally label_action, label_facing, label_sku and
// label_qty (all four or none). Lines starting with '#' are comments.
func NewReader(r io.Reader) (*Reader, error) {
	ll := &lineLimiter{r: bufio.NewReader(r), line: 1}
	c := csv.NewReader(ll)
	c.Comment = '#'
	c.ReuseRecord = true
	hdr, err := c.Read()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &ParseError{Line: 1, Err: fmt.Errorf("%w: empty trace, the header line is required", ErrHeader)}
		}
		return nil, csvError(ll, err)
	}
	line, _ := c.FieldPos(0)
	hdr[0] = strings.TrimPrefix(hdr[0], "\ufeff") // spreadsheets write a byte order mark
	rd := &Reader{csv: c, lines: ll, idx: map[string]int{}}
	known := map[string]bool{ColTime: true, ColPlate: true, ColCell: true, ColCode: true, ColGrams: true,
		ColLabelAction: true, ColLabelFacing: true, ColLabelSKU: true, ColLabelQty: true}
	for i, h := range hdr {
		if !known[h] {
			return nil, &ParseError{Line: line, Column: h, Err: fmt.Errorf("%w: unknown column %q (column %d)", ErrHeader, h, i+1)}
		}
		if _, dup := rd.idx[h]; dup {
			return nil, &ParseError{Line: line, Column: h, Err: fmt.Errorf("%w: column %q appears twice", ErrHeader, h)}
		}
		rd.idx[h] = i
		rd.cols = append(rd.cols, h)
	}
	for _, h := range []string{ColTime, ColPlate, ColCell} {
		if _, ok := rd.idx[h]; !ok {
			return nil, &ParseError{Line: line, Column: h, Err: fmt.Errorf("%w: required column %q missing", ErrHeader, h)}
		}
	}
	_, code := rd.idx[ColCode]
	_, grams := rd.idx[ColGrams]
	switch {
	case code && grams:
		return nil, &ParseError{Line: line, Column: ColGrams, Err: fmt.Errorf("%w: both code and grams; a trace has one of them", ErrHeader)}
	case code:
		rd.unit = Code
	case grams:
		rd.unit = Grams
	default:
		return nil, &ParseError{Line: line, Column: ColCode, Err: fmt.Errorf("%w: neither code nor grams column", ErrHeader)}
	}
	n := 0
	for _, h := range []string{ColLabelAction, ColLabelFacing, ColLabelSKU, ColLabelQty} {
		if _, ok := rd.idx[h]; ok {
			n++
		}
	}
	switch n {
	case 0:
	case 4:
		rd.labels = true
	default:
		return nil, &ParseError{Line: line, Err: fmt.Errorf("%w: label columns must be all four (label_action, label_facing, label_sku, label_qty) or none", ErrHeader)}
	}
	c.FieldsPerRecord = len(hdr)
	return rd, nil
}

// Unit returns whether the trace holds codes or grams.
func (r *Reader) Unit() Unit { return r.unit }

// Labels reports whether the trace has label columns.
func (r *Reader) Labels() bool { return r.labels }

// Columns returns the header.
func (r *Reader) Columns() []string { return append([]string(nil), r.cols...) }

// Rows returns the number of records read so far.
func (r *Reader) Rows() int { return r.rows }

// Read returns the next record, or io.EOF after the last one. Any other
// error is a *ParseError; reading after an error is not supported.
func (r *Reader) Read() (Record, error) {
	f, err := r.csv.Read()
	if err != nil {
		if errors.Is(err, io.EOF) {
			if r.lines.err != nil {
				return Record{}, &ParseError{Line: r.lines.line, Err: r.lines.err}
			}
			return Record{}, io.EOF
		}
		return Record{}, csvError(r.lines, err)
	}
	bad := func(col string, err error) (Record, error) {
		line, _ := r.csv.FieldPos(r.idx[col])
		return Record{}, &ParseError{Line: line, Column: col, Err: err}
	}
	var rec Record
	if rec.Time, err = parseTime(f[r.idx[ColTime]]); err != nil {
		return bad(ColTime, err)
	}
	if rec.Time.Before(r.last) {
		return bad(ColTime, fmt.Errorf("%w: %s after %s", ErrTimeBackward, rec.Time.Format(time.RFC3339Nano), r.last.Format(time.RFC3339Nano)))
	}
	if rec.Plate = f[r.idx[ColPlate]]; !validID(rec.Plate) {
		return bad(ColPlate, fmt.Errorf("%w: plate %q must be 1..%d of letters, digits and . _ / : -", ErrValue, rec.Plate, MaxIDLength))
	}
	cell, ok := parseInt(f[r.idx[ColCell]], 0, MaxCell)
	if !ok {
		return bad(ColCell, fmt.Errorf("%w: cell %q must be 0, 1, 2 or 3", ErrValue, f[r.idx[ColCell]]))
	}
	rec.Cell = int(cell)
	switch r.unit {
	case Code:
		s := f[r.idx[ColCode]]
		v, ok := parseInt(s, MinCode, MaxCode)
		if !ok {
			return bad(ColCode, fmt.Errorf("%w: code %q must be an integer between %d and %d", ErrValue, s, MinCode, MaxCode))
		}
		rec.Code = int32(v)
	case Grams:
		s := f[r.idx[ColGrams]]
		g, ok := parseGrams(s)
		if !ok {
			return bad(ColGrams, fmt.Errorf("%w: grams %q must be a finite decimal number with magnitude at most %g", ErrValue, s, float64(MaxGrams)))
		}
		rec.Grams = g
	}
	if r.labels {
		if rec.Label, err = r.label(f, bad); err != nil {
			return Record{}, err
		}
	}
	r.last = rec.Time
	r.rows++
	return rec, nil
}

func (r *Reader) label(f []string, bad func(string, error) (Record, error)) (*Label, error) {
	action, facing, sku, qty := f[r.idx[ColLabelAction]], f[r.idx[ColLabelFacing]], f[r.idx[ColLabelSKU]], f[r.idx[ColLabelQty]]
	if action == "" {
		for _, cv := range [...][2]string{{ColLabelFacing, facing}, {ColLabelSKU, sku}, {ColLabelQty, qty}} {
			if col, v := cv[0], cv[1]; v != "" {
				_, err := bad(col, fmt.Errorf("%w: %s %q on a row without label_action", ErrValue, col, v))
				return nil, err
			}
		}
		return nil, nil
	}
	l := Label{Action: action, Facing: -1, SKU: sku}
	if facing != "" {
		n, ok := parseInt(facing, 0, MaxFacing)
		if !ok {
			_, err := bad(ColLabelFacing, fmt.Errorf("%w: label_facing %q must be an integer between 0 and %d", ErrValue, facing, MaxFacing))
			return nil, err
		}
		l.Facing = int(n)
	}
	if qty == "" {
		_, err := bad(ColLabelQty, fmt.Errorf("%w: label_qty is required with label_action", ErrValue))
		return nil, err
	}
	n, ok := parseInt(qty, 1, MaxQty)
	if !ok {
		_, err := bad(ColLabelQty, fmt.Errorf("%w: label_qty %q must be an integer between 1 and %d", ErrValue, qty, MaxQty))
		return nil, err
	}
	l.Qty = int(n)
	if col, err := checkLabel(l); err != nil {
		_, err := bad(col, err)
		return nil, err
	}
	return &l, nil
}

// csvError turns an encoding/csv error into a ParseError.
func csvError(ll *lineLimiter, err error) error {
	if ll.err != nil {
		return &ParseError{Line: ll.line, Err: ll.err}
	}
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return &ParseError{Line: pe.Line, Err: fmt.Errorf("%w: %v", ErrValue, pe.Err)}
	}
	return &ParseError{Line: ll.line, Err: err}
}

// lineLimiter passes bytes through until a line exceeds MaxLineBytes, then
// fails with ErrLineTooLong. It counts lines for errors about the input.
type lineLimiter struct {
	r    *bufio.Reader
	n    int // bytes since the last newline
	line int
	err  error
}

func (l *lineLimiter) Read(p []byte) (int, error) {
	if l.err != nil {
		return 0, l.err
	}
	n, err := l.r.Read(p)
	for i := 0; i < n; i++ {
		if p[i] == '\n' {
			l.n = 0
			l.line++
			continue
		}
		l.n++
		if l.n > MaxLineBytes {
			l.err = ErrLineTooLong
			return i, l.err
		}
	}
	return n, err
}
