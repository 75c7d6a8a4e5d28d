package scanner

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Linux input event constants (linux/input-event-codes.h).
const (
	evKey = 0x01

	keyEnter      = 28
	keyLeftShift  = 42
	keyRightShift = 54
	keyCapsLock   = 58
	keyKPEnter    = 96
)

// EventSize64 and EventSize32 are the sizes of struct input_event: a
// struct timeval (two longs) then __u16 type, __u16 code, __s32 value.
// 64-bit kernels (arm64, amd64) use 24 bytes; 32-bit ARM userspace 16.
const (
	EventSize64 = 24
	EventSize32 = 16
)

// Unmapped is written for a key press that has no character (a function
// key, Ctrl, an unknown code): it is not printable, so the frame that holds
// it is rejected as ReasonNonPrintable instead of silently losing a character.
const Unmapped = 0x1A // ASCII SUB

// ErrShortEvent is returned (wrapped) when the input ends inside an event.
var ErrShortEvent = errors.New("scanner: input ended inside an input_event")

// KeyDecoder turns the key events of a keyboard-wedge scanner into text:
// each key press becomes its character (with Shift or Caps Lock), Enter
// becomes '\r', so its output frames with SuffixCR like a serial scanner's. Key releases,
// autorepeats and non-key events (EV_SYN, EV_MSC scancodes) produce nothing.
// A KeyDecoder is not safe for concurrent use.
type KeyDecoder struct {
	size         int
	keys         *keyTable
	shiftL       bool
	shiftR       bool
	altGr        bool
	caps         bool
	partial      []byte // bytes of an event split across reads
	partialStart [EventSize64]byte
}

// NewKeyDecoder returns a decoder for events of size bytes, EventSize64 or
// EventSize32 (EventSize64 if 0), of a scanner typing on the US layout.
func NewKeyDecoder(size int) (*KeyDecoder, error) { return NewLayoutDecoder(size, LayoutUS) }

// NewLayoutDecoder is NewKeyDecoder for a scanner typing on layout.
func NewLayoutDecoder(size int, layout Layout) (*KeyDecoder, error) {
	switch size {
	case 0:
		size = EventSize64
	case EventSize64, EventSize32:
	default:
		return nil, fmt.Errorf("scanner: input_event size %d (want %d or %d)", size, EventSize64, EventSize32)
	}
	if int(layout) >= len(layoutTables) {
		return nil, fmt.Errorf("scanner: unknown keyboard layout %v", layout)
	}
	d := &KeyDecoder{size: size, keys: layout.table()}
	d.partial = d.partialStart[:0]
	return d, nil
}

// Decode appends the text of the events in b to dst and returns it. b need
// not hold whole events: a trailing fragment is kept for the next call.
func (d *KeyDecoder) Decode(dst, b []byte) []byte {
	if len(d.partial) > 0 {
		n := min(d.size-len(d.partial), len(b))
		d.partial = append(d.partial, b[:n]...)
		b = b[n:]
		if len(d.partial) < d.size {
			return dst
		}
		dst = d.event(dst, d.partial)
		d.partial = d.partial[:0]
	}
	for len(b) >= d.size {
		dst = d.event(dst, b[:d.size])
		b = b[d.size:]
	}
	d.partial = append(d.partial, b...)
	return dst
}

// Pending reports whether an incomplete event waits for more bytes.
func (d *KeyDecoder) Pending() bool { return len(d.partial) > 0 }

func (d *KeyDecoder) event(dst, ev []byte) []byte {
	t := d.size - 8 // after the timeval
	typ := binary.LittleEndian.Uint16(ev[t:])
	code := binary.LittleEndian.Uint16(ev[t+2:])
	value := int32(binary.LittleEndian.Uint32(ev[t+4:]))
	if typ != evKey {
		return dst
	}
	switch code {
	case keyLeftShift:
		d.shiftL = value != 0
		return dst
	case keyRightShift:
		d.shiftR = value != 0
		return dst
	case keyRightAlt:
		d.altGr = value != 0
		return dst
	}
	if value != 1 { // 0 release, 2 autorepeat
		return dst
	}
	switch code {
	case keyCapsLock:
		d.caps = !d.caps
		return dst
	case keyEnter, keyKPEnter:
		return append(dst, '\r')
	}
	if int(code) >= len(d.keys) {
		return append(dst, Unmapped)
	}
	k := d.keys[code]
	shift := d.shiftL || d.shiftR
	if k[0] >= 'a' && k[0] <= 'z' && d.caps {
		shift = !shift // Caps Lock shifts the letters only
	}
	var c byte
	switch {
	case d.altGr:
		c = k[2]
	case shift:
		c = k[1]
	default:
		c = k[0]
	}
	if c == 0 {
		return append(dst, Unmapped)
	}
	return append(dst, c)
}

// KeyReader is an io.Reader of the text typed by a keyboard-wedge scanner,
// read from its evdev device (or a recording of it).
type KeyReader struct {
	r   io.Reader
	d   *KeyDecoder
	in  []byte
	out []byte
	err error
}

// NewKeyReader decodes input_event records of size bytes (see
// NewKeyDecoder) read from r, typed on the US layout.
func NewKeyReader(r io.Reader, size int) (*KeyReader, error) {
	return NewLayoutReader(r, size, LayoutUS)
}

// NewLayoutReader is NewKeyReader for a scanner typing on layout.
func NewLayoutReader(r io.Reader, size int, layout Layout) (*KeyReader, error) {
	d, err := NewLayoutDecoder(size, layout)
	if err != nil {
		return nil, err
	}
	return &KeyReader{r: r, d: d, in: make([]byte, 64*d.size)}, nil
}

// Read implements io.Reader. It returns io.EOF at the end of whole events,
// and an error wrapping ErrShortEvent if the input ends inside one.
func (k *KeyReader) Read(p []byte) (int, error) {
	for len(k.out) == 0 {
		if k.err != nil {
			return 0, k.err
		}
		n, err := k.r.Read(k.in)
		k.out = k.d.Decode(k.out[:0], k.in[:n])
		if err != nil {
			if errors.Is(err, io.EOF) && k.d.Pending() {
				err = fmt.Errorf("%w: %w", ErrShortEvent, io.ErrUnexpectedEOF)
			}
			k.err = err
		}
	}
	n := copy(p, k.out)
	k.out = k.out[n:]
	return n, nil
}
