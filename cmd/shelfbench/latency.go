package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/shelfgate/shelfgate/gateway"
	"github.com/shelfgate/shelfgate/gateway/uplink"
	"github.com/shelfgate/shelfgate/gateway/wire/shelfv1"
)

// latency measures sample-to-subscriber latency at a steady rate: readings
// stamped when produced, appended to the outbox in small groups as sensors
// would, delivered through mosquitto; the subscriber takes now − t of every
// reading. Baseline: the same readings published directly with paho, one
// QoS1 message each, at the same rate.
func latency(args []string) error {
	fs := flag.NewFlagSet("latency", flag.ExitOnError)
	rate := fs.Int("rate", 5000, "readings per second")
	secs := fs.Int("seconds", 10, "duration of each run")
	fs.Parse(args)
	url, stop, err := startMosquitto()
	if err != nil {
		return err
	}
	defer stop()
	n := *rate * *secs

	// Baseline: direct publishes.
	rec := newLatencyRecorder(n)
	sub, err := subscribe(url, "bench/lat-raw", rec.batch)
	if err != nil {
		return err
	}
	pub := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID("bench-lat-pub").SetOrderMatters(false))
	if t := pub.Connect(); !t.WaitTimeout(10*time.Second) || t.Error() != nil {
		return fmt.Errorf("connect: %v", t.Error())
	}
	paced(*rate, n, 10, func(rs []gateway.Record) error {
		for i := range rs {
			pub.Publish("bench/lat-raw", 1, false, shelfv1.AppendBatch(nil, "b", "raw", gateway.BatchRef{Class: gateway.ClassTelemetry}, time.Now(), rs[i:i+1]))
		}
		return nil
	})
	if err := waitCount(&rec.got, int64(n), 60*time.Second); err != nil {
		return fmt.Errorf("latency baseline: %w", err)
	}
	pub.Disconnect(0)
	sub.Disconnect(0)
	base50, base99 := rec.percentiles()

	// Shelfgate: outbox + uplink.
	ob, closeOutbox, err := tempOutbox("shelfbench-lat")
	if err != nil {
		return err
	}
	defer closeOutbox()
	topics := shelfv1.Topics{Site: "bench", Gateway: "lat"}
	rec = newLatencyRecorder(n)
	sub, err = subscribe(url, topics.Telemetry(), rec.batch)
	if err != nil {
		return err
	}
	defer sub.Disconnect(0)
	stopUplink, err := runUplink(ob, uplink.Options{Brokers: []string{url}, Topics: topics})
	if err != nil {
		return err
	}
	defer stopUplink()
	ctx := context.Background()
	time.Sleep(500 * time.Millisecond) // connected
	if err := paced(*rate, n, 10, func(rs []gateway.Record) error { return ob.Append(ctx, rs) }); err != nil {
		return err
	}
	if err := waitCount(&rec.got, int64(n), 60*time.Second); err != nil {
		return fmt.Errorf("latency gateway path: %w", err)
	}
	stopUplink()
	p50, p99 := rec.percentiles()
	fmt.Printf("FIGURE latency_p50_ms=%.2f unit=ms baseline=%.2f ratio=%.3f\n", p50, base50, p50/base50)
	fmt.Printf("FIGURE latency_p99_ms=%.2f unit=ms baseline=%.2f ratio=%.3f\n", p99, base99, p99/base99)
	return nil
}

// paced calls emit with groups of `group` fresh readings, stamped now, so
// that n readings go out at rate per second.
func paced(rate, n, group int, emit func([]gateway.Record) error) error {
	start := time.Now()
	streams := []gateway.StreamID{"loadcell/a", "loadcell/b", "loadcell/c", "loadcell/d"}
	recs := make([]gateway.Record, group)
	for sent := 0; sent < n; sent += group {
		due := start.Add(time.Duration(float64(sent) / float64(rate) * float64(time.Second)))
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		}
		now := time.Now()
		for i := range recs {
			recs[i] = gateway.Record{Class: gateway.ClassTelemetry, Stream: streams[i%len(streams)], Time: now, Value: float64(sent + i), Unit: "g"}
		}
		if err := emit(recs); err != nil {
			return err
		}
	}
	return nil
}

