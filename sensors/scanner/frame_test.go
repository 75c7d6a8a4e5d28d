package scanner

import (
	"bytes"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		line string
		sym  Symbology
		want Reason
	}{
		{"ean13", "4006381333931", SymEAN13, ReasonOK},
		{"ean13 wrong check", "4006381333932", 0, ReasonCheckDigit},
		{"upca", "036000291452", SymUPCA, ReasonOK},
		{"upca wrong check", "036000291453", 0, ReasonCheckDigit},
		{"ean8", "96385074", SymEAN8, ReasonOK},
		{"ean8 wrong check", "96385075", 0, ReasonCheckDigit},
		{"gtin14", "10614141000415", SymGTIN14, ReasonOK},
		{"sscc", "106141411234567897", SymSSCC, ReasonOK},
		{"numeric odd length", "1234567", 0, ReasonNumericLength},
		{"one digit", "7", 0, ReasonNumericLength},
		{"empty", "", 0, ReasonEmpty},
		{"text", "TOTE-0042", SymText, ReasonOK},
		{"single char text", "A", SymText, ReasonOK},
		{"nul", "4006381\x00333931", 0, ReasonNonPrintable},
		{"high byte", "TOTE\xff", 0, ReasonNonPrintable},
		{"tab", "A\tB", 0, ReasonNonPrintable},
		{"del", "A\x7f", 0, ReasonNonPrintable},
		{"gs1 gtin batch", "(01)09501101530003(10)AB12", SymGS1, ReasonOK},
		{"gs1 gtin date serial", "(01)09501101530003(17)251231(21)XYZ", SymGS1, ReasonOK},
		{"gs1 sscc", "(00)106141411234567897", SymGS1, ReasonOK},
		{"gs1 weight", "(01)09501101530003(3103)001250", SymGS1, ReasonOK},
		{"gs1 gln", "(414)5412345000013", SymGS1, ReasonOK},
		{"gs1 bad gtin check", "(01)09501101530004", 0, ReasonCheckDigit},
		{"gs1 short gtin", "(01)0950110153000", 0, ReasonGS1},
		{"gs1 bad month", "(17)251331", 0, ReasonGS1},
		{"gs1 unknown ai", "(99)ABC", 0, ReasonGS1},
		{"gs1 unclosed", "(01", 0, ReasonGS1},
		{"gs1 empty value", "(10)", 0, ReasonGS1},
		{"gs1 batch too long", "(10)" + strings.Repeat("A", 21), 0, ReasonGS1},
		{"gs1 letters in numeric", "(37)12A", 0, ReasonGS1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sym, r := Validate([]byte(tt.line))
			if r != tt.want || (r == ReasonOK && sym != tt.sym) {
				t.Errorf("Validate(%q) = %v, %v; want %v, %v", tt.line, sym, r, tt.sym, tt.want)
			}
		})
	}
}

