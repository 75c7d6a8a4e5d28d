package main

import (
	"flag"
	"fmt"
	"time"

	"github.com/shelfgate/shelfgate/firmware-sim/warehouse"
	"github.com/shelfgate/shelfgate/gateway"
	"github.com/shelfgate/shelfgate/gateway/compress"
	"github.com/shelfgate/shelfgate/gateway/wire/shelfv1"
)

// compressBench measures what zstd saves on realistic batches (readings
// from the simulated warehouse: 8 load cells at 80 samples/s, with noise)
// and what it costs per batch, beside plain JSON.
func compressBench(args []string) error {
	fs := flag.NewFlagSet("compress", flag.ExitOnError)
	batches := fs.Int("batches", 2000, "batches of 500 readings")
	fs.Parse(args)
	cfg := warehouse.DefaultConfig()
	cfg.SampleRate = 80
	wh, err := warehouse.New(cfg)
	if err != nil {
		return err
	}
	bins := wh.Bins()
	t0 := time.Now()
	recs := make([]gateway.Record, 500)
	fill := func(b int) {
		for i := range recs {
			k := int64(b*len(recs)+i) / int64(len(bins))
			bin := bins[i%len(bins)]
			recs[i] = gateway.Record{ID: int64(b*len(recs) + i + 1), Seq: uint64(k + 1), Stream: gateway.StreamID("loadcell/" + bin.ID),
				Time: t0.Add(wh.SampleTime(k)), Value: float64(wh.CodeAt(bin.Index, k)-bin.OffsetCounts) / bin.CountsPerGram, Unit: "g"}
		}
	}
	enc, err := compress.NewEncoder()
	if err != nil {
		return err
	}
	var plainBytes, zstdBytes int
	var plainTime, zstdTime time.Duration
	buf, out := make([]byte, 0, 64<<10), make([]byte, 0, 64<<10)
	for b := range *batches {
		fill(b)
		start := time.Now()
		buf = shelfv1.AppendBatch(buf[:0], "site", "gw", gateway.BatchRef{Class: gateway.ClassTelemetry}, t0, recs)
		mid := time.Now()
		out = enc.Compress(out[:0], buf)
		end := time.Now()
		plainTime += mid.Sub(start)
		zstdTime += end.Sub(start)
		plainBytes += len(buf)
		zstdBytes += len(out)
	}
	n := float64(*batches * len(recs))
	fmt.Printf("FIGURE wire_bytes_per_reading=%.1f unit=bytes baseline=%.1f ratio=%.3f\n", float64(zstdBytes)/n, float64(plainBytes)/n, float64(zstdBytes)/float64(plainBytes))
	fmt.Printf("FIGURE batch_encode_us=%.1f unit=us baseline=%.1f ratio=%.3f\n",
		float64(zstdTime.Microseconds())/float64(*batches), float64(plainTime.Microseconds())/float64(*batches), float64(zstdTime)/float64(plainTime))
	fmt.Println("# batch_encode_us: JSON + zstd per 500-reading batch vs JSON alone")
	return nil
}
