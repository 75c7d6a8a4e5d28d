package outbox

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/shelfgate/shelfgate/gateway"
)

func sampleRecs(n int) []gateway.Record {
	body := []byte(fmt.Sprintf(`{"kind":"sample","source":"scan","label":"x01","features":[%s0]}`, "0.125,"))
	recs := make([]gateway.Record, n)
	for i := range recs {
		recs[i] = gateway.Record{Class: gateway.ClassSamples, Stream: "samples", Time: time.Now(), Value: 1, Body: body}
	}
	return recs
}

// TestSamplesReadAckAndCount: samples are their own class: read and acked
// apart from telemetry and events, counted in Stats, kept across reopen.
func TestSamplesReadAckAndCount(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "outbox.db")
	o, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Append(ctx, append(telemetry([]gateway.StreamID{"loadcell/a"}, 3), sampleRecs(2)...)); err != nil {
		t.Fatal(err)
	}
	s, err := o.Read(ctx, gateway.ClassSamples, 0, 10, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(s) != 2 || s[0].Class != gateway.ClassSamples || s[0].Stream != "samples" || len(s[0].Body) == 0 {
		t.Fatalf("samples read %+v", s)
	}
	tel, err := o.Read(ctx, gateway.ClassTelemetry, 0, 10, nil)
	if err != nil || len(tel) != 3 {
		t.Fatalf("telemetry read %d rows, %v", len(tel), err)
	}
	if st := stats(t, o); st.Samples != 2 || st.Backlog != 5 {
		t.Fatalf("stats samples %d backlog %d, want 2 and 5", st.Samples, st.Backlog)
	}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	// From the database rather than the tail after reopen.
	o, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if st := stats(t, o); st.Samples != 2 {
		t.Fatalf("after reopen samples %d, want 2", st.Samples)
	}
	s, err = o.Read(ctx, gateway.ClassSamples, 0, 10, nil)
	if err != nil || len(s) != 2 {
		t.Fatalf("after reopen read %d samples, %v", len(s), err)
	}
	if err := o.Ack(ctx, gateway.ClassSamples, s[0].ID, s[1].ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return stats(t, o).Samples == 0 })
	if st := stats(t, o); st.Backlog != 3 {
		t.Fatalf("after acking samples backlog %d, want the 3 telemetry rows", st.Backlog)
	}
}

// TestBudgetShedsSamplesFirst: under the byte budget the oldest samples go
// before any telemetry, are counted per class (ShedSamples, persisted) and
// reported by shed notices like any other stream.
func TestBudgetShedsSamplesFirst(t *testing.T) {
	const budget = 128 << 10
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "outbox.db")
	o, err := Open(path, Options{MaxBytes: budget})
	if err != nil {
		t.Fatal(err)
	}
	for range 10 {
		if err := o.Append(ctx, sampleRecs(100)); err != nil {
			t.Fatal(err)
		}
	}
	// Telemetry arriving after the samples: the budget sheds the samples
	// first although telemetry would do.
	for range 4 {
		if err := o.Append(ctx, telemetry([]gateway.StreamID{"loadcell/a"}, 200)); err != nil {
			t.Fatal(err)
		}
	}
	st := stats(t, o)
	if st.ShedSamples == 0 {
		t.Fatalf("no samples shed: %+v", st)
	}
	if st.ShedTelemetry != 0 && st.Samples > 0 {
		t.Fatalf("telemetry shed (%d) while %d samples were left", st.ShedTelemetry, st.Samples)
	}
	notices, err := o.Read(ctx, gateway.ClassEvent, 0, 1000, nil)
	if err != nil {
		t.Fatal(err)
	}
	var reported int
	for _, n := range notices {
		var ev gateway.Event
		if err := json.Unmarshal(n.Body, &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Kind == gateway.EventShed && ev.Stream == "samples" {
			reported += ev.Quantity
		}
	}
	if int64(reported) != st.ShedSamples {
		t.Errorf("shed notices report %d samples, ShedSamples %d", reported, st.ShedSamples)
	}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	o, err = Open(path, Options{MaxBytes: budget})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if again := stats(t, o); again.ShedSamples != st.ShedSamples {
		t.Errorf("ShedSamples %d after reopen, %d before", again.ShedSamples, st.ShedSamples)
	}
	rep, err := Inspect(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Shed[gateway.ClassSamples] != st.ShedSamples {
		t.Errorf("Inspect shed samples %d, want %d", rep.Shed[gateway.ClassSamples], st.ShedSamples)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
