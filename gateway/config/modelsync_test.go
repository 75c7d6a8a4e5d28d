package config

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestModelSyncDefaults(t *testing.T) {
	m := ModelSync{}.WithDefaults("/var/lib/shelfgate/outbox.db")
	want := ModelSync{Dir: "/var/lib/shelfgate/models", MaxBytes: 50 << 20, MaxBlockSize: 1 << 20, Quiet: 30 * time.Second, MaxRounds: 5}
	if m.Dir != want.Dir || m.MaxBytes != want.MaxBytes || m.MaxBlockSize != want.MaxBlockSize || m.Quiet != want.Quiet || m.MaxRounds != want.MaxRounds {
		t.Fatalf("defaults %+v, want %+v", m, want)
	}
	sh := ModelShadow{Windows: 300, HealthMinAgreement: 0.7}.WithDefaults()
	wantSh := ModelShadow{Windows: 300, MinWindows: 20, MinAgreement: 0.9, MaxLatency: time.Millisecond, MinLabelled: 20,
		AccuracyMargin: 0.02, HealthChanges: 20, HealthMinAgreement: 0.7}
	if sh != wantSh || m.Shadow != (ModelShadow{}).WithDefaults() || m.Shadow.Windows != 200 {
		t.Fatalf("shadow defaults %+v (models %+v), want %+v", sh, m.Shadow, wantSh)
	}
}

func TestModelShadowParsed(t *testing.T) {
	c, err := Parse(strings.NewReader("gateway: {id: gw, site: s}\nmodels:\n  shadow: {windows: 50, min_windows: 10, min_agreement: 0.8, max_latency: 2ms,\n    min_labelled: 30, accuracy_margin: 0.05, health_changes: 40, health_min_agreement: 0.6}\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := ModelShadow{Windows: 50, MinWindows: 10, MinAgreement: 0.8, MaxLatency: 2 * time.Millisecond, MinLabelled: 30,
		AccuracyMargin: 0.05, HealthChanges: 40, HealthMinAgreement: 0.6}
	if got := c.Models.WithDefaults(c.Outbox.Path).Shadow; got != want {
		t.Fatalf("shadow %+v, want %+v", got, want)
	}
	if es := c.Models.Validate(c); len(es) != 0 {
		t.Fatal(es)
	}
}

func TestModelSyncErrors(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name, models, want string
	}{
		{"missing key file", `{trusted_keys: ["` + filepath.Join(dir, "nope.pub") + `"]}`, "models.trusted_keys[0]:"},
		{"max_bytes too small", `{max_bytes: 10}`, "models.max_bytes: 10B must be between 1KiB and 1GiB"},
		{"block size too large", `{max_block_size: 2MiB}`, "models.max_block_size: 2MiB must be between 1KiB and 1MiB"},
		{"quiet", `{quiet: 1ms}`, "models.quiet: 1ms must be between 100ms and 1h"},
		{"rounds", `{max_rounds: -1}`, "models.max_rounds: -1 must be between 1 and 1000"},
		{"bundled model missing", `{bundled_model: "` + filepath.Join(dir, "m.sgm") + `"}`, "models.bundled_model:"},
		{"shadow windows", `{shadow: {windows: 20000}}`, "models.shadow.windows: 20000 must be between 1 and 10000"},
		{"shadow min_windows above windows", `{shadow: {windows: 10, min_windows: 11}}`, "models.shadow.min_windows: 11 must be between 1 and models.shadow.windows (10)"},
		{"shadow min_agreement", `{shadow: {min_agreement: 1.5}}`, "models.shadow.min_agreement: 1.5 must be above 0 and at most 1"},
		{"shadow negative agreement", `{shadow: {min_agreement: -0.1}}`, "models.shadow.min_agreement: -0.1 must be above 0"},
		{"shadow max_latency", `{shadow: {max_latency: 2s}}`, "models.shadow.max_latency: 2s must be between 1µs and 1s"},
		{"shadow min_labelled", `{shadow: {min_labelled: -3}}`, "models.shadow.min_labelled: -3 must be between 1 and 10000"},
		{"shadow accuracy_margin", `{shadow: {accuracy_margin: 1}}`, "models.shadow.accuracy_margin: 1 must be at least 0 and below 1"},
		{"shadow health_changes", `{shadow: {health_changes: -1}}`, "models.shadow.health_changes: -1 must be between 1 and 10000"},
		{"shadow health_min_agreement", `{shadow: {health_min_agreement: 2}}`, "models.shadow.health_min_agreement: 2 must be above 0 and at most 1"},
		{"dir parent missing", `{dir: "` + filepath.Join(dir, "a", "b") + `"}`, "models.dir:"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse(strings.NewReader("gateway: {id: gw, site: s}\nmodels: " + tc.models + "\n"))
			if err != nil {
				t.Fatal(err)
			}
			es := c.Models.Validate(c)
			if len(es) != 1 || !strings.Contains(es.Error(), tc.want) {
				t.Fatalf("errors %q, want one containing %q", es.Error(), tc.want)
			}
			if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Config.Validate: %v, want %q", err, tc.want)
			}
		})
	}
	c, err := Parse(strings.NewReader("gateway: {id: gw, site: s}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if es := c.Models.Validate(c); len(es) != 0 {
		t.Fatalf("empty models section: %v", es)
	}
}
