// Package connfail tells why a connection to an MQTT broker failed, for
// the gateway's uplink and the cloud-side tools alike: failures only an
// operator can fix (refused credentials, TLS verification) apart from
// those retrying fixes (network, broker down).
package connfail

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/eclipse/paho.mqtt.golang/packets"
)

// Kind is the kind of problem a connection attempt met. Auth and TLS
// failures do not go away by retrying: they need an operator (a password,
// a certificate, a CA), so they are logged at ERROR and command-line tools
// give up on them at once.
type Kind int

// Kinds.
const (
	Other Kind = iota // network, broker down, timeouts: retrying helps
	Auth              // the broker refused the credentials (CONNACK 4 or 5)
	TLS               // certificate verification failed on either side, or no TLS at the other end
)

func (f Kind) String() string {
	switch f {
	case Auth:
		return "not authorized"
	case TLS:
		return "TLS failure"
	}
	return "connect failure"
}

// Classify tells what kind of failure err, from connecting to a broker
// with paho (or through gateway/uplink's dialer), is.
func Classify(err error) Kind {
	if err == nil {
		return Other
	}
	if errors.Is(err, packets.ErrorRefusedNotAuthorised) || errors.Is(err, packets.ErrorRefusedBadUsernameOrPassword) {
		return Auth
	}
	var (
		verify   *tls.CertificateVerificationError
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		record   tls.RecordHeaderError
		alert    tls.AlertError
		op       *net.OpError
		cert     *ClientCertError
	)
	switch {
	case errors.As(err, &verify), errors.As(err, &unknown), errors.As(err, &hostname),
		errors.As(err, &invalid), errors.As(err, &record), errors.As(err, &alert), errors.As(err, &cert):
		return TLS
	case errors.As(err, &op) && op.Op == "remote error" && strings.HasPrefix(op.Err.Error(), "tls:"):
		// The broker refused the handshake with an alert (e.g. our client
		// certificate is missing or untrusted); with TLS 1.3 it arrives on
		// the first read, while waiting for the CONNACK.
		return TLS
	}
	return Other
}

// ClientCertError is a connection the broker closed right after a TLS
// handshake in which it asked for a client certificate: with TLS 1.3 a
// broker that rejects the certificate (or its absence) may just reset the
// connection, and the refusal then shows only as a failed CONNECT.
type ClientCertError struct {
	Sent bool // a certificate was presented
	Err  error
}

func (e *ClientCertError) Error() string {
	what := "none was configured"
	if e.Sent {
		what = "it refused the one presented"
	}
	return fmt.Sprintf("the broker requires a client certificate and %s: %v", what, e.Err)
}

func (e *ClientCertError) Unwrap() error { return e.Err }

// CertProbe notes whether a broker asked for a client certificate during
// the TLS handshake. Use a new one per connection attempt.
type CertProbe struct {
	requested, sent atomic.Bool
}

// Wrap returns a copy of cfg (nil for a default one) that reports to p;
// it presents the first of cfg.Certificates the broker accepts, as
// crypto/tls does.
func (p *CertProbe) Wrap(cfg *tls.Config) *tls.Config {
	if cfg == nil {
		cfg = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	cfg = cfg.Clone()
	certs, get := cfg.Certificates, cfg.GetClientCertificate
	cfg.GetClientCertificate = func(cri *tls.CertificateRequestInfo) (*tls.Certificate, error) {
		p.requested.Store(true)
		if get != nil {
			c, err := get(cri)
			p.sent.Store(err == nil && c != nil && len(c.Certificate) > 0)
			return c, err
		}
		for i := range certs {
			if cri.SupportsCertificate(&certs[i]) == nil {
				p.sent.Store(true)
				return &certs[i], nil
			}
		}
		return new(tls.Certificate), nil
	}
	return cfg
}

// Explain returns err as a *ClientCertError when the broker asked for a
// client certificate and the attempt then failed with the connection
// closed or reset, and err unchanged otherwise.
func (p *CertProbe) Explain(err error) error {
	if err == nil || !p.requested.Load() || Classify(err) != Other {
		return err
	}
	if errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return &ClientCertError{Sent: p.sent.Load(), Err: err}
	}
	return err
}
