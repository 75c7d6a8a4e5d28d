package statuspage

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/shelfgate/shelfgate/gateway"
)

type nopOutbox struct{}

func (nopOutbox) Append(context.Context, []gateway.Record) error { return nil }
func (nopOutbox) Backlog() int64                                 { return 0 }

type nopClassifier struct{}

func (nopClassifier) Observe(gateway.Reading) []gateway.Event    { return nil }
func (nopClassifier) ObserveEvent(gateway.Event) []gateway.Event { return nil }

// emitBench emits 1024 readings over 8 streams per op through chain and
// stores the time per reading of its last round in *perReading.
func emitBench(chain func() []gateway.Classifier, perReading *float64) func(b *testing.B) {
	return func(b *testing.B) {
		rs := make([]gateway.Reading, 1024)
		now := time.Now()
		for i := range rs {
			rs[i] = gateway.Reading{Stream: gateway.StreamID(fmt.Sprintf("loadcell/bin-%d", i%8)), Time: now.Add(time.Duration(i) * time.Millisecond), Value: float64(i)}
		}
		g := &gateway.Gateway{Outbox: nopOutbox{}, Classifiers: chain()}
		b.ReportAllocs()
		for b.Loop() {
			if err := g.Emit(context.Background(), rs); err != nil {
				b.Fatal(err)
			}
		}
		*perReading = float64(b.Elapsed().Nanoseconds()) / float64(b.N*len(rs))
		b.ReportMetric(*perReading, "ns/reading")
	}
}

// BenchmarkEmitWithTap measures what the Tap adds to the event path: a
// one-link chain (the detector's place) against the same chain with the
// Tap appended, in the same run, and prints the ratio.
func BenchmarkEmitWithTap(b *testing.B) {
	var base, with float64
	b.Run("chain-1", emitBench(func() []gateway.Classifier { return []gateway.Classifier{nopClassifier{}} }, &base))
	b.Run("chain-1+tap", emitBench(func() []gateway.Classifier { return []gateway.Classifier{nopClassifier{}, NewTap()} }, &with))
	if base > 0 {
		fmt.Printf("FIGURE name=emit_with_tap value=%.1f unit=ns/reading baseline=%.1f ratio=%.2f\n", with, base, with/base)
	}
}
