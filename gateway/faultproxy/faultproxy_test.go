package faultproxy

import (
	"bytes"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/shelfgate/shelfgate/gateway/mqtttest"
)

// echoServer echoes every connection until the test ends. The proxy follows
// the broker-to-client stream as MQTT packets; with DropPubacks off any bytes
// pass unchanged, so plain text works.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	return ln.Addr().String()
}

func newProxy(t *testing.T, target string) *Proxy {
	t.Helper()
	p, err := New(target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func dial(t *testing.T, p *Proxy) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", p.Addr(), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// roundTrip writes msg and reads it back within d.
func roundTrip(c net.Conn, msg []byte, d time.Duration) error {
	c.SetDeadline(time.Now().Add(d))
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write(msg); err != nil {
		return err
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		return err
	}
	if !bytes.Equal(got, msg) {
		return errors.New("echo differs")
	}
	return nil
}

func TestPassAndDelay(t *testing.T) {
	tests := []struct {
		name  string
		delay time.Duration
	}{
		{"pass", 0},
		{"delay", 150 * time.Millisecond},
	}
	p := newProxy(t, echoServer(t))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p.Delay(tt.delay)
			c := dial(t, p)
			start := time.Now()
			if err := roundTrip(c, []byte("hello"), 5*time.Second); err != nil {
				t.Fatal(err)
			}
			// Held once on the way up and once on the way down.
			if el := time.Since(start); el < 2*tt.delay {
				t.Fatalf("round trip took %s with delay %s", el, tt.delay)
			}
		})
	}
	p.Delay(0)
	if s := p.Stats(); s.BytesUp != 10 || s.BytesDown != 10 || s.Accepted != 2 {
		t.Fatalf("stats %+v", s)
	}
}

func TestCutResets(t *testing.T) {
	p := newProxy(t, echoServer(t))
	c := dial(t, p)
	if err := roundTrip(c, []byte("x"), 2*time.Second); err != nil {
		t.Fatal(err)
	}
	p.Cut()
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	_, err := c.Read(make([]byte, 1))
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read after Cut: %v, want connection reset", err)
	}
	if s := p.Stats(); s.Cut != 1 || s.Active != 0 {
		t.Fatalf("stats %+v", s)
	}
	// New connections work.
	if err := roundTrip(dial(t, p), []byte("y"), 2*time.Second); err != nil {
		t.Fatal(err)
	}
}

func TestRefuse(t *testing.T) {
	p := newProxy(t, echoServer(t))
	p.Refuse(true)
	// The reset may already fail the dial, or else the first read.
	if c, err := net.DialTimeout("tcp", p.Addr(), 2*time.Second); err == nil {
		err := roundTrip(c, []byte("x"), 2*time.Second)
		c.Close()
		if err == nil {
			t.Fatal("a refused connection echoed")
		}
	}
	p.Refuse(false)
	if err := roundTrip(dial(t, p), []byte("y"), 2*time.Second); err != nil {
		t.Fatal(err)
	}
	if s := p.Stats(); s.Refused != 1 {
		t.Fatalf("stats %+v", s)
	}
}

func TestBlackhole(t *testing.T) {
	p := newProxy(t, echoServer(t))
	old := dial(t, p)
	if err := roundTrip(old, []byte("x"), 2*time.Second); err != nil {
		t.Fatal(err)
	}
	p.Blackhole(true)
	fresh := dial(t, p)
	for name, c := range map[string]net.Conn{"open": old, "new": fresh} {
		err := roundTrip(c, []byte("y"), 300*time.Millisecond)
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("%s connection in blackhole: %v, want a timeout (no data, no reset)", name, err)
		}
	}
	p.Blackhole(false)
	// Connections that were in the blackhole stay dead; new ones work.
	if err := roundTrip(old, []byte("z"), 300*time.Millisecond); err == nil {
		t.Fatal("connection revived after the blackhole")
	}
	if err := roundTrip(dial(t, p), []byte("w"), 2*time.Second); err != nil {
		t.Fatal(err)
	}
}

// TestDropPubacksWithPaho publishes QoS1 through the proxy to the embedded
// broker: while PUBACKs are dropped the publish never completes although the
// broker delivered it; afterwards the stream is still packet-aligned and the
// next publish completes on the same connection.
func TestDropPubacksWithPaho(t *testing.T) {
	url := mqtttest.StartEmbedded(t)
	p := newProxy(t, url)

	got := make(chan string, 10)
	sub := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID("fp-sub"))
	if tok := sub.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscriber connect: %v", tok.Error())
	}
	defer sub.Disconnect(0)
	if tok := sub.Subscribe("fp/#", 1, func(_ paho.Client, m paho.Message) { got <- string(m.Payload()) }); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}

	pub := paho.NewClient(paho.NewClientOptions().AddBroker(p.URL()).SetClientID("fp-pub").SetAutoReconnect(false))
	if tok := pub.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connect through proxy: %v", tok.Error())
	}
	defer pub.Disconnect(0)

	p.DropPubacks(true)
	lost := pub.Publish("fp/a", 1, false, "first")
	select {
	case m := <-got:
		if m != "first" {
			t.Fatalf("subscriber got %q", m)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("broker did not deliver the publish")
	}
	if lost.WaitTimeout(time.Second) {
		t.Fatalf("publish completed although its PUBACK was dropped (err %v)", lost.Error())
	}
	if s := p.Stats(); s.PubacksDropped != 1 {
		t.Fatalf("stats %+v, want 1 PUBACK dropped", s)
	}

	p.DropPubacks(false)
	big := string(bytes.Repeat([]byte("b"), 70000)) // three-byte remaining length
	if tok := pub.Publish("fp/b", 1, false, big); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("publish after DropPubacks(false): %v", tok.Error())
	}
	if lost.WaitTimeout(100 * time.Millisecond) {
		t.Fatal("the dropped PUBACK arrived later")
	}
	if s := p.Stats(); s.PubacksSeen != 1 || s.PubacksDropped != 1 {
		t.Fatalf("stats %+v, want 1 PUBACK seen and 1 dropped", s)
	}
}
