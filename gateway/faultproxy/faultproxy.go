// Package faultproxy is a TCP proxy for tests that sits between an MQTT
// client and its broker on loopback and injects network faults at run time:
//
//   - pass: bytes are forwarded unchanged (the default);
//   - Cut: every open connection is closed with a TCP RST on both sides;
//   - Blackhole: open connections stay open but nothing is forwarded in
//     either direction, and new connections are accepted but never reach the
//     broker, so only the peers' keepalives can notice. A connection that has
//     been in a blackhole stays dead after it ends (as after a NAT or route
//     loss): it discards everything until a peer closes it;
//   - Delay: each chunk is held for a while before it is forwarded;
//   - Refuse: new connections are reset as soon as they are accepted;
//   - DropPubacks: the broker-to-client stream is parsed as MQTT 3.1.1
//     packets and PUBACKs are swallowed while every other packet passes
//     intact, so the client never sees its acknowledgements.
//
// Modes can be switched from any goroutine while traffic flows. Stats counts
// bytes, connections and dropped PUBACKs. The proxy listens on 127.0.0.1
// only.
package faultproxy

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Stats are the proxy's counters since New.
type Stats struct {
	Accepted       int64 // client connections accepted (each is a connection attempt)
	Active         int   // client connections open now
	Refused        int64 // connections reset by Refuse
	Cut            int64 // connections reset by Cut
	BytesUp        int64 // client → broker bytes forwarded
	BytesDown      int64 // broker → client bytes forwarded
	PubacksSeen    int64 // PUBACKs forwarded to the client
	PubacksDropped int64
	DialErrors     int64 // broker unreachable
}

// Proxy forwards connections from Addr to a target. Create it with New.
type Proxy struct {
	ln     net.Listener
	target string

	blackhole   atomic.Bool
	refuse      atomic.Bool
	dropPubacks atomic.Bool
	delay       atomic.Int64 // nanoseconds

	accepted, refused, cut  atomic.Int64
	up, down, pubacks, dial atomic.Int64
	pubacksSeen             atomic.Int64

	mu     sync.Mutex
	conns  map[*pair]struct{}
	closed bool
	wg     sync.WaitGroup
}

// pair is one proxied connection.
type pair struct {
	client net.Conn
	broker net.Conn // nil while dead from the start
	dead   atomic.Bool
	once   sync.Once
}

// New listens on 127.0.0.1:0 and forwards each connection to target
// (host:port, or an MQTT URL tcp://host:port).
func New(target string) (*Proxy, error) {
	if len(target) > 6 && target[:6] == "tcp://" {
		target = target[6:]
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("faultproxy: listen: %w", err)
	}
	p := &Proxy{ln: ln, target: target, conns: map[*pair]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the proxy's listening address (127.0.0.1:PORT).
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// URL is the proxy's address as an MQTT broker URL.
func (p *Proxy) URL() string { return "tcp://" + p.Addr() }

// Close stops listening, resets every connection and waits for the proxy's
// goroutines.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	err := p.ln.Close()
	p.resetAll()
	p.wg.Wait()
	return err
}

// Cut resets every open connection (RST on both sides). New connections are
// forwarded as before.
func (p *Proxy) Cut() { p.cut.Add(int64(p.resetAll())) }

// Blackhole switches the blackhole on or off. On: every open connection goes
// dead and new connections are accepted but not forwarded. Off: new
// connections are forwarded again; connections that went dead stay dead.
func (p *Proxy) Blackhole(on bool) {
	p.blackhole.Store(on)
	if on {
		p.mu.Lock()
		for c := range p.conns {
			c.dead.Store(true)
		}
		p.mu.Unlock()
	}
}

// Delay holds every chunk for d before forwarding it; 0 turns it off.
func (p *Proxy) Delay(d time.Duration) { p.delay.Store(int64(d)) }

// Refuse makes the proxy reset new connections as soon as it accepts them.
func (p *Proxy) Refuse(on bool) { p.refuse.Store(on) }

// DropPubacks makes the proxy swallow PUBACK packets from the broker.
func (p *Proxy) DropPubacks(on bool) { p.dropPubacks.Store(on) }

// Stats returns a snapshot of the counters.
func (p *Proxy) Stats() Stats {
	p.mu.Lock()
	active := len(p.conns)
	p.mu.Unlock()
	return Stats{
		Accepted: p.accepted.Load(), Active: active, Refused: p.refused.Load(), Cut: p.cut.Load(),
		BytesUp: p.up.Load(), BytesDown: p.down.Load(), PubacksSeen: p.pubacksSeen.Load(), PubacksDropped: p.pubacks.Load(), DialErrors: p.dial.Load(),
	}
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		p.accepted.Add(1)
		if p.refuse.Load() {
			p.refused.Add(1)
			reset(c)
			continue
		}
		pr := &pair{client: c}
		if p.blackhole.Load() {
			pr.dead.Store(true)
		} else {
			b, err := net.DialTimeout("tcp", p.target, 5*time.Second)
			if err != nil {
				p.dial.Add(1)
				reset(c)
				continue
			}
			pr.broker = b
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			pr.reset()
			return
		}
		p.conns[pr] = struct{}{}
		p.wg.Add(1)
		if pr.broker != nil {
			p.wg.Add(1)
			go p.pipe(pr, pr.broker, pr.client, false)
		}
		p.mu.Unlock()
		go p.pipe(pr, pr.client, pr.broker, true)
	}
}

