package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
)

// StatusPage configures the local status page served on the metrics
// listener (docs/status-page.md). The action token never lives in this
// file: TokenFile names a file holding it, TokenEnv an environment
// variable. The SHELFGATE_STATUS_* environment variables override these
// settings (cmd/shelfgate).
type StatusPage struct {
	// Enabled serves the page at / on metrics.listen; default true when
	// metrics.listen is set. false serves only /metrics, /healthz, /readyz.
	Enabled *bool `yaml:"enabled"`
	// TokenFile is a file whose first line is the action token (at least
	// 12 characters); it must not be readable by others (chmod 600 or 640).
	TokenFile string `yaml:"token_file"`
	// TokenEnv is the name of an environment variable holding the token.
	TokenEnv string `yaml:"token_env"`
	// TLSCertFile and TLSKeyFile (PEM, both or neither) serve the listener
	// over HTTPS.
	TLSCertFile string `yaml:"tls_cert_file"`
	TLSKeyFile  string `yaml:"tls_key_file"`
	// CalibrationFile is where tares and calibrations from the page are
	// persisted; default the top-level calibration_file.
	CalibrationFile string `yaml:"calibration_file"`
}

// On reports whether the page is served, given the metrics listener.
func (s StatusPage) On(listen string) bool {
	if s.Enabled != nil {
		return *s.Enabled && listen != ""
	}
	return listen != ""
}

// ErrTokenFileExposed is returned by CheckTokenFile for a token file that
// users other than its owner and group can read.
var ErrTokenFileExposed = errors.New("is readable by other users (chmod 600 or 640)")

// CheckTokenFile checks that path is a regular file that other users
// cannot read.
func CheckTokenFile(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("%q: %w", path, errors.Unwrap(err))
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%q is not a regular file", path)
	}
	if st.Mode().Perm()&0o004 != 0 {
		return fmt.Errorf("%q (mode %04o) %w", path, st.Mode().Perm(), ErrTokenFileExposed)
	}
	return nil
}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// validateStatusPage is the status page's part of the Config's validation.
func (c *Config) validateStatusPage(p *problems) {
	s := c.Metrics.StatusPage
	const pre = "metrics.status_page."
	if s.Enabled != nil && *s.Enabled && c.Metrics.Listen == "" {
		p.add(pre+"enabled", "true needs metrics.listen (the page is served on the metrics listener)")
	}
	if s.Enabled == nil && c.Metrics.Listen == "" {
		// Settings for a page nothing serves are a mistake, not a no-op:
		// the operator believes the page has a token or TLS.
		for _, f := range []struct{ key, val string }{
			{"token_file", s.TokenFile}, {"token_env", s.TokenEnv}, {"tls_cert_file", s.TLSCertFile},
			{"tls_key_file", s.TLSKeyFile}, {"calibration_file", s.CalibrationFile},
		} {
			if f.val != "" {
				p.add(pre+f.key, "%q is set but metrics.listen is empty, so no status page is served (set metrics.listen, or enabled: false to keep the settings unused)", f.val)
			}
		}
	}
	if s.TokenFile != "" && s.TokenEnv != "" {
		p.add(pre+"token_env", "%q and token_file %q both set; name one", s.TokenEnv, s.TokenFile)
	}
	if s.TokenFile != "" {
		if err := CheckTokenFile(s.TokenFile); err != nil {
			p.add(pre+"token_file", "%v", err)
		}
	}
	if s.TokenEnv != "" && !envName.MatchString(s.TokenEnv) {
		p.add(pre+"token_env", "%q is not an environment variable name (the token itself never goes in this file)", s.TokenEnv)
	}
	switch {
	case s.TLSCertFile != "" && s.TLSKeyFile == "":
		p.add(pre+"tls_key_file", "missing: tls_cert_file %q needs its key", s.TLSCertFile)
	case s.TLSCertFile == "" && s.TLSKeyFile != "":
		p.add(pre+"tls_cert_file", "missing: tls_key_file %q needs its certificate", s.TLSKeyFile)
	}
	for _, f := range []struct{ key, path string }{{"tls_cert_file", s.TLSCertFile}, {"tls_key_file", s.TLSKeyFile}} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			p.add(pre+f.key, "%q: %v", f.path, errors.Unwrap(err))
		}
	}
	if s.CalibrationFile != "" {
		dir := filepath.Dir(s.CalibrationFile)
		if st, err := os.Stat(dir); err != nil {
			p.add(pre+"calibration_file", "%q: directory: %v", s.CalibrationFile, errors.Unwrap(err))
		} else if !st.IsDir() {
			p.add(pre+"calibration_file", "%q: %s is not a directory", s.CalibrationFile, dir)
		}
	}
}