type latencyRecorder struct {
	mu  sync.Mutex
	ms  []float64
	got atomic.Int64
}

func newLatencyRecorder(n int) *latencyRecorder {
	return &latencyRecorder{ms: make([]float64, 0, n)}
}

var tKey = []byte(`,"t":`)

// batch records now − t for every record of a payload (t is Unix µs).
func (l *latencyRecorder) batch(p []byte) {
	now := time.Now().UnixMicro()
	var lats []float64
	for {
		i := bytes.Index(p, tKey)
		if i < 0 {
			break
		}
		p = p[i+len(tKey):]
		j := bytes.IndexByte(p, ',')
		if j < 0 {
			break
		}
		if t, err := strconv.ParseInt(string(p[:j]), 10, 64); err == nil {
			lats = append(lats, float64(now-t)/1000)
		}
	}
	l.mu.Lock()
	l.ms = append(l.ms, lats...)
	l.mu.Unlock()
	l.got.Add(int64(len(lats)))
}

func (l *latencyRecorder) percentiles() (p50, p99 float64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	slices.Sort(l.ms)
	at := func(q float64) float64 { return l.ms[min(len(l.ms)-1, int(q*float64(len(l.ms))))] }
	return at(0.50), at(0.99)
}

// drain measures how long a large backlog takes to drain after the broker
// becomes reachable, beside the time to ingest the same rows (the only
// baseline that shares its cost model on this machine).
func drain(args []string) error {
	fs := flag.NewFlagSet("drain", flag.ExitOnError)
	n := fs.Int("readings", 10_000_000, "backlog size")
	window := fs.Int("window", 64, "messages in flight")
	batch := fs.Int("batch", 1000, "readings per message")
	name := fs.String("figure", "drain_seconds", "name of the FIGURE line")
	fs.Parse(args)
	url, stop, err := startMosquitto()
	if err != nil {
		return err
	}
	defer stop()
	ob, closeOutbox, err := tempOutbox("shelfbench-drain")
	if err != nil {
		return err
	}
	defer closeOutbox()
	recs := records(8192, 64)
	start := time.Now()
	for left := *n; left > 0; left -= len(recs) {
		batch := recs[:min(len(recs), left)]
		for i := range batch {
			batch[i].ID = 0
		}
		if err := ob.Append(context.Background(), batch); err != nil {
			return err
		}
	}
	fill := time.Since(start)
	var got atomic.Int64
	topics := shelfv1.Topics{Site: "bench", Gateway: "drain"}
	sub, err := subscribe(url, topics.Telemetry(), countRecords(&got))
	if err != nil {
		return err
	}
	defer sub.Disconnect(0)
	start = time.Now()
	stopUplink, err := runUplink(ob, uplink.Options{Brokers: []string{url}, Topics: topics, BatchRecords: *batch, Window: *window})
	if err != nil {
		return err
	}
	defer stopUplink()
	if err := waitCount(&got, int64(*n), 30*time.Minute); err != nil {
		return err
	}
	for ob.Backlog() > 0 {
		time.Sleep(10 * time.Millisecond)
	}
	el := time.Since(start)
	stopUplink()
	fmt.Printf("FIGURE %s=%.1f unit=s baseline=%.1f ratio=%.3f\n", *name, el.Seconds(), fill.Seconds(), el.Seconds()/fill.Seconds())
	fmt.Printf("# drain: %d readings delivered and deleted in %.1f s (%.0f readings/s, window %d, %d per message); baseline = time to ingest them\n", *n, el.Seconds(), float64(*n)/el.Seconds(), *window, *batch)
	return nil
}
