package warehouse

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
)

// plateDigest hashes the plates' description, a sample of their codes over
// ten minutes and their labels.
func plateDigest(t *testing.T, cfg Config) string {
	t.Helper()
	w, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	rate := int64(cfg.SampleRate)
	for p, pl := range w.Plates() {
		fmt.Fprintf(h, "%+v\n", pl)
		for k := int64(0); k < 600*rate; k += 3 {
			binary.Write(h, binary.LittleEndian, w.PlateCodes(p, k))
		}
		for _, l := range w.PlateLabels(p, 10*time.Minute) {
			fmt.Fprintf(h, "%+v\n", l)
		}
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

// TestPlatesUnchangedByScenarioFields pins the default plates' output to
// the digest taken before plate catalogues and cell faults existed.
func TestPlatesUnchangedByScenarioFields(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Plates = DefaultPlateConfig()
	const want = "0384537eb7d420c56bc152d600cae03211b1adec0d00c7374d30dba82622d4d8"
	if got := plateDigest(t, cfg); got != want {
		t.Errorf("default plates: digest %s, want %s", got, want)
	}
}

func TestParseScenario(t *testing.T) {
	cfg, err := ParseScenario(strings.NewReader(`
warehouse:
  seed: 9
  plates:
    count: 2
    facings: 2
    width_mm: 600
    depth_mm: 400
    faults:
      - {plate: 1, cell: 3, kind: stuck, from: 1m30s, until: 2m}
`))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Seed != 9 || cfg.NoiseGrams != DefaultConfig().NoiseGrams || cfg.Plates.Count != 2 {
		t.Errorf("config %+v", cfg)
	}
	want := CellFault{Plate: 1, Cell: 3, Kind: FaultStuck, From: 90 * time.Second, Until: 2 * time.Minute}
	if len(cfg.Plates.Faults) != 1 || cfg.Plates.Faults[0] != want {
		t.Errorf("faults %+v, want %+v", cfg.Plates.Faults, want)
	}

	plates := "warehouse:\n  plates:\n    count: 2\n    facings: 2\n    width_mm: 600\n    depth_mm: 400\n"
	for _, tt := range []struct{ in, want string }{
		{"", "empty"},
		{"warehouse:\n", "empty"},
		{"warehouse:\n  sed: 1\n", "field sed not found"},
		{"shelves: 1\n", "field shelves not found"},
		{"warehouse:\n  sample_rate: 20\n", "sample_rate: 20"},
		{plates + "    faults:\n      - {plate: 2, cell: 0, kind: dead}\n", "plates.faults[0].plate: 2"},
		{plates + "    faults:\n      - {plate: 0, cell: 4, kind: dead}\n", "plates.faults[0].cell: 4"},
		{plates + "    faults:\n      - {plate: 0, cell: 0, kind: melted}\n", `plates.faults[0].kind: "melted"`},
		{plates + "    faults:\n      - {plate: 0, cell: 0, kind: noisy}\n", "plates.faults[0].grams: 0 must be > 0"},
		{plates + "    faults:\n      - {plate: 0, cell: 0, kind: dead, from: 10s, until: 5s}\n", "plates.faults[0].until: 5s"},
		{plates + "    faults:\n      - {plate: 0, cell: 0, kind: dead, from: soon}\n", "soon"},
		{plates + "    skus:\n      - {code: \"4012345000011\", name: x, unit_grams: 10}\n", "plates.skus[0].code"},
	} {
		_, err := ParseScenario(strings.NewReader(tt.in))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: error %v, want one containing %q", tt.in, err, tt.want)
		}
	}
	if _, err := LoadScenario("testdata/does-not-exist.yaml"); err == nil {
		t.Error("missing file: no error")
	}
}

func TestPlateSKUsStockFacings(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Plates = DefaultPlateConfig()
	cfg.Plates.Count, cfg.Plates.Facings = 2, 3
	cfg.Plates.SKUs = []SKU{{Code: "4012345000016", Name: "a", UnitGrams: 250}, {Code: "4012345000023", Name: "b", UnitGrams: 260}}
	w, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for p, pl := range w.Plates() {
		for f, fc := range pl.Facings {
			want := cfg.Plates.SKUs[(p*3+f)%2]
			if fc.SKU != want.Code || fc.SKUName != want.Name || fc.UnitGrams != want.UnitGrams {
				t.Errorf("plate %d facing %d: %+v, want %+v", p, f, fc, want)
			}
		}
	}
	cfg.Plates.SKUs[0].UnitGrams = 1 // New copied the catalogue
	if w.Config().Plates.SKUs[0].UnitGrams != 250 {
		t.Error("warehouse aliases the caller's plate catalogue")
	}
}

func TestCellFaults(t *testing.T) {
	base := DefaultConfig()
	base.Plates = DefaultPlateConfig()
	clean, err := New(base)
	if err != nil {
		t.Fatal(err)
	}
	const from, until = 10 * time.Second, 20 * time.Second
	kFrom, kUntil := int64(100), int64(200) // 10 samples/s
	tests := []struct {
		kind  string
		grams float64
		check func(t *testing.T, k int64, got, clean int32)
	}{
		{FaultStuck, 0, func(t *testing.T, k int64, got, _ int32) {
			if want := clean.PlateCodeAt(1, 2, kFrom); got != want {
				t.Fatalf("sample %d: %d, want the code at from %d", k, got, want)
			}
		}},
		{FaultSaturated, 0, func(t *testing.T, k int64, got, _ int32) {
			if got != MaxCode {
				t.Fatalf("sample %d: %d, want MaxCode", k, got)
			}
		}},
		{FaultDead, 0, func(t *testing.T, k int64, got, _ int32) {
			if got != 0 {
				t.Fatalf("sample %d: %d, want 0", k, got)
			}
		}},
		{FaultDrift, 3600, func(t *testing.T, k int64, got, c int32) {
			// 3600 g/h is 1 g/s: (k-kFrom)/10 grams more.
			cpg := clean.Plates()[1].Cells[2].CountsPerGram
			want := float64(k-kFrom) / 10
			if d := float64(got-c)/cpg - want; d > 0.01 || d < -0.01 {
				t.Fatalf("sample %d: %.3f g above clean, want %.3f", k, float64(got-c)/cpg, want)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			cfg := base
			cfg.Plates.Faults = []CellFault{{Plate: 1, Cell: 2, Kind: tt.kind, From: from, Until: until, Grams: tt.grams}}
			w, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			for k := int64(0); k < 300; k++ {
				for p := range w.Plates() {
					for c := range 4 {
						got, want := w.PlateCodeAt(p, c, k), clean.PlateCodeAt(p, c, k)
						if p == 1 && c == 2 && k >= kFrom && k < kUntil {
							tt.check(t, k, got, want)
							continue
						}
						if got != want {
							t.Fatalf("plate %d cell %d sample %d: %d, want the clean %d", p, c, k, got, want)
						}
					}
					if w.PlateGramsAt(p, 2, k) != clean.PlateGramsAt(p, 2, k) {
						t.Fatalf("fault changed the true load")
					}
				}
			}
		})
	}
	t.Run(FaultNoisy, func(t *testing.T) {
		cfg := base
		cfg.Plates.Faults = []CellFault{{Plate: 0, Cell: 0, Kind: FaultNoisy, Grams: 20}}
		w, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		cpg := w.Plates()[0].Cells[0].CountsPerGram
		var sum, sq float64
		const n = 5000
		for k := int64(0); k < n; k++ {
			d := float64(w.PlateCodeAt(0, 0, k)-clean.PlateCodeAt(0, 0, k)) / cpg
			sum += d
			sq += d * d
		}
		std := math.Sqrt(sq/n - (sum/n)*(sum/n))
		if std < 18 || std > 22 {
			t.Errorf("noisy fault: extra noise std %.2f g, want about 20", std)
		}
	})
}
