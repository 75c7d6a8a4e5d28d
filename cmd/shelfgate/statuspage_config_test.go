package main

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shelfgate/shelfgate/gateway/config"
)

// The status page's settings come from metrics.status_page, each
// overridden by its SHELFGATE_STATUS_* variable; the token is read from
// the file or variable the configuration names, never from the file
// itself.
func TestStatusPageFromConfig(t *testing.T) {
	dir := t.TempDir()
	cfgTok := filepath.Join(dir, "cfg-token")
	os.WriteFile(cfgTok, []byte("config-file-token\n"), 0o600)
	envTok := filepath.Join(dir, "env-token")
	os.WriteFile(envTok, []byte("env-file-token-x\n"), 0o640)
	open := filepath.Join(dir, "open-token")
	os.WriteFile(open, []byte("world-readable-token\n"), 0o644)
	os.Chmod(open, 0o644)
	yes, no := true, false
	type want struct {
		off                   bool
		token, cert, key, cal string
		err                   string
	}
	for _, tc := range []struct {
		name   string
		listen string
		sp     config.StatusPage
		env    map[string]string
		want   want
	}{
		{name: "no listener", want: want{off: true}},
		{name: "disabled", listen: "127.0.0.1:0", sp: config.StatusPage{Enabled: &no}, want: want{off: true}},
		{name: "enabled by default, read-only", listen: "127.0.0.1:0", want: want{cal: "top.yaml"}},
		{name: "enabled explicitly", listen: "127.0.0.1:0", sp: config.StatusPage{Enabled: &yes}, want: want{cal: "top.yaml"}},
		{name: "token_file", listen: "127.0.0.1:0", sp: config.StatusPage{TokenFile: cfgTok}, want: want{token: "config-file-token", cal: "top.yaml"}},
		{name: "token_env", listen: "127.0.0.1:0", sp: config.StatusPage{TokenEnv: "SG_TEST_TOKEN"}, env: map[string]string{"SG_TEST_TOKEN": "env-named-token"}, want: want{token: "env-named-token", cal: "top.yaml"}},
		{name: "token_env unset", listen: "127.0.0.1:0", sp: config.StatusPage{TokenEnv: "SG_TEST_TOKEN"}, want: want{err: "metrics.status_page.token_env: SG_TEST_TOKEN is empty"}},
		{name: "token_env short", listen: "127.0.0.1:0", sp: config.StatusPage{TokenEnv: "SG_TEST_TOKEN"}, env: map[string]string{"SG_TEST_TOKEN": "short"}, want: want{err: "at least 12"}},
		{name: "env token file overrides", listen: "127.0.0.1:0", sp: config.StatusPage{TokenFile: cfgTok}, env: map[string]string{envStatusTokenFile: envTok}, want: want{token: "env-file-token-x", cal: "top.yaml"}},
		{name: "env token overrides", listen: "127.0.0.1:0", sp: config.StatusPage{TokenFile: cfgTok}, env: map[string]string{envStatusToken: "env-token-value"}, want: want{token: "env-token-value", cal: "top.yaml"}},
		{name: "world-readable token_file", listen: "127.0.0.1:0", sp: config.StatusPage{TokenFile: open}, want: want{err: "readable by other users"}},
		{name: "world-readable env token file", listen: "127.0.0.1:0", env: map[string]string{envStatusTokenFile: open}, want: want{err: envStatusTokenFile + ": \"" + open + "\" (mode 0644) is readable"}},
		{name: "tls from config", listen: "127.0.0.1:0", sp: config.StatusPage{TLSCertFile: "c.pem", TLSKeyFile: "k.pem"}, want: want{cert: "c.pem", key: "k.pem", cal: "top.yaml"}},
		{name: "tls env overrides", listen: "127.0.0.1:0", sp: config.StatusPage{TLSCertFile: "c.pem", TLSKeyFile: "k.pem"}, env: map[string]string{envStatusTLSCert: "ec.pem", envStatusTLSKey: "ek.pem"}, want: want{cert: "ec.pem", key: "ek.pem", cal: "top.yaml"}},
		{name: "tls env half", listen: "127.0.0.1:0", sp: config.StatusPage{TLSCertFile: "c.pem", TLSKeyFile: "k.pem"}, env: map[string]string{envStatusTLSCert: "ec.pem"}, want: want{err: "set both " + envStatusTLSCert}},
		{name: "calibration from page section", listen: "127.0.0.1:0", sp: config.StatusPage{CalibrationFile: "page.yaml"}, want: want{cal: "page.yaml"}},
		{name: "calibration env overrides", listen: "127.0.0.1:0", sp: config.StatusPage{CalibrationFile: "page.yaml"}, env: map[string]string{envStatusCalFile: "env.yaml"}, want: want{cal: "env.yaml"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, k := range []string{envStatusToken, envStatusTokenFile, envStatusTLSCert, envStatusTLSKey, envStatusCalFile, "SG_TEST_TOKEN"} {
				t.Setenv(k, tc.env[k])
			}
			cfg := &config.Config{CalibrationFile: "top.yaml"}
			cfg.Metrics.Listen, cfg.Metrics.StatusPage = tc.listen, tc.sp
			p, err := newStatusPage(cfg, &sensorSet{}, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if tc.want.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want.err) {
					t.Fatalf("err %v, want one containing %q", err, tc.want.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.want.off {
				if p != nil {
					t.Fatalf("page built: %+v", p)
				}
				return
			}
			if p == nil {
				t.Fatal("no page")
			}
			got := want{token: p.opts.Token, cert: p.tlsCert, key: p.tlsKey, cal: p.opts.CalibrationFile}
			if got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}
