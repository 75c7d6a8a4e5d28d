package config

import (
	"errors"
	"strings"
	"testing"
)

// TestLoadDocument checks that an in-memory document is validated like a
// file: errors carry the document's name, line and field path, and a
// site-wide document takes the gateway id it is given.
func TestLoadDocument(t *testing.T) {
	env := func(string) (string, bool) { return "", false }
	bad := "gateway:\n  id: gw-1\n  site: s1\nuplink:\n  window: -3\n  batch_records: lots\n"
	_, err := LoadDocument([]byte(bad), DocumentOptions{Name: "desired config v7", Lookup: env})
	var es Errors
	if !errors.As(err, &es) {
		t.Fatalf("err = %v, want Errors", err)
	}
	text := err.Error()
	for _, want := range []string{"desired config v7:6: uplink.batch_records:", "desired config v7:5: uplink.window:"} {
		if !strings.Contains(text, want) {
			t.Errorf("errors\n%s\nlack %q", text, want)
		}
	}

	site := "gateway:\n  site: s1\noutbox:\n  path: /tmp/x.db\nsimulation:\n  seed: 1\n"
	c, err := LoadDocument([]byte(site), DocumentOptions{Name: "doc", Lookup: env, GatewayID: "gw-9"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Gateway.ID != "gw-9" || c.File() != "doc" {
		t.Errorf("gateway.id %q file %q, want gw-9 and doc", c.Gateway.ID, c.File())
	}
	if _, err := LoadDocument([]byte(site), DocumentOptions{Name: "doc", Lookup: env}); err == nil || !strings.Contains(err.Error(), "gateway.id") {
		t.Errorf("without GatewayID: err = %v, want a gateway.id error", err)
	}
}
