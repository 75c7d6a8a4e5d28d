package model

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"math"
)

// File layout (docs/model-format.md has the full description):
//
//	header  16 bytes: magic "SHGMODEL", u16 format version, u16 flags, u32 body length
//	body    body length bytes
//	digest  32 bytes: SHA-256 of the body
//	[signature block when flag 1 is set: "SIG1", 32-byte ed25519 public key,
//	 64-byte signature over header, body and digest]
const (
	Magic         = "SHGMODEL"
	FormatVersion = 1
	headerSize    = 16
	digestSize    = sha256.Size
	sigBlockSize  = 4 + ed25519.PublicKeySize + ed25519.SignatureSize
	flagSigned    = 1
	sigTag        = "SIG1"

	// DefaultMaxSize bounds the size of a model file.
	DefaultMaxSize = 64 << 20
	// DefaultMaxMACs bounds the multiply-accumulates one inference of a
	// file may declare (the reference 1000 → 500 → 100 MLP needs 550,000).
	DefaultMaxMACs = 1 << 26
	// DefaultMaxGoldenMACs bounds the work of checking a file's golden
	// vectors at load: vectors × MACs per inference.
	DefaultMaxGoldenMACs = 1 << 29

	maxLayers  = 64
	maxUnits   = 1 << 20 // per layer dimension and feature count
	maxString  = 4096
	maxGolden  = 1024
	maxVersion = 1<<63 - 1
)

// DecodeOptions controls Decode.
type DecodeOptions struct {
	// MaxSize is the largest accepted file; 0 means DefaultMaxSize.
	MaxSize int
	// TrustedKeys, when not empty, makes a signature mandatory and requires
	// it to be made by one of these keys.
	TrustedKeys []ed25519.PublicKey
	// SkipGolden skips running the embedded golden vectors.
	SkipGolden bool
	// Kernel names the kernel that checks the golden vectors; empty means
	// DefaultKernel.
	Kernel string
	// MaxMACs bounds the multiply-accumulates per inference the file may
	// declare; 0 means DefaultMaxMACs.
	MaxMACs int64
	// MaxGoldenMACs bounds golden vectors × MACs per inference; 0 means
	// DefaultMaxGoldenMACs. Both budgets are checked on the layer and
	// vector counts before any parameter is allocated.
	MaxGoldenMACs int64
}

func (o DecodeOptions) budgets() (macs, golden int64) {
	macs, golden = o.MaxMACs, o.MaxGoldenMACs
	if macs <= 0 {
		macs = DefaultMaxMACs
	}
	if golden <= 0 {
		golden = DefaultMaxGoldenMACs
	}
	return macs, golden
}

// Load reads a whole model file from r and decodes it.
func Load(r io.Reader, opts DecodeOptions) (*Model, error) {
	return LoadContext(context.Background(), r, opts)
}

// LoadContext is Load that stops with ctx's error when ctx is done, while
// reading or between golden vectors.
func LoadContext(ctx context.Context, r io.Reader, opts DecodeOptions) (*Model, error) {
	max := opts.MaxSize
	if max <= 0 {
		max = DefaultMaxSize
	}
	data, err := io.ReadAll(io.LimitReader(ctxReader{ctx, r}, int64(max)+1))
	if err != nil {
		return nil, fmt.Errorf("model: read: %w", err)
	}
	return DecodeContext(ctx, data, opts)
}

// ctxReader fails reads once its context is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// Decode parses and verifies a model file: size, header, digest, signature,
// structure, compute budget, consistency of every precomputed parameter,
// and golden vectors.
func Decode(data []byte, opts DecodeOptions) (*Model, error) {
	return DecodeContext(context.Background(), data, opts)
}

