package scanner

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"testing"
	"testing/iotest"
)

var update = flag.Bool("update", false, "rewrite testdata/*.events")

// keyEvents encodes input_event records of size bytes the way the kernel
// sends a keyboard-wedge scanner's keys: EV_MSC scancode, EV_KEY, EV_SYN for
// each press and release.
type keyEvents struct {
	size   int
	layout Layout // LayoutUS if zero
	buf    bytes.Buffer
	usec   int64
}

func (k *keyEvents) ev(typ, code uint16, value int32) {
	b := make([]byte, k.size)
	t := k.size - 8
	k.usec += 1000
	if k.size == EventSize64 {
		binary.LittleEndian.PutUint64(b[0:], uint64(1764390000+k.usec/1e6))
		binary.LittleEndian.PutUint64(b[8:], uint64(k.usec%1e6))
	} else {
		binary.LittleEndian.PutUint32(b[0:], uint32(1764390000+k.usec/1e6))
		binary.LittleEndian.PutUint32(b[4:], uint32(k.usec%1e6))
	}
	binary.LittleEndian.PutUint16(b[t:], typ)
	binary.LittleEndian.PutUint16(b[t+2:], code)
	binary.LittleEndian.PutUint32(b[t+4:], uint32(value))
	k.buf.Write(b)
}

func (k *keyEvents) key(code uint16, value int32) {
	k.ev(0x04, 0x04, 0x70000+int32(code)) // EV_MSC MSC_SCAN
	k.ev(evKey, code, value)
	k.ev(0x00, 0, 0) // EV_SYN SYN_REPORT
}

func (k *keyEvents) tap(code uint16) { k.key(code, 1); k.key(code, 0) }

// text types s as a scanner set to k.layout does: each character with the
// key, and Shift or AltGr, that produce it on the layout.
func (k *keyEvents) text(s string) {
	t := k.layout.table()
	for i := 0; i < len(s); i++ {
		c := s[i]
	keys:
		for code := 1; code < len(t); code++ {
			if code >= 55 && code != 57 && code != 86 { // keypad: use the main keys
				continue
			}
			for level, mod := range []uint16{0, keyLeftShift, keyRightAlt} {
				if t[code][level] != c {
					continue
				}
				if mod != 0 {
					k.key(mod, 1)
				}
				k.tap(uint16(code))
				if mod != 0 {
					k.key(mod, 0)
				}
				break keys
			}
		}
	}
}

// wedgeSession is the fixture: an EAN-13, a shifted tote label typed with
// Caps Lock and autorepeat noise, a GS1 string, a line with F1 (unmapped),
// a keypad-typed EAN-8 ended with keypad Enter, and a partial scan.
func wedgeSession(size int) []byte {
	k := &keyEvents{size: size}
	k.text("4006381333931")
	k.tap(keyEnter)
	k.tap(keyCapsLock)
	k.text("tote")
	k.tap(keyCapsLock)
	k.text("-42")
	k.key(9, 2) // autorepeat of '8' produces nothing
	k.tap(keyEnter)
	k.text("(01)09501101530003(10)AB12")
	k.tap(keyEnter)
	k.text("12")
	k.tap(59) // F1
	k.tap(keyEnter)
	for _, c := range []uint16{73, 77, 81, 72, 76, 82, 71, 75} { // 96385074 on the keypad
		k.tap(c)
	}
	k.tap(keyKPEnter)
	k.text("40063")
	return k.buf.Bytes()
}

