package uplink

import (
	"bytes"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"

	"github.com/shelfgate/shelfgate/gateway/collect"
	"github.com/shelfgate/shelfgate/gateway/faultproxy"
	"github.com/shelfgate/shelfgate/gateway/mqtttest"
)

// syncBuffer is a log sink safe for the uplink's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// proxied starts an embedded broker behind a faultproxy and an uplink
// (keepalive ka) delivering through the proxy, logging to the returned buffer.
func proxied(t *testing.T, ka time.Duration) (*fixture, *faultproxy.Proxy, *syncBuffer) {
	t.Helper()
	url := mqtttest.StartEmbedded(t)
	p, err := faultproxy.New(strings.TrimPrefix(url, "tcp://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	logs := new(syncBuffer)
	f := start(t, url, Options{
		Brokers:   []string{p.URL()},
		KeepAlive: ka,
		Logger:    slog.New(slog.NewTextHandler(logs, nil)),
	})
	return f, p, logs
}

// TestWatchdogEndsSilentSession blackholes the link (no RST, nothing
// flows): the watchdog, not paho's slower ping timeout, must end the
// session, and after the blackhole everything is delivered.
func TestWatchdogEndsSilentSession(t *testing.T) {
	f, p, logs := proxied(t, time.Second)
	produce(t, f.ob, 5, 200, 1)
	waitFor(t, "first rows delivered", 15*time.Second, func() bool { return f.ob.Backlog() == 0 })

	p.Blackhole(true)
	produce(t, f.ob, 5, 200, 1)
	waitFor(t, "the session to end in the blackhole", 15*time.Second, func() bool {
		return strings.Contains(logs.String(), "broker session ended")
	})
	if line := lastLine(logs.String(), "broker session ended"); !strings.Contains(line, "broker silent for") {
		t.Errorf("the session ended for another reason than the watchdog's: %s", line)
	}
	p.Blackhole(false)
	const want = 2 * (5*200 + 5)
	waitFor(t, "every row after the blackhole", 30*time.Second, func() bool {
		return f.col.Audit(false).Received == want && f.ob.Backlog() == 0
	})
	if a := f.col.Audit(false); !a.OK() {
		t.Fatalf("audit %+v", a)
	}
	if st := f.u.Stats(); st.Connects < 2 {
		t.Errorf("connects = %d, want a reconnect after the blackhole", st.Connects)
	}
}

// TestWatchdogKeepsIdleLinkAlive: on an idle, healthy link the broker sends
// nothing unless asked; the watchdog's own PINGREQ must keep the session
// (paho alone would ping only after a whole keepalive of silence, which the
// watchdog would take for a dead link).
func TestWatchdogKeepsIdleLinkAlive(t *testing.T) {
	f, _, logs := proxied(t, time.Second)
	produce(t, f.ob, 1, 10, 0)
	waitFor(t, "rows delivered", 15*time.Second, func() bool { return f.ob.Backlog() == 0 })
	time.Sleep(5 * time.Second) // five keepalives of idleness
	if st := f.u.Stats(); st.Connects != 1 || !st.Connected {
		t.Errorf("idle healthy link: connects = %d, connected = %v; want one session throughout\n%s", st.Connects, st.Connected, logs.String())
	}
}

func lastLine(text, s string) string {
	lines := strings.Split(text, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], s) {
			return lines[i]
		}
	}
	return ""
}

// TestDeliversOverWebsocket: the uplink dials brokers itself (for the
// watchdog), so every scheme the config accepts must still work; ws://
// through a mochi websocket listener, collected over TCP.
func TestDeliversOverWebsocket(t *testing.T) {
	free := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		return ln.Addr().String()
	}
	tcpAddr, wsAddr := free(), free()
	s := mqtt.New(&mqtt.Options{InlineClient: true, Logger: slog.New(slog.DiscardHandler)})
	if err := s.AddHook(new(auth.AllowHook), nil); err != nil {
		t.Fatal(err)
	}
	for _, l := range []listeners.Listener{
		listeners.NewTCP(listeners.Config{ID: "tcp", Address: tcpAddr}),
		listeners.NewWebsocket(listeners.Config{ID: "ws", Address: wsAddr}),
	} {
		if err := s.AddListener(l); err != nil {
			t.Fatal(err)
		}
	}
	go s.Serve() // left running to process exit, as mqtttest does (mochi's Close races)
	for _, a := range []string{tcpAddr, wsAddr} {
		if err := mqtttest.WaitListening(a, 10*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	f := rig{
		collectURL: "tcp://" + tcpAddr,
		collect:    collect.SubscribeOptions{Persistent: true},
		opts:       Options{Brokers: []string{"ws://" + wsAddr}, KeepAlive: time.Second},
	}.start(t)
	produce(t, f.ob, 5, 200, 1)
	waitFor(t, "rows delivered over websocket", 15*time.Second, func() bool {
		return f.col.Audit(false).Received == 5*201 && f.ob.Backlog() == 0
	})
	time.Sleep(2 * time.Second) // two keepalives idle: the watchdog's pings go through too
	if st := f.u.Stats(); st.Connects != 1 || !st.Connected {
		t.Errorf("websocket session: connects = %d, connected = %v; want one session throughout", st.Connects, st.Connected)
	}
}
