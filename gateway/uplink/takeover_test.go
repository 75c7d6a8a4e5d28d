package uplink

import (
	"log/slog"
	"testing"
	"time"

	"github.com/shelfgate/shelfgate/gateway/mqtttest"
)

func TestTakeoverWatch(t *testing.T) {
	t0 := time.Unix(1700000000, 0)
	type session struct {
		at       time.Duration // end, after t0
		lasted   time.Duration
		byBroker bool
	}
	for _, tc := range []struct {
		name      string
		sessions  []session
		takeovers int
		alarms    []int // indexes of sessions that raise the alarm
	}{
		{"three quick losses in a minute", []session{{1 * time.Second, time.Second, true}, {2 * time.Second, time.Second, true}, {3 * time.Second, time.Second, true}, {4 * time.Second, time.Second, true}}, 4, []int{2}},
		{"losses spread over minutes", []session{{0, time.Second, true}, {40 * time.Second, time.Second, true}, {100 * time.Second, time.Second, true}, {150 * time.Second, time.Second, true}}, 4, nil},
		{"sessions that lasted", []session{{20 * time.Second, 15 * time.Second, true}, {40 * time.Second, 15 * time.Second, true}, {60 * time.Second, 15 * time.Second, true}}, 0, nil},
		{"ended by this side", []session{{1 * time.Second, time.Second, false}, {2 * time.Second, time.Second, false}, {3 * time.Second, time.Second, false}}, 0, nil},
		{"a stable minute ends the episode", []session{
			{1 * time.Second, time.Second, true}, {2 * time.Second, time.Second, true}, {3 * time.Second, time.Second, true},
			{5 * time.Minute, 4 * time.Minute, true},
			{5*time.Minute + time.Second, time.Second, true}, {5*time.Minute + 2*time.Second, time.Second, true}, {5*time.Minute + 3*time.Second, time.Second, true},
		}, 6, []int{2, 6}},
		{"a short stable spell does not", []session{
			{1 * time.Second, time.Second, true}, {2 * time.Second, time.Second, true}, {3 * time.Second, time.Second, true},
			{33 * time.Second, 30 * time.Second, true},
			{34 * time.Second, time.Second, true}, {35 * time.Second, time.Second, true},
		}, 5, []int{2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var w takeoverWatch
			n := 0
			var alarms []int
			for i, s := range tc.sessions {
				take, alarm := w.note(t0.Add(s.at), s.lasted, s.byBroker)
				if take {
					n++
				}
				if alarm {
					alarms = append(alarms, i)
				}
			}
			if n != tc.takeovers || len(alarms) != len(tc.alarms) {
				t.Fatalf("takeovers %d, alarms at %v; want %d, %v", n, alarms, tc.takeovers, tc.alarms)
			}
			for i := range alarms {
				if alarms[i] != tc.alarms[i] {
					t.Fatalf("alarms at %v, want %v", alarms, tc.alarms)
				}
			}
		})
	}
}

// TestDuplicateClientID: two uplinks with the same client id (as two
// gateways with the same gateway.id have) against mosquitto take the
// session from each other; each counts the takeovers and logs the likely
// duplicate once at ERROR, however long the flapping goes on. A single
// uplink on the same broker counts none.
func TestDuplicateClientID(t *testing.T) {
	m := mqtttest.StartMosquitto(t)
	run := func(id string) (*Uplink, *logRecorder) {
		rec := &logRecorder{level: slog.LevelInfo}
		u, ob := runUplink(t, Options{Brokers: []string{m.URL}, ClientID: id, Logger: slog.New(rec),
			BackoffMin: 40 * time.Millisecond, BackoffMax: 200 * time.Millisecond})
		produce(t, ob, 2, 50, 1)
		return u, rec
	}
	alone, aloneLog := run("shelfgate-site-1-gw-alone")
	a, aLog := run("shelfgate-site-1-gw-1")
	b, bLog := run("shelfgate-site-1-gw-1")
	waitFor(t, "both uplinks to see 6 takeovers", 30*time.Second, func() bool {
		return a.Stats().Takeovers >= 6 && b.Stats().Takeovers >= 6
	})
	for name, rec := range map[string]*logRecorder{"a": aLog, "b": bLog} {
		dup := rec.records("likely duplicate gateway.id")
		if len(dup) != 1 {
			t.Errorf("uplink %s logged the duplicate %d times, want once", name, len(dup))
			continue
		}
		if dup[0].Level != slog.LevelError {
			t.Errorf("uplink %s logged the duplicate at %v", name, dup[0].Level)
		}
		if id, _ := attr(dup[0], "client_id"); id.String() != "shelfgate-site-1-gw-1" {
			t.Errorf("uplink %s: client_id %q in the log", name, id)
		}
	}
	if st := alone.Stats(); st.Takeovers != 0 || st.Connects != 1 {
		t.Errorf("the uplink with its own id: %+v", st)
	}
	if len(aloneLog.records("likely duplicate")) != 0 {
		t.Error("the uplink with its own id logged a duplicate")
	}
}
