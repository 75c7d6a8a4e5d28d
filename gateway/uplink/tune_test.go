package uplink

import (
	"errors"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/shelfgate/shelfgate/gateway/compress"
	"github.com/shelfgate/shelfgate/gateway/mqtttest"
	"github.com/shelfgate/shelfgate/gateway/wire/shelfv1"
)

// TestTuneWhileRunning changes the batch size and compression while lanes
// deliver through mosquitto: messages sent after the change carry at most
// the new batch size and are zstd frames, and the collector's audit shows
// every record once, no gap.
func TestTuneWhileRunning(t *testing.T) {
	url := mqtttest.StartMosquitto(t).URL
	type msg struct {
		records    int
		compressed bool
	}
	var mu sync.Mutex
	var msgs []msg
	dec, err := compress.NewDecoder(shelfv1.MaxBatchBytes)
	if err != nil {
		t.Fatal(err)
	}
	sub := subscriber(t, url, topics.Telemetry(), func(m paho.Message) {
		p := m.Payload()
		z := compress.IsCompressed(p)
		if z {
			var err error
			if p, err = dec.Decompress(p); err != nil {
				t.Errorf("decompress: %v", err)
				return
			}
		}
		b, err := shelfv1.DecodeBatch(p)
		if err != nil {
			t.Errorf("decode: %v", err)
			return
		}
		mu.Lock()
		msgs = append(msgs, msg{len(b.Records), z})
		mu.Unlock()
	})
	defer sub.Disconnect(0)
	f := start(t, url, Options{BatchRecords: 400, Window: 4})
	produce(t, f.ob, 10, 400, 0)
	// This subscriber is not the collector: wait until it, too, has every
	// record sent before the tune, or a late one would count as after.
	seen := func() int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, m := range msgs {
			n += m.records
		}
		return n
	}
	waitFor(t, "first 4000 delivered", 20*time.Second, func() bool {
		return f.col.Audit(false).Received == 4000 && f.ob.Backlog() == 0 && seen() >= 4000
	})
	mu.Lock()
	before := len(msgs)
	for _, m := range msgs {
		if m.compressed {
			t.Errorf("a batch was compressed before Compress was tuned on")
		}
	}
	mu.Unlock()

	want := Tuning{BatchRecords: 50, Window: 2, AckTimeout: 10 * time.Second, ReplayRate: 0, Compress: true}
	if err := f.u.Tune(want); err != nil {
		t.Fatal(err)
	}
	if got := f.u.Tuning(); got != want {
		t.Fatalf("Tuning() = %+v, want %+v", got, want)
	}
	produce(t, f.ob, 10, 400, 0)
	waitFor(t, "all 8000 delivered", 20*time.Second, func() bool {
		return f.col.Audit(false).Received == 8000 && f.ob.Backlog() == 0 && seen() >= 8000
	})
	mu.Lock()
	after := msgs[before:]
	mu.Unlock()
	if len(after) < 4000/50 {
		t.Errorf("%d messages after the tune, want at least %d of <= 50 records", len(after), 4000/50)
	}
	for i, m := range after {
		if m.records > 50 || !m.compressed {
			t.Fatalf("message %d after the tune: %d records, compressed %v; want <= 50 and compressed", i, m.records, m.compressed)
		}
	}
	if a := f.col.Audit(false); !a.OK() || a.Duplicates != 0 {
		t.Fatalf("audit %+v", a)
	}
}

func TestTuneRefusesOutOfRange(t *testing.T) {
	u, err := New(nil, Options{Brokers: []string{"tcp://127.0.0.1:1"}, Topics: topics, BatchRecords: 10})
	if err != nil {
		t.Fatal(err)
	}
	good := u.Tuning()
	for _, bad := range []Tuning{
		{BatchRecords: 0, Window: 1, AckTimeout: time.Second},
		{BatchRecords: 1, Window: 0, AckTimeout: time.Second},
		{BatchRecords: 1, Window: 1, AckTimeout: 0},
		{BatchRecords: 1, Window: 1, AckTimeout: time.Second, ReplayRate: -1},
	} {
		if err := u.Tune(bad); !errors.Is(err, ErrBadTuning) {
			t.Errorf("Tune(%+v) = %v, want ErrBadTuning", bad, err)
		}
	}
	if u.Tuning() != good || good.BatchRecords != 10 {
		t.Errorf("a refused tuning changed %+v to %+v", good, u.Tuning())
	}
}
