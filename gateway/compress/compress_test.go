package compress

import (
	"bytes"
	"errors"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	enc, err := NewEncoder()
	if err != nil {
		t.Fatal(err)
	}
	dec, err := NewDecoder(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	src := bytes.Repeat([]byte(`{"id":12345,"s":"loadcell/shelf-01/bin-03","q":77,"t":1700000000000000,"v":1234.5,"u":"g"},`), 500)
	c := enc.Compress(nil, src)
	if !IsCompressed(c) || IsCompressed(src) {
		t.Fatal("magic not recognised")
	}
	if len(c) >= len(src)/5 {
		t.Errorf("compressed %d of %d bytes", len(c), len(src))
	}
	out, err := dec.Decompress(c)
	if err != nil || !bytes.Equal(out, src) {
		t.Fatalf("round trip: %v", err)
	}
}

func TestHostilePayloads(t *testing.T) {
	enc, _ := NewEncoder()
	dec, _ := NewDecoder(64 << 10)
	bomb := enc.Compress(nil, make([]byte, 8<<20)) // 8 MiB of zeros in a few hundred bytes
	if _, err := dec.Decompress(bomb); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("bomb: %v, want ErrTooLarge", err)
	}
	for _, p := range [][]byte{{0x28, 0xB5, 0x2F, 0xFD}, {0x28, 0xB5, 0x2F, 0xFD, 1, 2, 3, 4, 5}, append(enc.Compress(nil, []byte("hello")), 9)} {
		if _, err := dec.Decompress(p); err == nil {
			t.Errorf("Decompress(%x) succeeded", p)
		}
	}
}

func FuzzDecompress(f *testing.F) {
	enc, _ := NewEncoder()
	f.Add(enc.Compress(nil, []byte(`{"v":1}`)))
	f.Add([]byte{0x28, 0xB5, 0x2F, 0xFD, 0, 0})
	dec, _ := NewDecoder(1 << 16)
	f.Fuzz(func(t *testing.T, p []byte) {
		out, err := dec.Decompress(p)
		if err == nil && len(out) > 1<<16 {
			t.Fatalf("output %d bytes beyond the limit", len(out))
		}
		if err != nil && !errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("unclassified error %v", err)
		}
	})
}
