package uplink

import (
	"context"
	"crypto/tls"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shelfgate/shelfgate/gateway/mqtttest"
	"github.com/shelfgate/shelfgate/gateway/outbox"
)

// logRecorder is a slog.Handler keeping every record at or above level.
type logRecorder struct {
	level slog.Level
	mu    sync.Mutex
	recs  []slog.Record
}

func (h *logRecorder) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }
func (h *logRecorder) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	h.recs = append(h.recs, r.Clone())
	h.mu.Unlock()
	return nil
}
func (h *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *logRecorder) WithGroup(string) slog.Handler      { return h }

// records returns the records whose message starts with prefix.
func (h *logRecorder) records(prefix string) []slog.Record {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []slog.Record
	for _, r := range h.recs {
		if strings.HasPrefix(r.Message, prefix) {
			out = append(out, r)
		}
	}
	return out
}

func attr(r slog.Record, key string) (slog.Value, bool) {
	var v slog.Value
	found := false
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == key {
			v, found = a.Value, true
			return false
		}
		return true
	})
	return v, found
}

// runUplink runs an uplink on a fresh outbox with opts until the test ends.
func runUplink(t *testing.T, opts Options) (*Uplink, *outbox.Outbox) {
	t.Helper()
	ob, err := outbox.Open(filepath.Join(t.TempDir(), "outbox.db"), outbox.DefaultOptions)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ob.Close() })
	opts.Topics = topics
	u, err := New(ob, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- u.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return u, ob
}

// TestConnectFailureLevels: failures only an operator can fix (wrong
// password, untrusted CA, wrong host name, refused client certificate) are
// logged at ERROR, others at WARN; all are retried; each log's retry_in is
// the wait actually slept before the next attempt (the next attempt's
// record comes at least that much later), not the backoff cap.
func TestConnectFailureLevels(t *testing.T) {
	p := mqtttest.NewPKI(t)
	other := mqtttest.NewPKI(t) // a CA the gateway does not trust
	users := map[string]string{"gw-1": "right"}
	for _, tc := range []struct {
		name  string
		url   func(t *testing.T) string
		opts  Options
		level slog.Level
		msg   string
	}{
		{"wrong password", func(t *testing.T) string { return mqtttest.StartMosquittoAuth(t, users).URL },
			Options{Username: "gw-1", Password: "wrong"}, slog.LevelError, "broker refused the credentials"},
		{"no credentials", func(t *testing.T) string { return mqtttest.StartMosquittoAuth(t, users).URL },
			Options{}, slog.LevelError, "broker refused the credentials"},
		{"untrusted CA", func(t *testing.T) string { return mqtttest.StartMosquittoTLS(t, p, false).URL },
			Options{TLS: &tls.Config{RootCAs: other.Pool, MinVersion: tls.VersionTLS12}}, slog.LevelError, "TLS with the broker failed"},
		{"host name mismatch", func(t *testing.T) string { return mqtttest.StartMosquittoTLS(t, p, false).URL },
			Options{TLS: &tls.Config{RootCAs: p.Pool, ServerName: "broker.example", MinVersion: tls.VersionTLS12}}, slog.LevelError, "TLS with the broker failed"},
		{"client certificate missing", func(t *testing.T) string { return mqtttest.StartMosquittoTLS(t, p, true).URL },
			Options{TLS: &tls.Config{RootCAs: p.Pool, MinVersion: tls.VersionTLS12}}, slog.LevelError, "TLS with the broker failed"},
		{"nothing listening", func(t *testing.T) string { return "tcp://127.0.0.1:" + itoa(mqtttest.FreePort(t)) },
			Options{}, slog.LevelWarn, "broker connect failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &logRecorder{level: slog.LevelDebug}
			opts := tc.opts
			opts.Brokers = []string{tc.url(t)}
			opts.Logger = slog.New(rec)
			opts.ConnectTimeout = 2 * time.Second
			opts.BackoffMin, opts.BackoffMax = 40*time.Millisecond, 320*time.Millisecond
			u, _ := runUplink(t, opts)
			waitFor(t, "five failed attempts", 20*time.Second, func() bool { return len(rec.records(tc.msg)) >= 5 })
			if st := u.Stats(); st.Connects != 0 {
				t.Fatalf("connected: %+v", st)
			}
			fails := rec.records(tc.msg)
			attempts := rec.records("connecting to broker")
			for i, r := range fails {
				if r.Level != tc.level {
					t.Errorf("attempt %d logged at %v, want %v: %s", i+1, r.Level, tc.level, r.Message)
				}
				retry, ok := attr(r, "retry_in")
				if !ok {
					t.Fatalf("no retry_in in %q", r.Message)
				}
				wait := retry.Duration()
				if wait <= 0 || wait >= opts.BackoffMax+opts.BackoffMin/2 {
					t.Errorf("attempt %d: retry_in %s outside the jitter range", i+1, wait)
				}
				// The next attempt starts no sooner than the logged wait.
				for _, a := range attempts {
					if a.Time.After(r.Time) {
						if gap := a.Time.Sub(r.Time); gap < wait-time.Millisecond {
							t.Errorf("attempt %d: logged retry_in %s but the next attempt came %s later", i+1, wait, gap)
						}
						break
					}
				}
			}
			for _, r := range rec.records("") {
				if r.Level >= slog.LevelWarn && !strings.HasPrefix(r.Message, tc.msg) {
					e, _ := attr(r, "err")
					t.Errorf("unexpected %v record %q: %v", r.Level, r.Message, e)
				}
			}
		})
	}
}

// TestBatchDebugLogs: at debug level every batch is logged when sent and
// when acknowledged; at info level none is.
func TestBatchDebugLogs(t *testing.T) {
	url := mqtttest.StartMosquitto(t).URL
	for _, level := range []slog.Level{slog.LevelDebug, slog.LevelInfo} {
		t.Run(level.String(), func(t *testing.T) {
			rec := &logRecorder{level: level}
			u, ob := runUplink(t, Options{Brokers: []string{url}, ClientID: "debug-" + level.String(), Logger: slog.New(rec), BatchRecords: 100, BatchLinger: -1})
			produce(t, ob, 3, 100, 0)
			waitFor(t, "delivery", 15*time.Second, func() bool { return ob.Backlog() == 0 && u.Stats().Delivered >= 300 })
			sent, acked := rec.records("batch sent"), rec.records("batch acked")
			if level > slog.LevelDebug {
				if len(sent)+len(acked) != 0 {
					t.Fatalf("debug records at %v: %d sent, %d acked", level, len(sent), len(acked))
				}
				if len(rec.records("connected to broker")) != 1 {
					t.Fatal("no info record of the connection")
				}
				return
			}
			if int64(len(acked)) != u.Stats().Messages || len(sent) < len(acked) {
				t.Fatalf("%d sent and %d acked records for %d messages", len(sent), len(acked), u.Stats().Messages)
			}
			var records int64
			for _, r := range acked {
				n, _ := attr(r, "records")
				lo, _ := attr(r, "lo")
				hi, _ := attr(r, "hi")
				if n.Int64() <= 0 || lo.Int64() <= 0 || hi.Int64() < lo.Int64() {
					t.Fatalf("bad batch acked record: records=%v lo=%v hi=%v", n, lo, hi)
				}
				records += n.Int64()
			}
			if records != u.Stats().Delivered {
				t.Fatalf("acked records sum to %d, delivered %d", records, u.Stats().Delivered)
			}
			if len(rec.records("connecting to broker")) == 0 {
				t.Fatal("no debug record of the connection attempt")
			}
		})
	}
}
