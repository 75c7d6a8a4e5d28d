package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shelfgate/shelfgate/gateway/config"
	"github.com/shelfgate/shelfgate/gateway/metrics"
	"github.com/shelfgate/shelfgate/gateway/statuspage"
)

func TestStatusToken(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	os.WriteFile(good, []byte("  a-long-enough-token \nsecond line ignored\n"), 0o600)
	short := filepath.Join(dir, "short")
	os.WriteFile(short, []byte("abc\n"), 0o600)
	for _, tc := range []struct {
		name, file, env, want, err string
	}{
		{name: "none"},
		{name: "file", file: good, want: "a-long-enough-token"},
		{name: "file wins", file: good, env: "another-long-token", want: "a-long-enough-token"},
		{name: "env", env: "another-long-token", want: "another-long-token"},
		{name: "short file", file: short, err: "at least 12"},
		{name: "short env", env: "abc", err: "at least 12"},
		{name: "missing file", file: filepath.Join(dir, "nope"), err: envStatusTokenFile},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(envStatusTokenFile, tc.file)
			t.Setenv(envStatusToken, tc.env)
			got, err := statusToken(config.StatusPage{})
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want one mentioning %q", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("%q %v, want %q", got, err, tc.want)
			}
		})
	}
}

// The page and /metrics share the listener; the page's hub stops with it.
func TestServeHTTPMountsPageBesideMetrics(t *testing.T) {
	page, err := statuspage.New(statuspage.Options{Tap: statuspage.NewTap()})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	stop := serveHTTP(l, metrics.New("test", nil, nil), page, nil, slog.New(slog.DiscardHandler), &wg)
	base := "http://" + l.Addr().String()
	for path, want := range map[string]string{"/": "Shelfgate status", "/metrics": "shelfgate_build_info", "/healthz": "ok", "/api/state": `"bins":[]`} {
		res, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || !strings.Contains(string(b), want) {
			t.Errorf("GET %s: %d %.200s", path, res.StatusCode, b)
		}
	}
	stop()
	wg.Wait()
}

// On a non-loopback listener, enabling actions without TLS is warned about;
// a certificate without its key is an error.
func TestStatusPageTLSWarning(t *testing.T) {
	tap := statuspage.NewTap()
	p := &statusPage{tap: tap, opts: statuspage.Options{Tap: tap, Token: "a-long-enough-token"}}
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	_, conf, err := p.server(&net.TCPAddr{IP: net.IPv4(10, 0, 0, 7), Port: 9464}, nil, nil, nil, nil, log)
	if err != nil || conf != nil {
		t.Fatal(err, conf)
	}
	if !strings.Contains(logs.String(), "without TLS") {
		t.Errorf("no warning: %s", logs.String())
	}
	logs.Reset()
	p.server(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9464}, nil, nil, nil, nil, log)
	if strings.Contains(logs.String(), "without TLS") {
		t.Errorf("warned on loopback: %s", logs.String())
	}
	p.tlsCert, p.tlsKey = "/nonexistent/cert.pem", "/nonexistent/key.pem"
	if _, _, err := p.server(&net.TCPAddr{IP: net.IPv4(10, 0, 0, 7)}, nil, nil, nil, nil, log); err == nil {
		t.Error("a missing certificate was accepted")
	}
}

// With a certificate and key the listener serves the page and /metrics
// over HTTPS.
func TestStatusPageServesTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool := selfSigned(t, dir)
	tap := statuspage.NewTap()
	p := &statusPage{tap: tap, opts: statuspage.Options{Tap: tap}, tlsCert: certFile, tlsKey: keyFile}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	page, conf, err := p.server(l.Addr(), nil, nil, nil, nil, slog.New(slog.DiscardHandler))
	if err != nil || conf == nil {
		t.Fatal(err, conf)
	}
	var wg sync.WaitGroup
	stop := serveHTTP(l, metrics.New("test", nil, nil), page, conf, slog.New(slog.DiscardHandler), &wg)
	defer func() { stop(); wg.Wait() }()
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	for _, path := range []string{"/", "/metrics"} {
		res, err := c.Get("https://" + l.Addr().String() + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Errorf("GET %s over TLS: %d", path, res.StatusCode)
		}
	}
	if res, err := http.Get("http://" + l.Addr().String() + "/"); err == nil && res.StatusCode == 200 {
		t.Error("plain HTTP served on the TLS listener")
	}
}

// selfSigned writes a certificate for 127.0.0.1 and its key.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "shelfgate-test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// failingCells is a Calibrator whose SetCalibration fails for bin "bad".
type failingCells struct{ set []string }

func (f *failingCells) Calibration(string) (statuspage.CellCalibration, error) {
	return statuspage.CellCalibration{}, nil
}
func (f *failingCells) RecentCodes(string) ([]int32, error) { return nil, nil }
func (f *failingCells) SetCalibration(bin string, _ int32, _ float64) error {
	if bin == "bad" {
		return errors.New("no such bin")
	}
	f.set = append(f.set, bin)
	return nil
}

type fakeDetector struct{ rebased []string }

func (f *fakeDetector) Rebaseline(bin string) bool {
	f.rebased = append(f.rebased, bin)
	return true
}

// A tare or calibration applied from the page rebaselines the bin in every
// detector (so the jump is no pick), and only once it was applied.
func TestStatusPageCalibrationRebaselines(t *testing.T) {
	cells, d1, d2 := &failingCells{}, &fakeDetector{}, &fakeDetector{}
	r := rebaselining{cells, []rebaseliner{d1, d2}}
	if err := r.SetCalibration("s1/b1", 10, 2); err != nil {
		t.Fatal(err)
	}
	if err := r.SetCalibration("bad", 10, 2); err == nil {
		t.Fatal("a failed calibration reported success")
	}
	for _, d := range []*fakeDetector{d1, d2} {
		if len(d.rebased) != 1 || d.rebased[0] != "s1/b1" {
			t.Errorf("rebaselined %v, want [s1/b1]", d.rebased)
		}
	}
}