// DecodeContext is Decode that stops with ctx's error (wrapped) when ctx is
// done; golden vectors are checked one at a time, and each costs at most
// the MACs budget, so cancellation takes effect within one inference.
func DecodeContext(ctx context.Context, data []byte, opts DecodeOptions) (*Model, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("model: decode: %w", err)
	}
	max := opts.MaxSize
	if max <= 0 {
		max = DefaultMaxSize
	}
	if len(data) > max {
		return nil, fmt.Errorf("model: file is larger than the limit of %d bytes: %w", max, ErrTooLarge)
	}
	if len(data) < headerSize {
		return nil, fmt.Errorf("model: header: file has %d bytes, header needs %d: %w", len(data), headerSize, ErrTruncated)
	}
	if string(data[:8]) != Magic {
		return nil, fmt.Errorf("model: header: magic %q, want %q: %w", data[:8], Magic, ErrCorrupt)
	}
	if v := binary.LittleEndian.Uint16(data[8:]); v != FormatVersion {
		return nil, fmt.Errorf("model: header: format version %d, this build reads %d: %w", v, FormatVersion, ErrVersion)
	}
	flags := binary.LittleEndian.Uint16(data[10:])
	if flags&^flagSigned != 0 {
		return nil, fmt.Errorf("model: header: unknown flags %#x: %w", flags, ErrCorrupt)
	}
	bodyLen := int64(binary.LittleEndian.Uint32(data[12:]))
	want := headerSize + bodyLen + digestSize
	if flags&flagSigned != 0 {
		want += sigBlockSize
	}
	if want > int64(max) {
		return nil, fmt.Errorf("model: header: declares %d bytes, over the limit of %d: %w", want, max, ErrTooLarge)
	}
	if int64(len(data)) < want {
		return nil, fmt.Errorf("model: file has %d bytes, header declares %d: %w", len(data), want, ErrTruncated)
	}
	if int64(len(data)) > want {
		return nil, fmt.Errorf("model: %d trailing bytes after the declared end at %d: %w", int64(len(data))-want, want, ErrCorrupt)
	}
	bodyEnd := headerSize + int(bodyLen)
	body := data[headerSize:bodyEnd]
	sum := sha256.Sum256(body)
	if !bytes.Equal(sum[:], data[bodyEnd:bodyEnd+digestSize]) {
		return nil, fmt.Errorf("model: body SHA-256 %x, file says %x: %w", sum, data[bodyEnd:bodyEnd+digestSize], ErrChecksum)
	}
	var pub []byte
	if flags&flagSigned != 0 {
		blk := data[bodyEnd+digestSize:]
		if string(blk[:4]) != sigTag {
			return nil, fmt.Errorf("model: signature block: tag %q, want %q: %w", blk[:4], sigTag, ErrCorrupt)
		}
		pub = blk[4 : 4+ed25519.PublicKeySize]
		sig := blk[4+ed25519.PublicKeySize:]
		if !ed25519.Verify(pub, data[:bodyEnd+digestSize], sig) {
			return nil, fmt.Errorf("model: signature does not verify with its public key %x: %w", pub, ErrBadSignature)
		}
	}
	if len(opts.TrustedKeys) > 0 {
		if pub == nil {
			return nil, fmt.Errorf("model: a signature is required: %w", ErrUnsigned)
		}
		trusted := false
		for _, k := range opts.TrustedKeys {
			trusted = trusted || bytes.Equal(k, pub)
		}
		if !trusted {
			return nil, fmt.Errorf("model: key %x: %w", pub, ErrUntrustedKey)
		}
	}
	macs, golden := opts.budgets()
	// A dry pass walks the body without allocating, so a file over the
	// compute budget is rejected before any parameter is allocated.
	if _, err := decodeBody(body, bodyLimits{dry: true, maxMACs: macs, maxGoldenMACs: golden}); err != nil {
		return nil, err
	}
	m, err := decodeBody(body, bodyLimits{maxMACs: macs, maxGoldenMACs: golden})
	if err != nil {
		return nil, err
	}
	m.Digest = sum
	m.Signed = pub != nil
	m.PublicKey = bytes.Clone(pub)
	if err := m.validate(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("model: decode: %w", err)
	}
	m.compile()
	if !opts.SkipGolden {
		var kopts []SessionOption
		if opts.Kernel != "" {
			kopts = append(kopts, WithKernel(opts.Kernel))
		}
		if err := m.checkGolden(ctx, kopts...); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Encode validates m and writes its file, signed with key when key is not
// nil. It sets m.Digest, m.Signed and m.PublicKey.
func Encode(m *Model, key ed25519.PrivateKey) ([]byte, error) {
	if err := m.validate(); err != nil {
		return nil, err
	}
	body := encodeBody(m)
	if int64(len(body)) > math.MaxUint32 {
		return nil, fmt.Errorf("model: body of %d bytes: %w", len(body), ErrTooLarge)
	}
	var out bytes.Buffer
	out.WriteString(Magic)
	var flags uint16
	if key != nil {
		flags |= flagSigned
	}
	out.Write(binary.LittleEndian.AppendUint16(nil, FormatVersion))
	out.Write(binary.LittleEndian.AppendUint16(nil, flags))
	out.Write(binary.LittleEndian.AppendUint32(nil, uint32(len(body))))
	out.Write(body)
	sum := sha256.Sum256(body)
	out.Write(sum[:])
	m.Digest, m.Signed, m.PublicKey = sum, false, nil
	if key != nil {
		pub := key.Public().(ed25519.PublicKey)
		sig := ed25519.Sign(key, out.Bytes())
		out.WriteString(sigTag)
		out.Write(pub)
		out.Write(sig)
		m.Signed, m.PublicKey = true, bytes.Clone(pub)
	}
	return out.Bytes(), nil
}

type encoder struct{ b []byte }

func (e *encoder) u8(v uint8)   { e.b = append(e.b, v) }
func (e *encoder) u16(v uint16) { e.b = binary.LittleEndian.AppendUint16(e.b, v) }
func (e *encoder) u32(v uint32) { e.b = binary.LittleEndian.AppendUint32(e.b, v) }
func (e *encoder) u64(v uint64) { e.b = binary.LittleEndian.AppendUint64(e.b, v) }
func (e *encoder) f32(v float32) {
	e.u32(math.Float32bits(v))
}
func (e *encoder) str(s string) { e.u16(uint16(len(s))); e.b = append(e.b, s...) }
func (e *encoder) i8s(v []int8) {
	for _, x := range v {
		e.u8(uint8(x))
	}
}
func (e *encoder) i32s(v []int32) {
	for _, x := range v {
		e.u32(uint32(x))
	}
}
func (e *encoder) f32s(v []float32) {
	for _, x := range v {
		e.f32(x)
	}
}
func (e *encoder) quant(q Quant) { e.f32(q.Scale); e.u8(uint8(q.Zero)) }

func encodeBody(m *Model) []byte {
	e := &encoder{}
	e.u64(m.Version)
	e.str(m.Name)
	e.u8(uint8(m.Rounding))
	e.u32(uint32(m.Features()))
	for _, n := range m.Input.Names {
		e.str(n)
	}
	e.f32s(m.Input.Mean)
	e.f32s(m.Input.Std)
	e.quant(m.Input.Quant)
	e.u32(uint32(len(m.Output.Labels)))
	for _, l := range m.Output.Labels {
		e.str(l)
	}
	e.u16(uint16(len(m.Layers)))
	for i := range m.Layers {
		l := &m.Layers[i]
		e.u8(uint8(l.Kind))
		e.u32(uint32(l.In))
		e.u32(uint32(l.Out))
		e.quant(l.Input)
		e.quant(l.Output)
		switch l.Kind {
		case FullyConnected, Conv1D:
			e.u8(uint8(l.Act))
			if l.Kind == Conv1D {
				for _, v := range []int{l.Length, l.InCh, l.OutCh, l.Kernel, l.Stride} {
					e.u32(uint32(v))
				}
			}
			e.i8s(l.Weights)
			e.f32s(l.WScales)
			e.i32s(l.Bias)
			e.i32s(l.Mult)
			e.i8s(l.Shift)
		case Softmax:
			e.f32(l.Beta)
			e.u32(uint32(l.SMMult))
			e.u8(uint8(l.SMShift))
			e.u32(uint32(l.SMDiffMn))
		}
	}
	e.u16(uint16(len(m.Golden)))
	for _, g := range m.Golden {
		e.f32s(g.Input)
		e.i8s(g.Output)
	}
	return e.b
}

// decoder reads the body; the first error sticks and names the field and
// the body offset where it happened.
type decoder struct {
	b   []byte
	off int
	err error
	bodyLimits
	macs int64 // multiply-accumulates per inference of the layers so far
}

// bodyLimits are the compute budgets of decodeBody; in a dry pass the
// decoder checks every count, size and budget but allocates nothing.
type bodyLimits struct {
	dry                    bool
	maxMACs, maxGoldenMACs int64
}

func (d *decoder) take(n int, what string) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || n > len(d.b)-d.off {
		d.err = fmt.Errorf("model: %s at body offset %d: need %d bytes, %d left: %w", what, d.off, n, len(d.b)-d.off, ErrTruncated)
		return nil
	}
	p := d.b[d.off : d.off+n]
	d.off += n
	return p
}

