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
