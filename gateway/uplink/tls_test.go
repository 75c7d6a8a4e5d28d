package uplink

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"

	"github.com/shelfgate/shelfgate/gateway/mqtttest"
)

// pki is a throwaway CA with a server certificate for 127.0.0.1 and a client certificate.
type pki struct {
	pool           *x509.CertPool
	server, client tls.Certificate
}

func newPKI(t *testing.T) pki {
	t.Helper()
	key := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	caKey := key()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	issue := func(serial int64, cn string, usage x509.ExtKeyUsage, ips []net.IP) tls.Certificate {
		k := key()
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{usage}, IPAddresses: ips, KeyUsage: x509.KeyUsageDigitalSignature}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k}
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return pki{pool: pool, server: issue(2, "broker", x509.ExtKeyUsageServerAuth, []net.IP{net.IPv4(127, 0, 0, 1)}), client: issue(3, "gw-1", x509.ExtKeyUsageClientAuth, nil)}
}

// tlsBroker runs mochi with a mutual-TLS listener (for the gateway) and a
// plain one (for the test's collector).
func tlsBroker(t *testing.T, p pki) (tlsURL, plainURL string) {
	t.Helper()
	s := mqtt.New(&mqtt.Options{InlineClient: true})
	s.AddHook(new(auth.AllowHook), nil)
	tlsAddr := "127.0.0.1:" + itoa(mqtttest.FreePort(t))
	plainAddr := "127.0.0.1:" + itoa(mqtttest.FreePort(t))
	conf := &tls.Config{Certificates: []tls.Certificate{p.server}, ClientCAs: p.pool, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}
	if err := s.AddListener(listeners.NewTCP(listeners.Config{ID: "tls", Address: tlsAddr, TLSConfig: conf})); err != nil {
		t.Fatal(err)
	}
	if err := s.AddListener(listeners.NewTCP(listeners.Config{ID: "plain", Address: plainAddr})); err != nil {
		t.Fatal(err)
	}
	if err := s.Serve(); err != nil {
		t.Fatal(err)
	}
	// Left running until the test binary exits; see mqtttest.StartEmbedded.
	return "ssl://" + tlsAddr, "tcp://" + plainAddr
}

func itoa(n int) string { return big.NewInt(int64(n)).String() }

func TestMutualTLS(t *testing.T) {
	p := newPKI(t)
	other := newPKI(t) // a CA the gateway must not trust
	for _, tc := range []struct {
		name    string
		conf    *tls.Config
		deliver bool
	}{
		{"verified server and client certificate", &tls.Config{RootCAs: p.pool, Certificates: []tls.Certificate{p.client}, MinVersion: tls.VersionTLS12}, true},
		{"server signed by an untrusted CA", &tls.Config{RootCAs: other.pool, Certificates: []tls.Certificate{p.client}, MinVersion: tls.VersionTLS12}, false},
		{"no client certificate", &tls.Config{RootCAs: p.pool, MinVersion: tls.VersionTLS12}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tlsURL, plainURL := tlsBroker(t, p)
			f := rig{collectURL: plainURL, opts: Options{Brokers: []string{tlsURL}, TLS: tc.conf, ConnectTimeout: 2 * time.Second}}.start(t)
			ob, col, u := f.ob, f.col, f.u
			produce(t, ob, 5, 100, 0)
			if tc.deliver {
				waitFor(t, "delivery over mutual TLS", 15*time.Second, func() bool { return col.Audit(false).Received == 500 && ob.Backlog() == 0 })
			} else {
				time.Sleep(1500 * time.Millisecond) // several connection attempts
				if st := u.Stats(); st.Connects != 0 || col.Audit(false).Received != 0 || ob.Backlog() != 500 {
					t.Fatalf("connected without valid TLS: stats %+v, received %d, backlog %d", st, col.Audit(false).Received, ob.Backlog())
				}
			}
		})
	}
}

// TestFailover: the first broker URL is dead; the uplink moves on to the
// second and delivers everything there.
func TestFailover(t *testing.T) {
	dead := "tcp://127.0.0.1:" + itoa(mqtttest.FreePort(t))
	alive := mqtttest.StartEmbedded(t)
	f := rig{collectURL: alive, opts: Options{Brokers: []string{dead, alive}}}.start(t)
	produce(t, f.ob, 4, 250, 0)
	waitFor(t, "delivery through the second broker", 15*time.Second, func() bool { return f.col.Audit(false).Received == 1000 && f.ob.Backlog() == 0 })
}
