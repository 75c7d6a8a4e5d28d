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