// pipe copies src to dst until src fails, then closes the pair. up is the
// client → broker direction; the other direction goes through a Splitter.
func (p *Proxy) pipe(pr *pair, src, dst net.Conn, up bool) {
	defer p.wg.Done()
	var (
		buf = make([]byte, 32<<10)
		out []byte
		sp  Splitter
	)
	drop := func(typ byte) bool {
		if typ != TypePuback {
			return false
		}
		if p.dropPubacks.Load() {
			return true
		}
		p.pubacksSeen.Add(1)
		return false
	}
	for {
		n, err := src.Read(buf)
		if n > 0 && !pr.dead.Load() {
			if d := time.Duration(p.delay.Load()); d > 0 {
				time.Sleep(d)
			}
			chunk := buf[:n]
			if !up {
				var dropped int
				var serr error
				out, dropped, serr = sp.Feed(chunk, drop, out[:0])
				p.pubacks.Add(int64(dropped))
				if serr != nil {
					p.remove(pr)
					return
				}
				chunk = out
			}
			if !pr.dead.Load() && len(chunk) > 0 {
				// Counted before the write, so a peer that has read the
				// bytes sees them in Stats.
				if up {
					p.up.Add(int64(len(chunk)))
				} else {
					p.down.Add(int64(len(chunk)))
				}
				if _, werr := dst.Write(chunk); werr != nil {
					p.remove(pr)
					return
				}
			}
		}
		if err != nil {
			if pr.dead.Load() && !up {
				// The broker gave up on a dead connection; the client must
				// not learn of it from us. Its reader closes the pair.
				return
			}
			p.remove(pr)
			return
		}
	}
}

// remove closes a pair normally (FIN) and forgets it.
func (p *Proxy) remove(pr *pair) {
	p.mu.Lock()
	delete(p.conns, pr)
	p.mu.Unlock()
	pr.once.Do(func() {
		pr.client.Close()
		if pr.broker != nil {
			pr.broker.Close()
		}
	})
}

// resetAll resets and forgets every pair; it returns how many there were.
func (p *Proxy) resetAll() int {
	p.mu.Lock()
	prs := make([]*pair, 0, len(p.conns))
	for pr := range p.conns {
		prs = append(prs, pr)
	}
	clear(p.conns)
	p.mu.Unlock()
	for _, pr := range prs {
		pr.reset()
	}
	return len(prs)
}

func (pr *pair) reset() {
	pr.once.Do(func() {
		reset(pr.client)
		if pr.broker != nil {
			reset(pr.broker)
		}
	})
}

// reset closes c with an RST instead of a FIN.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Close()
}

var _ io.Closer = (*Proxy)(nil)
