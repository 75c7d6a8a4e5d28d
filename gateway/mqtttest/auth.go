package mqtttest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// PasswordFile writes a mosquitto password file for users (name to
// password) with mosquitto_passwd and returns its path. It skips like
// FindMosquitto when mosquitto_passwd is missing.
func PasswordFile(t testing.TB, users map[string]string) string {
	t.Helper()
	bin, err := exec.LookPath("mosquitto_passwd")
	if err != nil {
		msg := "mosquitto_passwd not found (apt-get install mosquitto)"
		if os.Getenv("REQUIRE_MOSQUITTO") == "1" {
			t.Fatal(msg + " and REQUIRE_MOSQUITTO=1")
		}
		t.Skip(msg)
	}
	path := filepath.Join(t.TempDir(), "passwd")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	names := make([]string, 0, len(users))
	for n := range users {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if out, err := exec.Command(bin, "-b", path, n, users[n]).CombinedOutput(); err != nil {
			t.Fatalf("mosquitto_passwd %s: %v: %s", n, err, out)
		}
	}
	return path
}

// StartMosquittoAuth starts mosquitto that admits only users (name to
// password); anonymous clients are refused.
func StartMosquittoAuth(t testing.TB, users map[string]string) *Mosquitto {
	t.Helper()
	return StartMosquittoWith(t, "allow_anonymous false\npassword_file "+PasswordFile(t, users))
}

// PKI is a throwaway certificate authority with a server certificate for
// 127.0.0.1 and localhost and a client certificate (CN "client"), all
// written as PEM files into a temporary directory.
type PKI struct {
	Pool                      *x509.CertPool // trusts the CA
	CAFile                    string
	ServerCertFile, ServerKey string
	ClientCertFile, ClientKey string
	Server, Client            tls.Certificate
}

// NewPKI makes a PKI valid for an hour either side of now.
func NewPKI(t testing.TB) *PKI {
	t.Helper()
	dir := t.TempDir()
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	write := func(name, typ string, der []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	caKey := newKey()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mqtttest CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	p := &PKI{Pool: x509.NewCertPool(), CAFile: write("ca.pem", "CERTIFICATE", caDER)}
	p.Pool.AddCert(ca)
	issue := func(serial int64, cn string, usage x509.ExtKeyUsage, ips []net.IP, dns []string) (tls.Certificate, string, string) {
		k := newKey()
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			ExtKeyUsage: []x509.ExtKeyUsage{usage}, IPAddresses: ips, DNSNames: dns, KeyUsage: x509.KeyUsageDigitalSignature}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kder, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k},
			write(cn+".pem", "CERTIFICATE", der), write(cn+".key", "PRIVATE KEY", kder)
	}
	p.Server, p.ServerCertFile, p.ServerKey = issue(2, "server", x509.ExtKeyUsageServerAuth, []net.IP{net.IPv4(127, 0, 0, 1)}, []string{"localhost"})
	p.Client, p.ClientCertFile, p.ClientKey = issue(3, "client", x509.ExtKeyUsageClientAuth, nil, nil)
	return p
}

// StartMosquittoTLS starts mosquitto with a TLS listener using p's server
// certificate; with requireClientCert, clients must present a certificate
// signed by p's CA. extra lines are appended (e.g. a password file). The
// URL is ssl://127.0.0.1:PORT.
func StartMosquittoTLS(t testing.TB, p *PKI, requireClientCert bool, extra ...string) *Mosquitto {
	t.Helper()
	conf := fmt.Sprintf("cafile %s\ncertfile %s\nkeyfile %s\nrequire_certificate %t\n",
		p.CAFile, p.ServerCertFile, p.ServerKey, requireClientCert)
	m := StartMosquittoWith(t, conf+strings.Join(extra, "\n"))
	m.URL = "ssl://" + m.Addr
	return m
}