func (d *decoder) fail(what string, format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("model: %s at body offset %d: %s: %w", what, d.off, fmt.Sprintf(format, args...), ErrCorrupt)
	}
}

func (d *decoder) u8(what string) uint8 {
	if p := d.take(1, what); p != nil {
		return p[0]
	}
	return 0
}
func (d *decoder) u16(what string) uint16 {
	if p := d.take(2, what); p != nil {
		return binary.LittleEndian.Uint16(p)
	}
	return 0
}
func (d *decoder) u32(what string) uint32 {
	if p := d.take(4, what); p != nil {
		return binary.LittleEndian.Uint32(p)
	}
	return 0
}
func (d *decoder) u64(what string) uint64 {
	if p := d.take(8, what); p != nil {
		return binary.LittleEndian.Uint64(p)
	}
	return 0
}
func (d *decoder) f32(what string) float32 { return math.Float32frombits(d.u32(what)) }

// count reads a u32 element count and checks it against limit and against
// the bytes left (each element needs at least elemSize bytes), so a corrupt
// count cannot make the decoder allocate more than the file holds.
func (d *decoder) count(what string, limit, elemSize int) int {
	n := d.size(what, limit)
	d.check(what, n, limit, elemSize)
	return n
}

// size reads a u32 that must not exceed limit, comparing before the
// conversion to int so that 32-bit platforms cannot see it wrap.
func (d *decoder) size(what string, limit int) int {
	v := d.u32(what)
	if d.err == nil && uint64(v) > uint64(limit) {
		d.err = fmt.Errorf("model: %s at body offset %d: %d exceeds the limit of %d: %w", what, d.off-4, v, limit, ErrTooLarge)
		return 0
	}
	return int(v)
}

