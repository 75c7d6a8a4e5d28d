package faultproxy

import (
	"bytes"
	"testing"
)

// packet encodes an MQTT fixed header for typ with a body of n bytes.
func packet(typ byte, n int) []byte {
	p := []byte{typ<<4 | 0x2}
	l := n
	for {
		b := byte(l % 128)
		l /= 128
		if l > 0 {
			b |= 0x80
		}
		p = append(p, b)
		if l == 0 {
			break
		}
	}
	for i := range n {
		p = append(p, byte(i*7+int(typ)))
	}
	return p
}

func dropPuback(typ byte) bool { return typ == TypePuback }

// feedSplit feeds stream to a fresh Splitter cut at the given offsets.
func feedSplit(t testing.TB, stream []byte, cuts []int) ([]byte, int) {
	t.Helper()
	var s Splitter
	var out []byte
	total, prev := 0, 0
	for _, c := range append(cuts, len(stream)) {
		if c < prev || c > len(stream) {
			continue
		}
		var n int
		var err error
		out, n, err = s.Feed(stream[prev:c], dropPuback, out)
		if err != nil {
			t.Fatalf("feed: %v", err)
		}
		total += n
		prev = c
	}
	if !s.Boundary() {
		t.Fatalf("stream of whole packets did not end on a boundary")
	}
	return out, total
}

func TestSplitterDropsPubacksAtEveryCut(t *testing.T) {
	tests := []struct {
		name    string
		packets [][]byte
	}{
		{"only pubacks", [][]byte{packet(4, 2), packet(4, 2)}},
		{"mixed", [][]byte{packet(2, 2), packet(3, 30), packet(4, 2), packet(13, 0), packet(4, 2), packet(9, 3)}},
		{"two-byte length", [][]byte{packet(3, 200), packet(4, 2), packet(3, 128)}},
		{"three-byte length", [][]byte{packet(4, 2), packet(3, 16384), packet(4, 2)}},
		{"empty bodies", [][]byte{packet(12, 0), packet(13, 0), packet(4, 0)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stream, want []byte
			wantDropped := 0
			for _, p := range tt.packets {
				stream = append(stream, p...)
				if p[0]>>4 == TypePuback {
					wantDropped++
				} else {
					want = append(want, p...)
				}
			}
			// Every single cut and every pair of cuts near the packet heads.
			for i := 0; i <= len(stream); i++ {
				for _, j := range []int{i, i + 1, i + 2, i + 3, len(stream)} {
					got, dropped := feedSplit(t, stream, []int{i, j})
					if !bytes.Equal(got, want) || dropped != wantDropped {
						t.Fatalf("cuts %d,%d: got %d bytes, %d dropped; want %d bytes, %d dropped", i, j, len(got), dropped, len(want), wantDropped)
					}
				}
			}
			// Byte at a time.
			cuts := make([]int, len(stream))
			for i := range cuts {
				cuts[i] = i
			}
			if got, dropped := feedSplit(t, stream, cuts); !bytes.Equal(got, want) || dropped != wantDropped {
				t.Fatalf("byte at a time: got %d bytes, %d dropped", len(got), dropped)
			}
		})
	}
}

func TestSplitterRejectsFiveByteLength(t *testing.T) {
	var s Splitter
	if _, _, err := s.Feed([]byte{0x30, 0xff, 0xff, 0xff, 0xff, 0x01}, dropPuback, nil); err == nil {
		t.Fatal("a five-byte remaining length was accepted")
	}
}

// FuzzSplitter builds a stream of packets from spec (type nibble and length
// per three bytes), cuts it at the offsets in cuts, and checks that exactly
// the PUBACKs are removed and everything else passes byte for byte.
func FuzzSplitter(f *testing.F) {
	f.Add([]byte{0x40, 0, 2, 0x30, 1, 0}, []byte{1, 3, 5})
	f.Add([]byte{0x30, 0x40, 0x00, 0x40, 0, 2, 0xd0, 0, 0}, []byte{0, 2, 200})
	f.Add([]byte{0x41, 0, 2}, []byte{})
	f.Fuzz(func(t *testing.T, spec, cutSpec []byte) {
		var stream, want []byte
		wantDropped := 0
		for i := 0; i+2 < len(spec) && i < 90; i += 3 {
			p := packet(spec[i]>>4, int(spec[i+1])<<8|int(spec[i+2])>>2)
			stream = append(stream, p...)
			if spec[i]>>4 == TypePuback {
				wantDropped++
			} else {
				want = append(want, p...)
			}
		}
		var cuts []int
		at := 0
		for _, c := range cutSpec {
			at += int(c)
			cuts = append(cuts, at)
		}
		got, dropped := feedSplit(t, stream, cuts)
		if !bytes.Equal(got, want) || dropped != wantDropped {
			t.Fatalf("got %d bytes, %d dropped; want %d bytes, %d dropped", len(got), dropped, len(want), wantDropped)
		}
	})
}

// FuzzSplitterRaw feeds arbitrary bytes: with nothing dropped the output is
// the input up to the first error, and the splitter never panics.
func FuzzSplitterRaw(f *testing.F) {
	f.Add([]byte{0x30, 0x03, 1, 2, 3, 0x40, 0x02, 0, 1})
	f.Add([]byte{0x30, 0xff, 0xff, 0xff, 0xff, 0x7f})
	f.Fuzz(func(t *testing.T, data []byte) {
		var s Splitter
		out, _, err := s.Feed(data, nil, nil)
		if err == nil && !bytes.Equal(out, data) {
			t.Fatalf("pass-through changed the stream")
		}
		if err != nil && !bytes.HasPrefix(data, out) {
			t.Fatalf("output is not a prefix of the input")
		}
	})
}
