package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/shelfgate/shelfgate/gateway/collect"
	"github.com/shelfgate/shelfgate/gateway/uplink"
)

// The gateway's environment variables (gateway/config ApplyEnv), read by
// tail and collect as defaults too, so one environment serves both.
const (
	envBrokerURLs = "SHELFGATE_BROKER_URLS" // comma-separated; the tools use the first
	envUsername   = "SHELFGATE_BROKER_USERNAME"
	envPassword   = "SHELFGATE_BROKER_PASSWORD"
)

// mqttFlags are the broker connection flags tail and collect share.
// Precedence: a flag, then the environment, then the default.
type mqttFlags struct {
	broker, username, passwordFile        string
	caFile, certFile, keyFile, serverName string
	connectTimeout                        time.Duration
	envPassword                           string
	envPasswordSet                        bool
}

// addMQTTFlags defines the shared flags on fs, with defaults from lookup
// (os.LookupEnv).
func addMQTTFlags(fs *flag.FlagSet, lookup func(string) (string, bool)) *mqttFlags {
	m := &mqttFlags{}
	broker := "tcp://127.0.0.1:1883"
	if v, ok := lookup(envBrokerURLs); ok && strings.TrimSpace(v) != "" {
		first, _, _ := strings.Cut(v, ",")
		broker = strings.TrimSpace(first)
	}
	user, _ := lookup(envUsername)
	m.envPassword, m.envPasswordSet = lookup(envPassword)
	fs.StringVar(&m.broker, "broker", broker, "broker URL, tcp://host:1883 or ssl://host:8883 (default from $"+envBrokerURLs+", its first URL)")
	fs.StringVar(&m.username, "username", user, "MQTT user name (default $"+envUsername+")")
	fs.StringVar(&m.passwordFile, "password-file", "", "file holding the MQTT password, trailing newline ignored (default: $"+envPassword+")")
	fs.StringVar(&m.caFile, "ca-file", "", "PEM CA certificate(s) that signed the broker's certificate (default: the system roots); needs an ssl:// URL")
	fs.StringVar(&m.certFile, "cert-file", "", "PEM client certificate for mutual TLS (with --key-file)")
	fs.StringVar(&m.keyFile, "key-file", "", "PEM private key of --cert-file")
	fs.StringVar(&m.serverName, "server-name", "", "host name to verify the broker's certificate against, instead of the URL's")
	fs.DurationVar(&m.connectTimeout, "connect-timeout", 15*time.Second, "give up when the broker cannot be reached for this long (refused credentials and TLS failures end at once)")
	return m
}

// conn is a resolved broker connection.
type conn struct {
	url, username, password string
	tls                     *tls.Config
}

// resolve checks the flags and reads the password and certificate files.
// Flag mistakes are usage errors naming the flag.
func (m *mqttFlags) resolve() (conn, error) {
	c := conn{url: m.broker, username: m.username}
	scheme, _, ok := strings.Cut(m.broker, "://")
	if !ok || scheme == "" {
		return c, fmt.Errorf("%w: --broker %q: want a URL like tcp://host:1883 or ssl://host:8883", errUsage, m.broker)
	}
	secure := false
	switch strings.ToLower(scheme) {
	case "tcp", "mqtt", "ws":
	case "ssl", "tls", "mqtts", "mqtt+ssl", "tcps", "wss":
		secure = true
	default:
		return c, fmt.Errorf("%w: --broker %q: unknown scheme %q (tcp, ssl, ws, wss)", errUsage, m.broker, scheme)
	}
	if !secure {
		for _, f := range []struct{ name, v string }{{"ca-file", m.caFile}, {"cert-file", m.certFile}, {"key-file", m.keyFile}, {"server-name", m.serverName}} {
			if f.v != "" {
				return c, fmt.Errorf("%w: --%s needs a TLS broker URL (ssl://host:8883), not %s", errUsage, f.name, m.broker)
			}
		}
	}
	if (m.certFile == "") != (m.keyFile == "") {
		return c, fmt.Errorf("%w: --cert-file and --key-file go together (mutual TLS needs both)", errUsage)
	}
	switch {
	case m.passwordFile != "":
		p, err := os.ReadFile(m.passwordFile)
		if err != nil {
			return c, fmt.Errorf("--password-file: %w", err)
		}
		c.password = strings.TrimRight(string(p), "\r\n")
	case m.envPasswordSet:
		c.password = m.envPassword
	}
	if c.password != "" && c.username == "" {
		return c, fmt.Errorf("%w: a password needs --username (or $%s)", errUsage, envUsername)
	}
	if secure {
		t, err := uplink.TLSConfig(m.caFile, m.certFile, m.keyFile, m.serverName)
		if err != nil {
			return c, fmt.Errorf("--ca-file/--cert-file/--key-file: %w", err)
		}
		c.tls = t
	}
	return c, nil
}

// apply sets the connection's broker, credentials and TLS on opts.
func (c conn) apply(opts *paho.ClientOptions) *paho.ClientOptions {
	opts.AddBroker(c.url)
	if c.username != "" {
		opts.SetUsername(c.username).SetPassword(c.password)
	}
	if c.tls != nil {
		opts.SetTLSConfig(c.tls)
	}
	return opts
}

// connect connects a client made from opts (see collect.Connect).
func (m *mqttFlags) connect(ctx context.Context, opts *paho.ClientOptions) (paho.Client, error) {
	return collect.Connect(ctx, opts, m.connectTimeout)
}
