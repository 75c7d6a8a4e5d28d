package classify

import (
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"

	"github.com/shelfgate/shelfgate/gateway"
)

func TestParseLine(t *testing.T) {
	for _, tc := range []struct {
		in      string
		sku     string
		qty     int
		wantErr bool
	}{
		{"4000000000001", "4000000000001", 0, false},
		{"4000000000001*3", "4000000000001", 3, false},
		{" 4000000000001*12 ", "4000000000001", 12, false},
		{"*3", "", 0, true},
		{"4000000000001*", "", 0, true},
		{"4000000000001*0", "", 0, true},
		{"4000000000001*x", "", 0, true},
		{"4000000000001*99999", "", 0, true},
	} {
		sku, qty, err := ParseLine(tc.in)
		if (err != nil) != tc.wantErr || sku != tc.sku || qty != tc.qty {
			t.Errorf("ParseLine(%q) = %q, %d, %v", tc.in, sku, qty, err)
		}
	}
}

func FuzzParseLine(f *testing.F) {
	for _, s := range []string{"4000000000001", "4000000000001*3", "*", "a*b*c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sku, qty, err := ParseLine(s)
		if err == nil && (sku == "" || qty < 0 || qty > 10000) {
			t.Errorf("ParseLine(%q) = %q, %d without error", s, sku, qty)
		}
	})
}

// fakeLight records the level of the pick-to-light output.
type fakeLight struct{ L gpio.Level }

func (f *fakeLight) Out(l gpio.Level) error { f.L = l; return nil }

var _ Light = gpio.PinOut(nil)

// The mis-pick link sits after the plate detector in a chain; this feeds
// it the scans and the detector's picks as the gateway would.
func TestMisPickThroughChain(t *testing.T) {
	light := &fakeLight{}
	mp, err := NewMisPick(MisPickConfig{
		Pickers: []Picker{{Scanner: "scanner/a", Reader: "rfid/a", Plates: []string{"plate-01"}}},
		Light:   light,
	})
	if err != nil {
		t.Fatal(err)
	}
	d, p := newTestDetector(t, Analytic{}, nil, nil)
	chain := []gateway.Classifier{d, mp}
	run := func(rs []gateway.Reading) (picks, mis []gateway.Event) {
		for _, r := range rs {
			for _, ev := range chain[0].Observe(r) {
				picks = append(picks, ev)
				mis = append(mis, chain[1].ObserveEvent(ev)...)
			}
		}
		return picks, mis
	}
	s := newScript(p, 9)
	s.add(2000, 300, 200)
	run(s.samples(20, nil))
	scan := func(code string) {
		t0 := s.t0.Add(time.Duration(s.k) * 100 * time.Millisecond)
		mp.ObserveEvent(gateway.Event{Kind: gateway.EventTag, Stream: "rfid/a", Detail: "TOTE-7", Time: t0})
		mp.ObserveEvent(gateway.Event{Kind: gateway.EventScan, Stream: "scanner/a", Detail: code, Time: t0})
	}
	for i, tc := range []struct {
		scan          string
		facing, units int
		want          bool
		light         gpio.Level
	}{
		{p.Facings[2].SKU + "*2", 2, 2, false, gpio.Low},
		{p.Facings[1].SKU, 2, 1, true, gpio.High},        // wrong SKU
		{p.Facings[0].SKU + "*1", 0, 1, false, gpio.Low}, // correct: the light goes off
		{p.Facings[3].SKU + "*3", 3, 2, true, gpio.High}, // wrong quantity
		{"", 1, 1, false, gpio.High},                     // no open line: not judged
	} {
		if tc.scan != "" {
			scan(tc.scan)
		}
		picks, mis := run(s.visit(tc.facing, tc.units))
		if len(picks) != 1 {
			t.Fatalf("case %d: %d picks", i, len(picks))
		}
		if got := len(mis) == 1; got != tc.want || len(mis) > 1 {
			t.Fatalf("case %d: mispicks %+v, want %v", i, mis, tc.want)
		}
		if tc.want {
			m := mis[0]
			if m.Kind != gateway.EventMisPick || m.Inference.Plate != "plate-01" || !m.Time.Equal(picks[0].Time) || m.Detail == "" {
				t.Errorf("case %d: mispick %+v", i, m)
			}
			t.Logf("case %d: %s", i, m.Detail)
		}
		if light.L != tc.light {
			t.Errorf("case %d: light %v, want %v", i, light.L, tc.light)
		}
	}
	if st := mp.Stats(); st.Judged != 4 || st.MisPicks != 2 {
		t.Errorf("stats %+v", st)
	}
}
