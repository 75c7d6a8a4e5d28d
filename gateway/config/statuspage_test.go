package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestStatusPageErrors(t *testing.T) {
	dir := t.TempDir()
	tok := filepath.Join(dir, "token")
	os.WriteFile(tok, []byte("a-long-enough-token\n"), 0o600)
	open := filepath.Join(dir, "open-token")
	os.WriteFile(open, []byte("a-long-enough-token\n"), 0o644)
	os.Chmod(open, 0o644) // whatever the umask
	cert := filepath.Join(dir, "cert.pem")
	os.WriteFile(cert, []byte("x"), 0o644)
	missing := filepath.Join(dir, "nope")
	cases := []struct {
		name, metrics, want string
		line                int // of the reported field; 0: not checked
	}{
		{name: "defaults", metrics: "{listen: 127.0.0.1:9464}"},
		{name: "full", metrics: "listen: 127.0.0.1:9464\n  status_page:\n    token_file: " + tok + "\n    tls_cert_file: " + cert + "\n    tls_key_file: " + cert + "\n    calibration_file: " + filepath.Join(dir, "cal.yaml")},
		{name: "token env", metrics: "{listen: 127.0.0.1:9464, status_page: {token_env: SHELF_TOKEN}}"},
		{name: "disabled without listener", metrics: "{status_page: {enabled: false}}"},
		{name: "disabled without listener keeps settings", metrics: "{status_page: {enabled: false, token_env: SHELF_TOKEN}}"},
		{name: "settings without listener", metrics: "status_page:\n    token_env: SHELF_TOKEN", want: "metrics.status_page.token_env: \"SHELF_TOKEN\" is set but metrics.listen is empty", line: 4},
		{name: "enabled without listener", metrics: "status_page:\n    enabled: true", want: "metrics.status_page.enabled: true needs metrics.listen", line: 4},
		{name: "missing token file", metrics: "listen: 127.0.0.1:9464\n  status_page:\n    token_file: " + missing, want: "metrics.status_page.token_file: \"" + missing + "\": no such file", line: 5},
		{name: "world-readable token file", metrics: "listen: 127.0.0.1:9464\n  status_page:\n    token_file: " + open, want: "metrics.status_page.token_file: \"" + open + "\" (mode 0644) is readable by other users", line: 5},
		{name: "token file is a directory", metrics: "{listen: 127.0.0.1:9464, status_page: {token_file: " + dir + "}}", want: "is not a regular file"},
		{name: "both token sources", metrics: "{listen: 127.0.0.1:9464, status_page: {token_file: " + tok + ", token_env: T}}", want: "metrics.status_page.token_env: \"T\" and token_file"},
		{name: "token in token_env", metrics: "{listen: 127.0.0.1:9464, status_page: {token_env: 'hunter2 secret'}}", want: "metrics.status_page.token_env: \"hunter2 secret\" is not an environment variable name"},
		{name: "cert without key", metrics: "{listen: 127.0.0.1:9464, status_page: {tls_cert_file: " + cert + "}}", want: "metrics.status_page.tls_key_file: missing"},
		{name: "key without cert", metrics: "{listen: 127.0.0.1:9464, status_page: {tls_key_file: " + cert + "}}", want: "metrics.status_page.tls_cert_file: missing"},
		{name: "missing cert", metrics: "{listen: 127.0.0.1:9464, status_page: {tls_cert_file: " + missing + ", tls_key_file: " + cert + "}}", want: "metrics.status_page.tls_cert_file: \"" + missing + "\": no such file"},
		{name: "calibration dir missing", metrics: "{listen: 127.0.0.1:9464, status_page: {calibration_file: " + filepath.Join(missing, "cal.yaml") + "}}", want: "metrics.status_page.calibration_file:"},
		{name: "unknown key", metrics: "{listen: 127.0.0.1:9464, status_page: {token: abc}}", want: "unknown key \"token\""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := "gateway: {id: gw, site: s}\nmetrics:\n  " + tc.metrics + "\n"
			c, err := Parse(strings.NewReader(src))
			if err == nil {
				err = c.Validate()
			}
			var es Errors
			if err != nil && !errors.As(err, &es) {
				t.Fatalf("error %v is not Errors", err)
			}
			var mine []Error
			for _, e := range es {
				if strings.HasPrefix(e.Path, "metrics") {
					mine = append(mine, e)
				}
			}
			if tc.want == "" {
				if len(mine) != 0 {
					t.Fatalf("unexpected errors: %v", mine)
				}
				return
			}
			if len(mine) != 1 || !strings.Contains(mine[0].Error(), tc.want) {
				t.Fatalf("errors %v, want one containing %q", err, tc.want)
			}
			if tc.line != 0 && mine[0].Line != tc.line {
				t.Fatalf("%v: line %d, want %d", mine[0], mine[0].Line, tc.line)
			}
		})
	}
}

func TestStatusPageOn(t *testing.T) {
	yes, no := true, false
	for _, tc := range []struct {
		enabled *bool
		listen  string
		want    bool
	}{
		{nil, "127.0.0.1:9464", true},
		{nil, "", false},
		{&no, "127.0.0.1:9464", false},
		{&yes, "127.0.0.1:9464", true},
		{&yes, "", false},
	} {
		if got := (StatusPage{Enabled: tc.enabled}).On(tc.listen); got != tc.want {
			t.Errorf("enabled %v listen %q: %v, want %v", tc.enabled, tc.listen, got, tc.want)
		}
	}
}
