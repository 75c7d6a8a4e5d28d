package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConfigPushRefusesBeforePublishing: usage mistakes and files that
// fail the local check end before any broker is contacted (the broker URL
// points nowhere, so reaching it would fail differently).
func TestConfigPushRefusesBeforePublishing(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.yaml", "gateway: {id: gw-1, site: s1}\noutbox: {path: /var/lib/shelfgate-test-missing/outbox.db}\nsimulation: {seed: 1}\n")
	siteWide := write("site.yaml", "gateway: {site: s1}\noutbox: {path: o.db}\nsimulation: {seed: 1}\n")
	bad := write("bad.yaml", "gateway: {id: gw-1, site: s1}\noutbox: {path: o.db}\nsimulation: {seed: 1}\nuplink:\n  window: -1\n")
	key := write("k.key", strings.Repeat("ab", 32))
	noEnv := func(string) (string, bool) { return "", false }
	base := []string{"--broker", "tcp://127.0.0.1:1", "--connect-timeout", "100ms", "--key", key}
	for _, tc := range []struct {
		name  string
		args  []string
		usage bool
		want  string
	}{
		{"no file", append(base, "--site", "s1", "--gateway", "gw-1", "--version", "1"), true, "one configuration FILE"},
		{"no target", append(base, "--site", "s1", "--version", "1", good), true, "--gateway G or --all"},
		{"both targets", append(base, "--site", "s1", "--gateway", "gw-1", "--all", "--version", "1", good), true, "--gateway G or --all"},
		{"no version", append(base, "--site", "s1", "--gateway", "gw-1", good), true, "--version"},
		{"invalid", append(base, "--site", "s1", "--gateway", "gw-1", "--version", "1", bad), false, bad + ":5: uplink.window"},
		{"other gateway", append(base, "--site", "s1", "--gateway", "gw-2", "--version", "1", good), false, `gateway.id is "gw-1", not --gateway "gw-2"`},
		{"other site", append(base, "--site", "s2", "--gateway", "gw-1", "--version", "1", good), false, `gateway.site is "s1"`},
		{"site-wide with an id", append(base, "--site", "s1", "--all", "--version", "1", good), false, "leaves it out"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := configPush(context.Background(), tc.args, noEnv, &out, &errOut)
			if err == nil || errors.Is(err, errUsage) != tc.usage || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v (usage %v), want %q", err, errors.Is(err, errUsage), tc.want)
			}
			if strings.Contains(out.String(), "published") {
				t.Errorf("published: %s", out.String())
			}
		})
	}
	// A site-wide file and a file naming a directory only the gateway has
	// pass the local check and go on to connect (which fails here).
	for _, args := range [][]string{
		append(base, "--site", "s1", "--all", "--version", "1", siteWide),
		append(base, "--site", "s1", "--gateway", "gw-1", "--version", "1", good),
	} {
		var out, errOut bytes.Buffer
		err := configPush(context.Background(), args, noEnv, &out, &errOut)
		if err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") {
			t.Errorf("%v: err = %v, want a connection failure after the local check\n%s", args, err, errOut.String())
		}
	}
}