func (d *decoder) check(what string, n, limit, elemSize int) {
	if d.err != nil {
		return
	}
	if n > limit {
		d.err = fmt.Errorf("model: %s at body offset %d: %d exceeds the limit of %d: %w", what, d.off, n, limit, ErrTooLarge)
		return
	}
	if n*elemSize > len(d.b)-d.off {
		d.err = fmt.Errorf("model: %s at body offset %d: %d elements need %d bytes, %d left: %w", what, d.off, n, n*elemSize, len(d.b)-d.off, ErrTruncated)
	}
}

func (d *decoder) str(what string) string {
	n := int(d.u16(what + " length"))
	if n > maxString {
		d.fail(what, "string of %d bytes exceeds %d", n, maxString)
		return ""
	}
	p := d.take(n, what)
	if d.dry {
		return ""
	}
	return string(p)
}

func (d *decoder) i8s(n int, what string) []int8 {
	p := d.take(n, what)
	if p == nil || d.dry {
		return nil
	}
	v := make([]int8, n)
	for i, b := range p {
		v[i] = int8(b)
	}
	return v
}

func (d *decoder) i32s(n int, what string) []int32 {
	p := d.take(4*n, what)
	if p == nil || d.dry {
		return nil
	}
	v := make([]int32, n)
	for i := range v {
		v[i] = int32(binary.LittleEndian.Uint32(p[4*i:]))
	}
	return v
}

func (d *decoder) f32s(n int, what string) []float32 {
	p := d.take(4*n, what)
	if p == nil || d.dry {
		return nil
	}
	v := make([]float32, n)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(p[4*i:]))
	}
	return v
}

func (d *decoder) quant(what string) Quant {
	return Quant{Scale: d.f32(what + " scale"), Zero: int8(d.u8(what + " zero point"))}
}

