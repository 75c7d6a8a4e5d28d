package scanner

import (
	"testing"
)

// decodeAll decodes k's events with layout.
func decodeAll(t *testing.T, k *keyEvents, layout Layout) string {
	t.Helper()
	d, err := NewLayoutDecoder(k.size, layout)
	if err != nil {
		t.Fatal(err)
	}
	return string(d.Decode(nil, k.buf.Bytes()))
}

// Key sequences as the xkb us, de and fr layouts define them, decoded.
func TestLayoutKeys(t *testing.T) {
	const (
		key1, key7, key0, keyMinus   = 2, 8, 11, 12
		keyQ, keyW, keyY             = 16, 17, 21
		keyA, keySemicolon           = 30, 39
		keyZ, keyM, keySlash, key102 = 44, 50, 53, 86
	)
	type press struct {
		mod  uint16 // 0, keyLeftShift or keyRightAlt
		code uint16
	}
	for _, tc := range []struct {
		layout Layout
		keys   []press
		want   string
	}{
		{LayoutUS, []press{{0, key1}, {keyLeftShift, key1}, {0, keyQ}, {0, keyY}, {0, keyZ}, {0, keySemicolon}, {keyLeftShift, key7}}, "1!qyz;&"},
		{LayoutDE, []press{{0, key1}, {keyLeftShift, key7}, {0, keyY}, {0, keyZ}, {keyRightAlt, keyQ}, {0, keySlash}, {keyLeftShift, keySlash}, {keyRightAlt, key7}, {0, key102}, {keyRightAlt, keyMinus}}, "1/zy@-_{<\\"},
		{LayoutDE, []press{{0, keyMinus}, {0, keySemicolon}}, "\x1a\x1a"}, // ß, ö: no ASCII
		{LayoutFR, []press{{keyLeftShift, key1}, {keyLeftShift, key0}, {0, key1}, {0, keyQ}, {0, keyA}, {0, keyW}, {0, keyZ}, {0, keySemicolon}, {0, keyM}, {keyRightAlt, key0}, {0, keyMinus}, {keyLeftShift, keyM}}, "10&aqzwm,@)?"},
		{LayoutFR, []press{{0, key7}, {0, key0}}, "\x1a\x1a"}, // è, à: no ASCII
	} {
		k := &keyEvents{size: EventSize64}
		for _, p := range tc.keys {
			if p.mod != 0 {
				k.key(p.mod, 1)
			}
			k.tap(p.code)
			if p.mod != 0 {
				k.key(p.mod, 0)
			}
		}
		if got := decodeAll(t, k, tc.layout); got != tc.want {
			t.Errorf("%v: %q, want %q", tc.layout, got, tc.want)
		}
	}
}

// What a scanner set to each layout types for real codes decodes back with
// that layout, and not with the US one where the layouts differ.
func TestLayoutRoundTrip(t *testing.T) {
	codes := []string{"4006381333931", "96385074", "TOTE-0042", "(01)04006381333931(17)261231(10)ab12", "zyqwam"}
	for _, layout := range []Layout{LayoutUS, LayoutDE, LayoutFR} {
		for _, code := range codes {
			k := &keyEvents{size: EventSize32, layout: layout}
			k.text(code)
			k.tap(keyEnter)
			if got := decodeAll(t, k, layout); got != code+"\r" {
				t.Errorf("%v %q: decoded %q", layout, code, got)
			}
		}
	}
	k := &keyEvents{size: EventSize64, layout: LayoutFR}
	k.text("4006381333931")
	if got := decodeAll(t, k, LayoutUS); got != "$))^#*!###(#!" {
		t.Errorf("FR scan decoded as US: %q", got)
	}
	k = &keyEvents{size: EventSize64, layout: LayoutDE}
	k.text("zy-")
	if got := decodeAll(t, k, LayoutUS); got != "yz/" {
		t.Errorf("DE scan decoded as US: %q", got)
	}
}

func TestParseLayout(t *testing.T) {
	for s, want := range map[string]Layout{"": LayoutUS, "us": LayoutUS, "de": LayoutDE, "fr": LayoutFR} {
		if l, err := ParseLayout(s); err != nil || l != want || (s != "" && l.String() != s) {
			t.Errorf("ParseLayout(%q) = %v, %v", s, l, err)
		}
	}
	if _, err := ParseLayout("uk"); err == nil {
		t.Error("uk accepted")
	}
	if _, err := NewLayoutDecoder(0, Layout(9)); err == nil {
		t.Error("layout 9 accepted")
	}
}
