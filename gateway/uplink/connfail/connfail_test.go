package connfail

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"

	"github.com/eclipse/paho.mqtt.golang/packets"
)

func TestClassify(t *testing.T) {
	unknown := x509.UnknownAuthorityError{}
	for _, tc := range []struct {
		name string
		err  error
		want Kind
	}{
		{"nil", nil, Other},
		{"CONNACK not authorized", packets.ErrorRefusedNotAuthorised, Auth},
		{"CONNACK bad user name or password", fmt.Errorf("connect to x: %w", packets.ErrorRefusedBadUsernameOrPassword), Auth},
		{"CONNACK server unavailable", packets.ErrorRefusedServerUnavailable, Other},
		{"unknown authority", fmt.Errorf("connect: %w", &tls.CertificateVerificationError{Err: unknown}), TLS},
		{"hostname mismatch", fmt.Errorf("connect: %w", x509.HostnameError{Host: "broker.example"}), TLS},
		{"expired", x509.CertificateInvalidError{Reason: x509.Expired}, TLS},
		{"plain broker on an ssl URL", tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}, TLS},
		{"refused", &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, Other},
		{"reset", &net.OpError{Op: "read", Err: syscall.ECONNRESET}, Other},
		{"EOF", fmt.Errorf("%w : %w", packets.ErrorNetworkError, io.EOF), Other},
		{"timeout", errors.New("connect to x: no answer within 6s"), Other},
	} {
		if got := Classify(tc.err); got != tc.want {
			t.Errorf("%s: Classify(%v) = %v, want %v", tc.name, tc.err, got, tc.want)
		}
	}
}

// TestCertProbeExplain: a reset or EOF after a handshake in which the
// broker asked for a client certificate becomes a TLS failure saying
// whether one was presented; without the request, or for other errors, the
// error is left alone.
func TestCertProbeExplain(t *testing.T) {
	reset := fmt.Errorf("%w : %w", packets.ErrorNetworkError, &net.OpError{Op: "write", Err: syscall.ECONNRESET})
	var quiet CertProbe
	if got := quiet.Explain(reset); got != reset {
		t.Fatalf("no certificate request: %v", got)
	}
	var asked CertProbe
	conf := asked.Wrap(&tls.Config{MinVersion: tls.VersionTLS12})
	if _, err := conf.GetClientCertificate(&tls.CertificateRequestInfo{}); err != nil {
		t.Fatal(err)
	}
	got := asked.Explain(reset)
	var ce *ClientCertError
	if !errors.As(got, &ce) || ce.Sent || Classify(got) != TLS || !errors.Is(got, syscall.ECONNRESET) {
		t.Fatalf("Explain = %v (%T)", got, got)
	}
	if got := asked.Explain(packets.ErrorRefusedNotAuthorised); got != packets.ErrorRefusedNotAuthorised {
		t.Fatalf("auth error changed: %v", got)
	}
	if got := asked.Explain(io.EOF); Classify(got) != TLS {
		t.Fatalf("EOF after the request: %v", got)
	}
	if asked.Explain(nil) != nil {
		t.Fatal("nil changed")
	}
}