func TestEvdevFixture(t *testing.T) {
	for _, size := range []int{EventSize64, EventSize32} {
		path := filepath.Join("testdata", map[int]string{EventSize64: "wedge64.events", EventSize32: "wedge32.events"}[size])
		if *update {
			if err := os.WriteFile(path, wedgeSession(size), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		kr, err := NewKeyReader(iotest.HalfReader(bytes.NewReader(data)), size)
		if err != nil {
			t.Fatal(err)
		}
		text, err := io.ReadAll(kr)
		if err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		want := "4006381333931\rTOTE-42\r(01)09501101530003(10)AB12\r12\x1a\r96385074\r40063"
		if string(text) != want {
			t.Fatalf("size %d: text %q; want %q", size, text, want)
		}
		frames := ParseFrames(text, SuffixCR, 0)
		wantFrames := []Frame{
			{Code: "4006381333931", Symbology: SymEAN13},
			{Code: "TOTE-42", Symbology: SymText},
			{Code: "(01)09501101530003(10)AB12", Symbology: SymGS1},
			{Reject: ReasonNonPrintable},
			{Code: "96385074", Symbology: SymEAN8},
			{Reject: ReasonPartial},
		}
		if len(frames) != len(wantFrames) {
			t.Fatalf("size %d: frames %+v", size, frames)
		}
		for i := range frames {
			if frames[i] != wantFrames[i] {
				t.Errorf("size %d: frame %d = %+v; want %+v", size, i, frames[i], wantFrames[i])
			}
		}
	}
}

func TestKeyReaderShortEvent(t *testing.T) {
	k := &keyEvents{size: EventSize64}
	k.tap(2)
	data := append(k.buf.Bytes(), 1, 2, 3)
	kr, err := NewKeyReader(bytes.NewReader(data), 0)
	if err != nil {
		t.Fatal(err)
	}
	text, err := io.ReadAll(kr)
	if string(text) != "1" || !errors.Is(err, ErrShortEvent) {
		t.Fatalf("got %q, %v; want \"1\", ErrShortEvent", text, err)
	}
}

func TestNewKeyDecoderSize(t *testing.T) {
	for _, tt := range []struct {
		size int
		ok   bool
	}{{0, true}, {16, true}, {24, true}, {20, false}, {-1, false}} {
		if _, err := NewKeyDecoder(tt.size); (err == nil) != tt.ok {
			t.Errorf("NewKeyDecoder(%d): err %v", tt.size, err)
		}
	}
}

// FuzzDecodeEvents checks the evdev decoder, on each layout, on any bytes
// split anywhere:
// no panic, at most one output byte per whole event, every byte printable,
// CR or Unmapped, and the output independent of the split.
func FuzzDecodeEvents(f *testing.F) {
	// Short seeds (a few keys): the fuzzer minimizes every new input it
	// finds, which is slow on the 10 KB recordings.
	f.Add(wedgeSession(EventSize64)[:EventSize64*30], false, uint8(5), uint8(0))
	f.Add(wedgeSession(EventSize32)[EventSize32*300:EventSize32*330], true, uint8(24), uint8(1))
	f.Add([]byte{1, 2, 3}, false, uint8(1), uint8(2))
	f.Fuzz(func(t *testing.T, data []byte, small bool, chunk uint8, layoutN uint8) {
		size := EventSize64
		if small {
			size = EventSize32
		}
		layout := Layout(layoutN % 3)
		whole, _ := NewLayoutDecoder(size, layout)
		want := whole.Decode(nil, data)
		if len(want) > len(data)/size {
			t.Fatalf("%d bytes out of %d events", len(want), len(data)/size)
		}
		for _, c := range want {
			if (c < 0x20 || c > 0x7E) && c != '\r' && c != Unmapped {
				t.Fatalf("output byte %#x", c)
			}
		}
		if whole.Pending() != (len(data)%size != 0) {
			t.Fatalf("Pending %v with %d trailing bytes", whole.Pending(), len(data)%size)
		}
		split, _ := NewLayoutDecoder(size, layout)
		var got []byte
		step := int(chunk%40) + 1
		for i := 0; i < len(data); i += step {
			got = split.Decode(got, data[i:min(i+step, len(data))])
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("split by %d: %q; whole %q", step, got, want)
		}
	})
}
