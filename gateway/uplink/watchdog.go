package uplink

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"golang.org/x/net/proxy"
)

// A link can die without a reset: a Wi-Fi access point that drops its
// clients, a NAT that forgets the mapping, a firewall that starts eating
// packets. Nothing then arrives and nothing fails; only silence tells.
// paho's own keepalive checks every keepalive/2, pings once nothing was
// received for a whole keepalive and waits the ping timeout on top: up to
// about 2 x keepalive before it gives up. The watchdog below notices within
// 1.125 x keepalive plus one tick (keepalive/8): it watches every byte the
// broker sends, asks for a PINGRESP itself after keepalive/2 of silence
// (PINGREQ may be sent at any time, and paho handles the answer as its
// own), and ends the session once a keepalive and an eighth passed with
// nothing at all from the broker. On a healthy link the silence never
// exceeds keepalive/2 plus a tick plus one round trip.

// watchConn is the broker connection as paho sees it. It records when the
// broker last sent anything and serialises writes, so the watchdog's
// PINGREQ goes between paho's packets (paho writes each packet in one
// Write call).
type watchConn struct {
	net.Conn
	// lastRead is when the broker last sent anything, as time since base:
	// the monotonic clock, so an NTP step on a Pi without a real-time
	// clock is not taken for silence.
	base     time.Time
	lastRead atomic.Int64
	wmu      sync.Mutex
}

func newWatchConn(c net.Conn) *watchConn {
	return &watchConn{Conn: c, base: time.Now()}
}

func (c *watchConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.lastRead.Store(int64(time.Since(c.base)))
	}
	return n, err
}

func (c *watchConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.Conn.Write(p)
}

// SetWriteDeadline is serialised with writes too: paho sets one around
// every packet, and a websocket connection's deadline is not safe against
// a concurrent write (the watchdog's PINGREQ).
func (c *watchConn) SetWriteDeadline(t time.Time) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.Conn.SetWriteDeadline(t)
}

// silence is how long the broker has sent nothing.
func (c *watchConn) silence(now time.Time) time.Duration {
	return now.Sub(c.base) - time.Duration(c.lastRead.Load())
}

// pingreq is an MQTT PINGREQ packet.
var pingreq = []byte{0xC0, 0x00}

// ping writes a PINGREQ unless paho is in the middle of a write (then the
// link is busy, and the next tick tries again). A write to a dead link may
// block until the connection is closed, so it is done on its own goroutine
// and the watchdog keeps counting.
func (c *watchConn) ping() bool {
	if !c.wmu.TryLock() {
		return false
	}
	go func() {
		defer c.wmu.Unlock()
		c.Conn.Write(pingreq)
	}()
	return true
}

// connSlot carries the connection the dialer made to the session that
// watches it.
type connSlot struct{ p atomic.Pointer[watchConn] }

// dialer returns paho's connection function: the same schemes paho dials
// itself (tcp, mqtt; ssl, tls, mqtts, mqtt+ssl, tcps with options.TLSConfig;
// ws, wss through paho's own websocket dialer; a SOCKS proxy from
// all_proxy), wrapped in a watchConn left in slot.
func dialer(slot *connSlot) paho.OpenConnectionFunc {
	return func(uri *url.URL, o paho.ClientOptions) (net.Conn, error) {
		d := &net.Dialer{Timeout: o.ConnectTimeout}
		var (
			c   net.Conn
			err error
		)
		switch uri.Scheme {
		case "ws", "wss":
			// paho's websocket conn sends each Write as one message, so
			// the watchdog's PINGREQ still goes between packets.
			dial := *uri
			dial.User = nil
			var tlsc *tls.Config
			if uri.Scheme == "wss" {
				tlsc = o.TLSConfig
			}
			c, err = paho.NewWebsocket(dial.String(), tlsc, o.ConnectTimeout, o.HTTPHeaders, o.WebsocketOptions)
		case "tcp", "mqtt":
			c, err = proxy.FromEnvironmentUsing(d).Dial("tcp", uri.Host)
		case "ssl", "tls", "mqtts", "mqtt+ssl", "tcps":
			var raw net.Conn
			raw, err = proxy.FromEnvironmentUsing(d).Dial("tcp", uri.Host)
			if err != nil {
				break
			}
			cfg := o.TLSConfig
			if cfg == nil {
				cfg = &tls.Config{MinVersion: tls.VersionTLS12}
			}
			if cfg.ServerName == "" {
				cfg = cfg.Clone()
				cfg.ServerName = uri.Hostname()
			}
			tc := tls.Client(raw, cfg)
			if o.ConnectTimeout > 0 {
				tc.SetDeadline(time.Now().Add(o.ConnectTimeout))
			}
			if err = tc.Handshake(); err != nil {
				raw.Close()
				break
			}
			tc.SetDeadline(time.Time{})
			c = tc
		default:
			return nil, fmt.Errorf("uplink: broker %s: unsupported scheme %q", uri.Redacted(), uri.Scheme)
		}
		if err != nil {
			return nil, err
		}
		w := newWatchConn(c)
		slot.p.Store(w)
		return w, nil
	}
}

// watch ends the session (through end) once the broker has been silent for
// 1.125 x keepalive, asking it for a PINGRESP after keepalive/2 of silence.
func watch(ctx context.Context, c *watchConn, keepalive time.Duration, end func(error)) {
	probeAfter, deadAfter := keepalive/2, keepalive+keepalive/8
	tick := max(keepalive/8, 10*time.Millisecond)
	t := time.NewTicker(tick)
	defer t.Stop()
	var probed, last time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			s := c.silence(now)
			stalled := !last.IsZero() && now.Sub(last) > 2*tick
			last = now
			switch {
			case stalled:
				// This process did not run for a while (suspend, swap,
				// starvation): bytes may be waiting unread. Ask, and judge
				// at the next tick.
				if c.ping() {
					probed = now
				}
			case s >= deadAfter:
				end(fmt.Errorf("broker silent for %s (keepalive %s): %w", s.Round(time.Millisecond), keepalive, errLinkDead))
				c.Close() // paho's reader fails and it lets go of the connection
				return
			case s >= probeAfter && now.Sub(probed) >= probeAfter:
				if c.ping() {
					probed = now
				}
			}
		}
	}
}
