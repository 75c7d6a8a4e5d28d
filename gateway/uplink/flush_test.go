package uplink

import (
	"testing"
	"time"

	"github.com/shelfgate/shelfgate/gateway/mqtttest"
)

// TestFlush: a part-full telemetry batch that would linger is sent at
// once after Flush; between sessions, Flush reconnects at once instead of
// waiting out a long backoff.
func TestFlush(t *testing.T) {
	m := mqtttest.StartMosquitto(t)
	f := start(t, m.URL, Options{BatchLinger: time.Minute, BackoffMin: 20 * time.Second, BackoffMax: 20 * time.Second, KeepAlive: time.Second})
	waitFor(t, "connected", 15*time.Second, func() bool { return f.u.Stats().Connected })

	produce(t, f.ob, 1, 10, 0)
	time.Sleep(500 * time.Millisecond)
	if n := f.col.Audit(false).Received; n != 0 {
		t.Fatalf("%d rows delivered before the linger ended; the test cannot tell Flush apart", n)
	}
	if !f.u.Flush() {
		t.Fatal("Flush reported no session")
	}
	waitFor(t, "the lingering batch delivered after Flush", 10*time.Second, func() bool {
		return f.col.Audit(false).Received == 10 && f.ob.Backlog() == 0
	})

	m.Stop()
	waitFor(t, "the session to end", 15*time.Second, func() bool { return !f.u.Stats().Connected })
	m.Start()
	time.Sleep(time.Second) // the backoff (10-30 s) is still running
	if f.u.Stats().Connected {
		t.Fatal("reconnected before the backoff ended; the test cannot tell Flush apart")
	}
	if f.u.Flush() {
		t.Fatal("Flush reported a session between sessions")
	}
	waitFor(t, "a reconnect after Flush", 8*time.Second, func() bool { return f.u.Stats().Connected })
	if st := f.u.Stats(); st.Connects != 2 || st.Flushes != 2 {
		t.Errorf("connects %d flushes %d, want 2 and 2", st.Connects, st.Flushes)
	}
}