func decodeBody(body []byte, lim bodyLimits) (*Model, error) {
	d := &decoder{b: body, bodyLimits: lim}
	m := &Model{}
	m.Version = d.u64("model version")
	if d.err == nil && m.Version > maxVersion {
		d.fail("model version", "%d exceeds %d", m.Version, uint64(maxVersion))
	}
	m.Name = d.str("name")
	m.Rounding = Rounding(d.u8("rounding mode"))
	if d.err == nil && m.Rounding > SingleRounding {
		d.fail("rounding mode", "unknown mode %d", m.Rounding)
	}
	nf := d.count("feature count", maxUnits, 2+4+4)
	for i := 0; i < nf && d.err == nil; i++ {
		name := d.str(fmt.Sprintf("feature %d name", i))
		if !d.dry {
			m.Input.Names = append(m.Input.Names, name)
		}
	}
	m.Input.Mean = d.f32s(nf, "feature means")
	m.Input.Std = d.f32s(nf, "feature standard deviations")
	m.Input.Quant = d.quant("input")
	nl := d.count("label count", maxUnits, 2)
	for i := 0; i < nl && d.err == nil; i++ {
		label := d.str(fmt.Sprintf("label %d", i))
		if !d.dry {
			m.Output.Labels = append(m.Output.Labels, label)
		}
	}
	layers := int(d.u16("layer count"))
	if d.err == nil && layers > maxLayers {
		d.err = fmt.Errorf("model: layer count %d exceeds the limit of %d: %w", layers, maxLayers, ErrTooLarge)
	}
	for i := 0; i < layers && d.err == nil; i++ {
		m.Layers = append(m.Layers, d.layer(i))
	}
	ng := int(d.u16("golden vector count"))
	if d.err == nil && ng > maxGolden {
		d.err = fmt.Errorf("model: golden vector count %d exceeds the limit of %d: %w", ng, maxGolden, ErrTooLarge)
	}
	nc := 0
	if len(m.Layers) > 0 {
		nc = m.Layers[len(m.Layers)-1].Out
	}
	if d.err == nil && ng > 0 && d.macs > d.maxGoldenMACs/int64(ng) {
		d.err = fmt.Errorf("model: %d golden vectors × %d multiply-accumulates each exceed the load budget of %d: %w", ng, d.macs, d.maxGoldenMACs, ErrTooLarge)
	}
	d.check("golden vectors", ng, maxGolden, 4*nf+nc)
	for i := 0; i < ng && d.err == nil; i++ {
		g := Golden{
			Input:  d.f32s(nf, fmt.Sprintf("golden %d input", i)),
			Output: d.i8s(nc, fmt.Sprintf("golden %d output", i)),
		}
		if !d.dry {
			m.Golden = append(m.Golden, g)
		}
	}
	if d.err == nil && d.off != len(body) {
		d.fail("end of body", "%d unread bytes", len(body)-d.off)
	}
	if d.err != nil {
		return nil, d.err
	}
	return m, nil
}

func (d *decoder) layer(i int) Layer {
	p := fmt.Sprintf("layer %d", i)
	l := Layer{Kind: LayerKind(d.u8(p + " kind"))}
	p = fmt.Sprintf("layer %d (%v)", i, l.Kind)
	l.In = d.size(p+" input size", maxUnits)
	l.Out = d.size(p+" output size", maxUnits)
	l.Input = d.quant(p + " input")
	l.Output = d.quant(p + " output")
	switch l.Kind {
	case FullyConnected, Conv1D:
		l.Act = Activation(d.u8(p + " activation"))
		if l.Kind == Conv1D {
			for _, f := range []struct {
				v    *int
				name string
			}{{&l.Length, "length"}, {&l.InCh, "input channels"}, {&l.OutCh, "output channels"}, {&l.Kernel, "kernel size"}, {&l.Stride, "stride"}} {
				*f.v = d.size(p+" "+f.name, maxUnits)
			}
		}
		ch, patch := l.channels(), l.patch()
		if d.err == nil && int64(l.Kernel)*int64(l.InCh) > maxUnits {
			d.err = fmt.Errorf("model: %s: kernel %d × %d input channels exceeds %d: %w", p, l.Kernel, l.InCh, maxUnits, ErrTooLarge)
		}
		if d.err == nil {
			// Every factor is at most maxUnits = 2^20 and patch too, so
			// positions·channels·patch < 2^60 fits an int64.
			pos := int64(1)
			if l.Kind == Conv1D {
				pos = int64(l.Positions())
			}
			macs := pos * int64(ch) * int64(patch)
			if macs > d.maxMACs-d.macs {
				d.err = fmt.Errorf("model: %s: %d multiply-accumulates per inference bring the model to %d, over the budget of %d: %w", p, macs, d.macs+macs, d.maxMACs, ErrTooLarge)
			}
			d.macs += macs
		}
		if d.err == nil && int64(ch)*int64(patch) > maxUnits*64 {
			d.err = fmt.Errorf("model: %s: %d×%d weights exceed the limit of %d: %w", p, ch, patch, maxUnits*64, ErrTooLarge)
		}
		d.check(p+" weights", ch*patch, maxUnits*64, 1)
		l.Weights = d.i8s(ch*patch, p+" weights")
		d.check(p+" channels", ch, maxUnits, 4+4+4+1)
		l.WScales = d.f32s(ch, p+" weight scales")
		l.Bias = d.i32s(ch, p+" bias")
		l.Mult = d.i32s(ch, p+" multipliers")
		l.Shift = d.i8s(ch, p+" shifts")
	case Softmax:
		l.Beta = d.f32(p + " beta")
		l.SMMult = int32(d.u32(p + " multiplier"))
		l.SMShift = int8(d.u8(p + " left shift"))
		l.SMDiffMn = int32(d.u32(p + " diff_min"))
	default:
		d.fail(p+" kind", "unknown layer kind %d", uint8(l.Kind))
	}
	return l
}
