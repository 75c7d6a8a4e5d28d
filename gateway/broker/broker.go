// Package broker runs an embedded MQTT broker (mochi-mqtt/server/v2) inside
// the gateway process, so the demo and local MQTT devices need nothing
// installed. Production gateways point their uplink at a real broker instead.
package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
)

// DefaultAddr is where the embedded broker listens unless told otherwise.
const DefaultAddr = "127.0.0.1:1883"

// Broker is an in-process MQTT broker listening on one TCP address.
type Broker struct {
	addr   string
	server *mqtt.Server
	ln     *listeners.TCP
}

// New creates a broker for addr (host:port; port 0 picks a free one). It
// allows every client: bind it to loopback. logger may be nil.
func New(addr string, logger *slog.Logger) (*Broker, error) {
	if addr == "" {
		addr = DefaultAddr
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	// Resolve port 0 now so callers learn the address before Run.
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("broker: listen on %s: %w", addr, err)
	}
	addr = l.Addr().String()
	l.Close()
	s := mqtt.New(&mqtt.Options{InlineClient: true, Logger: logger})
	if err := s.AddHook(new(auth.AllowHook), nil); err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	ln := listeners.NewTCP(listeners.Config{ID: "tcp", Address: addr})
	if err := s.AddListener(ln); err != nil {
		return nil, fmt.Errorf("broker: listen on %s: %w", addr, err)
	}
	return &Broker{addr: addr, server: s, ln: ln}, nil
}

// Addr is the broker's host:port.
func (b *Broker) Addr() string { return b.addr }

// URL is the broker's address as an MQTT URL (tcp://host:port).
func (b *Broker) URL() string { return "tcp://" + b.addr }

// Run serves until ctx is done, then closes all connections.
func (b *Broker) Run(ctx context.Context) error {
	if err := b.server.Serve(); err != nil {
		return fmt.Errorf("broker: serve: %w", err)
	}
	<-ctx.Done()
	done := make(chan error, 1)
	go func() { done <- b.server.Close() }()
	select {
	case err := <-done:
		if err != nil && !errors.Is(err, net.ErrClosed) {
			return fmt.Errorf("broker: close: %w", err)
		}
	case <-time.After(5 * time.Second):
		return errors.New("broker: close timed out after 5s")
	}
	return nil
}
