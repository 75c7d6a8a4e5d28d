package features

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"sort"
	"unicode/utf8"
)

// Dataset file layout (version 1), all integers little-endian, f32 an IEEE
// binary32 bit pattern, str a u16 byte length then that many UTF-8 bytes
// (at most MaxString):
//
//	8      magic "SHGDSET\x00"
//	u16    format version, 1
//	u16    flags, 0
//	u32    F  features (1..MaxFeatures)
//	u32    C  classes (1..MaxClasses)
//	u32    M  metadata entries (0..MaxMeta)
//	u32    N  rows (1..MaxRows)
//	str×F  feature names (distinct, non-empty)
//	str×C  labels (distinct, non-empty)
//	M × (str key, str value)   keys non-empty, strictly ascending
//	N × (u16 label index < C, f32×F finite features)
//	u32    CRC-32C (Castagnoli) of every byte before it
//
// Nothing may follow the checksum.
const (
	DatasetMagic   = "SHGDSET\x00"
	DatasetVersion = 1

	MaxClasses = 1 << 12
	MaxMeta    = 256
	MaxRows    = 1 << 24
	MaxString  = 4096
	// DefaultMaxFileSize bounds what ReadDataset reads.
	DefaultMaxFileSize = 1 << 30

	fileHeader = 8 + 2 + 2 + 4*4
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// MarshalBinary encodes a valid dataset in the file format above.
func (d *Dataset) MarshalBinary() ([]byte, error) {
	if err := d.Validate(); err != nil {
		return nil, err
	}
	f, c, n := d.Features(), len(d.Labels), len(d.X)
	names := d.Names
	if len(names) == 0 {
		for i := 0; i < f; i++ {
			names = append(names, fmt.Sprintf("f%d", i))
		}
	}
	switch {
	case f < 1 || f > MaxFeatures:
		return nil, fmt.Errorf("features: dataset: %d features: must be between 1 and %d: %w", f, MaxFeatures, ErrData)
	case c < 1 || c > MaxClasses:
		return nil, fmt.Errorf("features: dataset: %d labels: must be between 1 and %d: %w", c, MaxClasses, ErrData)
	case len(d.Meta) > MaxMeta:
		return nil, fmt.Errorf("features: dataset: %d metadata entries: at most %d: %w", len(d.Meta), MaxMeta, ErrData)
	case n < 1 || n > MaxRows:
		return nil, fmt.Errorf("features: dataset: %d rows: must be between 1 and %d: %w", n, MaxRows, ErrData)
	}
	keys := make([]string, 0, len(d.Meta))
	for k := range d.Meta {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	b := make([]byte, 0, fileHeader+n*(2+4*f)+64*(f+c+len(keys))+4)
	b = append(b, DatasetMagic...)
	b = binary.LittleEndian.AppendUint16(b, DatasetVersion)
	b = binary.LittleEndian.AppendUint16(b, 0)
	for _, v := range []int{f, c, len(keys), n} {
		b = binary.LittleEndian.AppendUint32(b, uint32(v))
	}
	var err error
	str := func(what, s string) {
		if err != nil {
			return
		}
		if len(s) > MaxString || !utf8.ValidString(s) {
			err = fmt.Errorf("features: dataset: %s %.40q…: want valid UTF-8 of at most %d bytes: %w", what, s, MaxString, ErrData)
			return
		}
		b = binary.LittleEndian.AppendUint16(b, uint16(len(s)))
		b = append(b, s...)
	}
	for _, s := range names {
		str("feature name", s)
	}
	for _, s := range d.Labels {
		str("label", s)
	}
	for _, k := range keys {
		if k == "" {
			return nil, fmt.Errorf("features: dataset: empty metadata key: %w", ErrData)
		}
		str("metadata key", k)
		str("metadata "+k, d.Meta[k])
	}
	if err != nil {
		return nil, err
	}
	for i, x := range d.X {
		b = binary.LittleEndian.AppendUint16(b, uint16(d.Y[i]))
		for _, v := range x {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
		}
	}
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli)), nil
}

// WriteTo writes the encoded dataset to w.
func (d *Dataset) WriteTo(w io.Writer) (int64, error) {
	b, err := d.MarshalBinary()
	if err != nil {
		return 0, err
	}
	n, err := w.Write(b)
	if err != nil {
		return int64(n), fmt.Errorf("features: write dataset: %w", err)
	}
	return int64(n), nil
}

