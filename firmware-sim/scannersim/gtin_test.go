package scannersim

import (
	"bufio"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
)

func loadGTINs(t *testing.T) [][2]string {
	t.Helper()
	f, err := os.Open("testdata/gtin.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out [][2]string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		kind, code, ok := strings.Cut(line, " ")
		if !ok {
			t.Fatalf("bad fixture line %q", line)
		}
		out = append(out, [2]string{kind, code})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 {
		t.Fatal("no fixtures")
	}
	return out
}

func TestKnownGTINs(t *testing.T) {
	for _, g := range loadGTINs(t) {
		kind, code := g[0], g[1]
		var got string
		var err error
		switch kind {
		case "EAN13":
			got, err = EAN13(code[:12])
		case "UPCA":
			got, err = UPCA(code[:11])
		default:
			t.Fatalf("unknown kind %q", kind)
		}
		if err != nil || got != code {
			t.Errorf("%s(%s) = %q, %v; want %q", kind, code[:len(code)-1], got, err, code)
		}
		if !ValidGTIN(code) {
			t.Errorf("ValidGTIN(%s) = false", code)
		}
		bad, err := BreakCheckDigit(code, nil)
		if err != nil || ValidGTIN(bad) || bad[:len(bad)-1] != code[:len(code)-1] {
			t.Errorf("BreakCheckDigit(%s) = %q, %v", code, bad, err)
		}
	}
}

func TestGTINErrors(t *testing.T) {
	tests := []struct {
		name string
		fn   func() (string, error)
	}{
		{"EAN13 short", func() (string, error) { return EAN13("12345") }},
		{"EAN13 letter", func() (string, error) { return EAN13("40063813339x") }},
		{"UPCA long", func() (string, error) { return UPCA("036000291452") }},
		{"break short", func() (string, error) { return BreakCheckDigit("1", nil) }},
	}
	for _, tt := range tests {
		if got, err := tt.fn(); err == nil {
			t.Errorf("%s: got %q, want error", tt.name, got)
		}
	}
	if _, err := CheckDigit(""); err == nil {
		t.Error("CheckDigit(\"\") succeeded")
	}
	for _, c := range []string{"", "123", "4006381333932", "400638133393a", "40063813339311"} {
		if ValidGTIN(c) {
			t.Errorf("ValidGTIN(%q) = true", c)
		}
	}
}

func TestRandomCodes(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		e, u := RandomEAN13(r), RandomUPCA(r)
		if len(e) != 13 || !ValidGTIN(e) || len(u) != 12 || !ValidGTIN(u) {
			t.Fatalf("invalid random codes %q %q", e, u)
		}
		bad, err := BreakCheckDigit(e, r)
		if err != nil || ValidGTIN(bad) {
			t.Fatalf("BreakCheckDigit(%s) = %q, %v", e, bad, err)
		}
	}
}
