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

// keymap maps evdev key codes to characters on a US keyboard layout, the
// default of keyboard-wedge scanners: [0] unshifted, [1] with Shift.
var keymap = [...][2]byte{
	2: {'1', '!'}, 3: {'2', '@'}, 4: {'3', '#'}, 5: {'4', '$'}, 6: {'5', '%'},
	7: {'6', '^'}, 8: {'7', '&'}, 9: {'8', '*'}, 10: {'9', '('}, 11: {'0', ')'},
	12: {'-', '_'}, 13: {'=', '+'},
	16: {'q', 'Q'}, 17: {'w', 'W'}, 18: {'e', 'E'}, 19: {'r', 'R'}, 20: {'t', 'T'},
	21: {'y', 'Y'}, 22: {'u', 'U'}, 23: {'i', 'I'}, 24: {'o', 'O'}, 25: {'p', 'P'},
	26: {'[', '{'}, 27: {']', '}'},
	30: {'a', 'A'}, 31: {'s', 'S'}, 32: {'d', 'D'}, 33: {'f', 'F'}, 34: {'g', 'G'},
	35: {'h', 'H'}, 36: {'j', 'J'}, 37: {'k', 'K'}, 38: {'l', 'L'},
	39: {';', ':'}, 40: {'\'', '"'}, 41: {'`', '~'}, 43: {'\\', '|'},
	44: {'z', 'Z'}, 45: {'x', 'X'}, 46: {'c', 'C'}, 47: {'v', 'V'}, 48: {'b', 'B'},
	49: {'n', 'N'}, 50: {'m', 'M'},
	51: {',', '<'}, 52: {'.', '>'}, 53: {'/', '?'},
	55: {'*', '*'}, 57: {' ', ' '},
	71: {'7', '7'}, 72: {'8', '8'}, 73: {'9', '9'}, 74: {'-', '-'},
	75: {'4', '4'}, 76: {'5', '5'}, 77: {'6', '6'}, 78: {'+', '+'},
	79: {'1', '1'}, 80: {'2', '2'}, 81: {'3', '3'}, 82: {'0', '0'}, 83: {'.', '.'},
	98: {'/', '/'},
}

// ErrShortEvent is returned (wrapped) when the input ends inside an event.
var ErrShortEvent = errors.New("scanner: input ended inside an input_event")

// KeyDecoder turns the key events of a keyboard-wedge scanner into text:
// each key press becomes its character (with Shift or Caps Lock), Enter
// becomes '\r', so its output frames with SuffixCR like a serial scanner's. Key releases,
// autorepeats and non-key events (EV_SYN, EV_MSC scancodes) produce nothing.
// A KeyDecoder is not safe for concurrent use.
type KeyDecoder struct {
	size         int
	shiftL       bool
	shiftR       bool
	caps         bool
	partial      []byte // bytes of an event split across reads
	partialStart [EventSize64]byte
}

// NewKeyDecoder returns a decoder for events of size bytes, EventSize64 or
// EventSize32 (EventSize64 if 0).
func NewKeyDecoder(size int) (*KeyDecoder, error) {
	switch size {
	case 0:
		size = EventSize64
	case EventSize64, EventSize32:
	default:
		return nil, fmt.Errorf("scanner: input_event size %d (want %d or %d)", size, EventSize64, EventSize32)
	}
	d := &KeyDecoder{size: size}
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
	if int(code) >= len(keymap) || keymap[code][0] == 0 {
		return append(dst, Unmapped)
	}
	shift := d.shiftL || d.shiftR
	c := keymap[code][0]
	if c >= 'a' && c <= 'z' && d.caps {
		shift = !shift
	}
	if shift {
		c = keymap[code][1]
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
// NewKeyDecoder) read from r.
func NewKeyReader(r io.Reader, size int) (*KeyReader, error) {
	d, err := NewKeyDecoder(size)
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