func TestParseFrames(t *testing.T) {
	long := strings.Repeat("7", 30)
	tests := []struct {
		name   string
		in     string
		suffix Suffix
		want   []Frame
	}{
		{"two cr", "4006381333931\r96385074\r", SuffixCR, []Frame{
			{Code: "4006381333931", Symbology: SymEAN13}, {Code: "96385074", Symbology: SymEAN8}}},
		{"lf", "96385074\n", SuffixLF, []Frame{{Code: "96385074", Symbology: SymEAN8}}},
		{"crlf", "96385074\r\nTOTE-1\r\n", SuffixCRLF, []Frame{
			{Code: "96385074", Symbology: SymEAN8}, {Code: "TOTE-1", Symbology: SymText}}},
		{"crlf lone cr is content", "AB\rC\r\n", SuffixCRLF, []Frame{{Reject: ReasonNonPrintable}}},
		{"crlf double cr", "AB\r\r\n", SuffixCRLF, []Frame{{Reject: ReasonNonPrintable}}},
		{"lf in cr mode is content", "AB\nC\r", SuffixCR, []Frame{{Reject: ReasonNonPrintable}}},
		{"empty line", "\r96385074\r", SuffixCR, []Frame{{Reject: ReasonEmpty}, {Code: "96385074", Symbology: SymEAN8}}},
		{"exactly max", strings.Repeat("A", 20) + "\r", SuffixCR, []Frame{{Code: strings.Repeat("A", 20), Symbology: SymText}}},
		{"over-long then valid", long + "\r96385074\r", SuffixCR, []Frame{{Reject: ReasonTooLong}, {Code: "96385074", Symbology: SymEAN8}}},
		{"over-long crlf", long + "\r\n96385074\r\n", SuffixCRLF, []Frame{{Reject: ReasonTooLong}, {Code: "96385074", Symbology: SymEAN8}}},
		{"over-long at eof counted once", long, SuffixCR, []Frame{{Reject: ReasonTooLong}}},
		{"partial", "96385074\r4006381", SuffixCR, []Frame{{Code: "96385074", Symbology: SymEAN8}, {Reject: ReasonPartial}}},
		{"partial crlf cr only", "96385074\r", SuffixCRLF, []Frame{{Reject: ReasonPartial}}},
		{"nothing", "", SuffixCR, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ParseFrames([]byte(tt.in), tt.suffix, 20)
			if len(got) != len(tt.want) {
				t.Fatalf("ParseFrames(%q) = %+v; want %+v", tt.in, got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("frame %d = %+v; want %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

// TestFramerChunking feeds a capture one byte at a time and checks the
// frames do not depend on how reads split the stream.
func TestFramerChunking(t *testing.T) {
	for _, sfx := range []Suffix{SuffixCR, SuffixLF, SuffixCRLF} {
		s := []string{"\r", "\n", "\r\n"}[sfx]
		in := []byte("4006381333931" + s + strings.Repeat("9", 50) + s + "\x00\x01" + s + "TOTE" + s + "12")
		whole := ParseFrames(in, sfx, 20)
		var bytewise []Frame
		f := NewFramer(sfx, 20)
		add := func(fr Frame) { bytewise = append(bytewise, fr) }
		for i := range in {
			f.Feed(in[i:i+1], add)
			if f.Pending() > 20 {
				t.Fatalf("%v: %d bytes pending, max 20", sfx, f.Pending())
			}
		}
		f.Flush(add)
		if len(whole) != 5 || len(bytewise) != len(whole) {
			t.Fatalf("%v: whole %+v, bytewise %+v", sfx, whole, bytewise)
		}
		for i := range whole {
			if whole[i] != bytewise[i] {
				t.Errorf("%v: frame %d: whole %+v, bytewise %+v", sfx, i, whole[i], bytewise[i])
			}
		}
	}
}

func TestParseSuffix(t *testing.T) {
	for in, want := range map[string]Suffix{"CR": SuffixCR, "LF": SuffixLF, "CRLF": SuffixCRLF, "\r\n": SuffixCRLF} {
		if got, err := ParseSuffix(in); err != nil || got != want {
			t.Errorf("ParseSuffix(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := ParseSuffix("TAB"); err == nil {
		t.Error("ParseSuffix(TAB) succeeded")
	}
}

// FuzzParseFrames checks the framer's invariants on any input and any way
// of splitting it into reads: it never panics, never holds more than maxLen
// bytes, every accepted code passes Validate and is at most maxLen long, and
// the frames do not depend on the split.
func FuzzParseFrames(f *testing.F) {
	f.Add([]byte("4006381333931\r96385074\r"), uint8(0), uint8(20), uint8(3))
	f.Add([]byte("96385074\r\n(01)09501101530003(10)AB\r\n"), uint8(2), uint8(40), uint8(1))
	f.Add([]byte("\x00\xff\r\r\n7777777777777777777777777\n"), uint8(1), uint8(8), uint8(7))
	f.Fuzz(func(t *testing.T, data []byte, sfx, maxLen, chunk uint8) {
		suffix := Suffix(sfx % 3)
		max := int(maxLen%100) + 1
		want := ParseFrames(data, suffix, max)
		step := int(chunk%16) + 1
		var got []Frame
		fr := NewFramer(suffix, max)
		add := func(x Frame) { got = append(got, x) }
		for i := 0; i < len(data); i += step {
			fr.Feed(data[i:min(i+step, len(data))], add)
			if fr.Pending() > max {
				t.Fatalf("%d bytes pending, max %d", fr.Pending(), max)
			}
		}
		fr.Flush(add)
		if len(got) != len(want) {
			t.Fatalf("split by %d: %d frames, whole: %d", step, len(got), len(want))
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("frame %d: split %+v, whole %+v", i, got[i], want[i])
			}
			w := want[i]
			if w.Reject == ReasonOK {
				if len(w.Code) == 0 || len(w.Code) > max {
					t.Fatalf("accepted code of length %d, max %d", len(w.Code), max)
				}
				if sym, r := Validate([]byte(w.Code)); r != ReasonOK || sym != w.Symbology {
					t.Fatalf("accepted %q revalidates as %v, %v", w.Code, sym, r)
				}
				if !bytes.Contains(data, []byte(w.Code)) {
					t.Fatalf("accepted %q not in input", w.Code)
				}
			} else if w.Code != "" || w.Reject >= NumReasons {
				t.Fatalf("bad rejected frame %+v", w)
			}
		}
	})
}