// ReadDataset reads a whole dataset file of at most DefaultMaxFileSize
// bytes from r and decodes it.
func ReadDataset(r io.Reader) (*Dataset, error) {
	b, err := io.ReadAll(io.LimitReader(r, DefaultMaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("features: read dataset: %w", err)
	}
	if len(b) > DefaultMaxFileSize {
		return nil, fmt.Errorf("features: dataset file larger than %d bytes: %w", DefaultMaxFileSize, ErrFormat)
	}
	return DecodeDataset(b)
}

// DecodeDataset decodes a dataset file. Data from outside is checked
// before use: magic, version, flags and checksum first, then every count
// against its limit and the bytes left before anything is allocated, then
// names, labels, label indices and values; no bytes may remain.
func DecodeDataset(b []byte) (*Dataset, error) {
	if len(b) < fileHeader+4 {
		return nil, fmt.Errorf("features: dataset: %d bytes, shorter than a header: %w", len(b), ErrFormat)
	}
	if string(b[:8]) != DatasetMagic {
		return nil, fmt.Errorf("features: dataset: magic %q, want %q: %w", b[:8], DatasetMagic, ErrFormat)
	}
	if v := binary.LittleEndian.Uint16(b[8:]); v != DatasetVersion {
		return nil, fmt.Errorf("features: dataset: format version %d, want %d: %w", v, DatasetVersion, ErrFormat)
	}
	if fl := binary.LittleEndian.Uint16(b[10:]); fl != 0 {
		return nil, fmt.Errorf("features: dataset: flags %#x, want 0: %w", fl, ErrFormat)
	}
	body, sum := b[:len(b)-4], binary.LittleEndian.Uint32(b[len(b)-4:])
	if got := crc32.Checksum(body, castagnoli); got != sum {
		return nil, fmt.Errorf("features: dataset: checksum %08x, stored %08x: %w", got, sum, ErrFormat)
	}
	r := &reader{b: body, off: 12}
	f, c, m, n := int(r.u32()), int(r.u32()), int(r.u32()), int(r.u32())
	switch {
	case f < 1 || f > MaxFeatures:
		return nil, fmt.Errorf("features: dataset: feature count %d: must be between 1 and %d: %w", f, MaxFeatures, ErrFormat)
	case c < 1 || c > MaxClasses:
		return nil, fmt.Errorf("features: dataset: class count %d: must be between 1 and %d: %w", c, MaxClasses, ErrFormat)
	case m > MaxMeta:
		return nil, fmt.Errorf("features: dataset: metadata count %d: at most %d: %w", m, MaxMeta, ErrFormat)
	case n < 1 || n > MaxRows:
		return nil, fmt.Errorf("features: dataset: row count %d: must be between 1 and %d: %w", n, MaxRows, ErrFormat)
	}
	// Each string takes at least 2 bytes, each row exactly 2+4F.
	if need := uint64(2*(f+c+2*m)) + uint64(n)*uint64(2+4*f); need > uint64(r.left()) {
		return nil, fmt.Errorf("features: dataset: %d features, %d classes, %d metadata entries and %d rows need at least %d bytes, %d left: %w", f, c, m, n, need, r.left(), ErrFormat)
	}
	d := &Dataset{Names: make([]string, f), Labels: make([]string, c)}
	for i := range d.Names {
		d.Names[i] = r.str(fmt.Sprintf("feature name %d", i))
	}
	for i := range d.Labels {
		d.Labels[i] = r.str(fmt.Sprintf("label %d", i))
	}
	prev := ""
	for i := 0; i < m; i++ {
		k := r.str(fmt.Sprintf("metadata key %d", i))
		v := r.str(fmt.Sprintf("metadata value %d", i))
		if r.err == nil && (k == "" || (i > 0 && k <= prev)) {
			return nil, fmt.Errorf("features: dataset: metadata key %d %q: keys must be non-empty and strictly ascending: %w", i, k, ErrFormat)
		}
		if d.Meta == nil {
			d.Meta = make(map[string]string, m)
		}
		d.Meta[k], prev = v, k
	}
	if r.err != nil {
		return nil, r.err
	}
	if want := n * (2 + 4*f); r.left() != want {
		return nil, fmt.Errorf("features: dataset: %d bytes of rows, %d rows of %d features take %d: %w", r.left(), n, f, want, ErrFormat)
	}
	vals := make([]float32, n*f)
	d.X, d.Y = make([][]float32, n), make([]int, n)
	for i := 0; i < n; i++ {
		y := int(r.u16())
		if y >= c {
			return nil, fmt.Errorf("features: dataset: row %d: label index %d, have %d labels: %w", i, y, c, ErrData)
		}
		x := vals[i*f : (i+1)*f : (i+1)*f]
		for j := range x {
			v := math.Float32frombits(r.u32())
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return nil, fmt.Errorf("features: dataset: row %d feature %d (%s): %v is not finite: %w", i, j, d.Names[j], v, ErrData)
			}
			x[j] = v
		}
		d.X[i], d.Y[i] = x, y
	}
	if err := distinct("feature name", d.Names); err != nil {
		return nil, err
	}
	if err := distinct("label", d.Labels); err != nil {
		return nil, err
	}
	return d, nil
}

// reader reads little-endian fields; the first short read sets err and
// every later read returns zero.
type reader struct {
	b   []byte
	off int
	err error
}

func (r *reader) left() int { return len(r.b) - r.off }

func (r *reader) take(n int, what string) []byte {
	if r.err != nil {
		return nil
	}
	if n > r.left() {
		r.err = fmt.Errorf("features: dataset: %s: need %d bytes at offset %d, %d left: %w", what, n, r.off, r.left(), ErrFormat)
		return nil
	}
	p := r.b[r.off : r.off+n]
	r.off += n
	return p
}

func (r *reader) u16() uint16 {
	if p := r.take(2, "u16"); p != nil {
		return binary.LittleEndian.Uint16(p)
	}
	return 0
}

func (r *reader) u32() uint32 {
	if p := r.take(4, "u32"); p != nil {
		return binary.LittleEndian.Uint32(p)
	}
	return 0
}

func (r *reader) str(what string) string {
	l := int(r.u16())
	if r.err == nil && l > MaxString {
		r.err = fmt.Errorf("features: dataset: %s: %d bytes, at most %d: %w", what, l, MaxString, ErrFormat)
	}
	p := r.take(l, what)
	if r.err == nil && !utf8.Valid(p) {
		r.err = fmt.Errorf("features: dataset: %s: not valid UTF-8: %w", what, ErrFormat)
	}
	return string(p)
}
