package main

import (
	"strings"
	"testing"
)

func TestParseStatCPU(t *testing.T) {
	for _, tc := range []struct {
		stat    string
		want    float64
		wantErr bool
	}{
		// utime 250 + stime 50 ticks at 100 Hz.
		{"1234 (shelfgate) S 1 1234 1234 0 -1 4194560 1000 0 0 0 250 50 0 0 20 0 9 0 100 0 0", 3, false},
		// A command name with spaces and a ')' inside.
		{"77 (a) b (c)) R 1 77 77 0 -1 0 0 0 0 0 7 3 0 0 20 0 1 0 5 0 0", 0.1, false},
		{"77 shelfgate S 1", 0, true},
		{"77 (x) S 1 2 3", 0, true},
		{"77 (x) S 1 77 77 0 -1 0 0 0 0 0 seven 3 0", 0, true},
	} {
		got, err := parseStatCPU(tc.stat, 100)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("%q: %v, %v; want %v (error %v)", tc.stat, got, err, tc.want, tc.wantErr)
		}
	}
}

func FuzzParseStatCPU(f *testing.F) {
	f.Add("1234 (shelfgate) S 1 1234 1234 0 -1 4194560 1000 0 0 0 250 50 0 0")
	f.Fuzz(func(t *testing.T, s string) {
		if v, err := parseStatCPU(s, 100); err == nil && v < 0 {
			t.Fatalf("%q: negative CPU %v", s, v)
		}
	})
}

func TestFindSample(t *testing.T) {
	exposition := `# HELP shelfgate_readings_committed_total Readings committed to the outbox.
# TYPE shelfgate_readings_committed_total counter
shelfgate_readings_committed_total 123456
shelfgate_readings_committed_total_other 9
shelfgate_loadcell_readings_total{bin="a",sensor="b"} 7
shelfgate_outbox_oldest_unsent_seconds 1.5e+01
`
	for _, tc := range []struct {
		name    string
		want    float64
		wantErr string
	}{
		{"shelfgate_readings_committed_total", 123456, ""},
		{"shelfgate_outbox_oldest_unsent_seconds", 15, ""},
		{"shelfgate_loadcell_readings_total", 0, "not exposed"}, // labelled samples are not matched
		{"shelfgate_missing", 0, "not exposed"},
	} {
		got, err := findSample(strings.NewReader(exposition), tc.name)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s: %v, %v; want error %q", tc.name, got, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: %v, %v; want %v", tc.name, got, err, tc.want)
		}
	}
	if _, err := findSample(strings.NewReader("x_total NaNish\n"), "x_total"); err == nil || !strings.Contains(err.Error(), `"NaNish"`) {
		t.Errorf("bad value: %v", err)
	}
}
