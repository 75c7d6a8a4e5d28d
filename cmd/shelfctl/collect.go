package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/shelfgate/shelfgate/gateway"
	"github.com/shelfgate/shelfgate/gateway/collect"
	"github.com/shelfgate/shelfgate/gateway/wire/shelfv1"
)

// collectedRecord is one line of collect's output file.
type collectedRecord struct {
	Site    string          `json:"site"`
	Gateway string          `json:"gw"`
	Class   string          `json:"class"`
	ID      int64           `json:"id"`
	Stream  string          `json:"stream"`
	Seq     uint64          `json:"seq"`
	Time    int64           `json:"t_us"`
	Value   float64         `json:"value"`
	Unit    string          `json:"unit,omitempty"`
	Quality uint8           `json:"quality,omitempty"`
	Event   json.RawMessage `json:"event,omitempty"`
}

const collectSynopsis = "--out FILE.jsonl | --samples DIR [--broker URL] [--share GROUP] [--site S] [--gateway G] [--client-id ID]\n" +
	"                 [--duration D] [--idle D] [--expect N] [--from-start] [--ack] [connection flags]"

func collectCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("collect", flag.ContinueOnError)
	mf := addMQTTFlags(fs, os.LookupEnv)
	out := fs.String("out", "", "JSON-lines file of unique records (appended to)")
	share := fs.String("share", "", "shared-subscription group: collectors in one group split the fleet")
	site := fs.String("site", "", "only this site")
	gw := fs.String("gateway", "", "only this gateway")
	clientID := fs.String("client-id", "", "MQTT client id; with it the broker keeps the session (and queues messages) while collect is away")
	duration := fs.Duration("duration", 0, "stop after this long")
	idle := fs.Duration("idle", 0, "stop when nothing new arrived for this long (after something did)")
	expect := fs.Int64("expect", 0, "stop once this many unique records arrived")
	fromStart := fs.Bool("from-start", false, "audit every stream from sequence number 1: for a collector that was there from the gateway's first reading (default: from the first sequence number received per stream, so collect can start beside a running gateway; every gap after it is reported)")
	fromFirst := fs.Bool("from-first", true, "accepted for compatibility: auditing from the first received is the default now (--from-first=false is --from-start)")
	samplesDir := fs.String("samples", "", "also subscribe labelled samples and keep them as CSV datasets per gateway and model version under DIR (for shelfctl model train --from DIR)")
	ack := fs.Bool("ack", false, "confirm each batch to its gateway after it is synced to --out (for gateways with uplink.ack_mode: consumer)")
	if err := parseFlags(fs, args, stdout, stderr); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: collect takes no arguments, got %q", errUsage, fs.Args())
	}
	if *out == "" && *samplesDir == "" {
		return fmt.Errorf("%w: collect needs --out FILE.jsonl or --samples DIR", errUsage)
	}
	cn, err := mf.resolve()
	if err != nil {
		return err
	}
	outPath := *out
	if outPath == "" {
		outPath = os.DevNull
	}
	f, err := os.OpenFile(outPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 1<<16)
	enc := json.NewEncoder(w)
	var sw *sampleWriter
	if *samplesDir != "" {
		if sw, err = newSampleWriter(*samplesDir); err != nil {
			return err
		}
		defer func() {
			if err := sw.close(); err != nil {
				fmt.Fprintf(stderr, "collect: closing %s: %v\n", *samplesDir, err)
			}
		}()
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if *duration > 0 {
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	var (
		mu       sync.Mutex
		unique   int64
		lastNew  time.Time
		writeErr error
	)
	col := collect.New()
	id := *clientID
	if id == "" {
		id = fmt.Sprintf("shelfctl-collect-%d", os.Getpid())
	}
	opts := collect.SubscribeOptions{
		Broker: cn.url, ClientID: id, Persistent: *clientID != "", Site: *site, Gateway: *gw, Share: *share, Ack: *ack, Samples: sw != nil,
		Username: cn.username, Password: cn.password, TLS: cn.tls, ConnectTimeout: mf.connectTimeout,
		OnBatch: func(b *shelfv1.Batch, fresh []shelfv1.WireRecord) {
			mu.Lock()
			defer mu.Unlock()
			for _, r := range fresh {
				if err := enc.Encode(collectedRecord{Site: b.Site, Gateway: b.Gateway, Class: b.Class, ID: r.ID, Stream: r.Stream, Seq: r.Seq, Time: r.Time, Value: r.Value, Unit: r.Unit, Quality: r.Quality, Event: r.Event}); err != nil && writeErr == nil {
					writeErr = err
				}
				if sw != nil && b.Class == gateway.ClassSamples.String() {
					if err := sw.add(b.Site, b.Gateway, r.Event); err != nil {
						fmt.Fprintf(stderr, "collect: sample %s/%s id %d not kept: %v\n", b.Site, b.Gateway, r.ID, err)
					}
				}
			}
			if len(fresh) > 0 {
				// Flush per batch so the file is a live record (tail -f works);
				// with --ack also sync it, since the gateway then deletes the rows.
				if err := w.Flush(); err != nil && writeErr == nil {
					writeErr = err
				}
				if *ack {
					if err := f.Sync(); err != nil && writeErr == nil {
						writeErr = err
					}
				}
				if sw != nil && b.Class == gateway.ClassSamples.String() {
					if err := sw.flush(); err != nil && writeErr == nil {
						writeErr = err
					}
				}
				unique += int64(len(fresh))
				lastNew = time.Now()
				if *expect > 0 && unique >= *expect {
					cancel()
				}
			}
		},
		OnReject: func(topic string, err error) {
			fmt.Fprintf(stderr, "collect: rejected message on %s: %v\n", topic, err)
		},
		OnSubscribed: func() {
			fmt.Fprintf(stderr, "collect: subscribed to %v on %s\n", (collect.SubscribeOptions{Site: *site, Gateway: *gw, Share: *share, Samples: sw != nil}).Filters(), cn.url)
		},
		OnConnectionLost: func(err error) {
			fmt.Fprintf(stderr, "collect: connection to %s lost (%v), reconnecting\n", cn.url, err)
		},
	}
	if *idle > 0 {
		go func() {
			t := time.NewTicker(*idle / 4)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					mu.Lock()
					quiet := !lastNew.IsZero() && time.Since(lastNew) > *idle
					mu.Unlock()
					if quiet {
						cancel()
						return
					}
				}
			}
		}()
	}
	if err := collect.Subscribe(ctx, col, opts); err != nil {
		if ctx.Err() != nil && !errors.Is(err, collect.ErrNotAuthorized) && !errors.Is(err, collect.ErrTLS) {
			return fmt.Errorf("%w (stopped before the broker answered)", err)
		}
		return err
	}
	mu.Lock()
	defer mu.Unlock()
	if err := w.Flush(); err != nil && writeErr == nil {
		writeErr = err
	}
	if writeErr != nil {
		return fmt.Errorf("write %s: %w", *out, writeErr)
	}
	a := col.Audit(*fromFirst && !*fromStart)
	a.Write(stdout)
	if sw != nil {
		fmt.Fprintf(stdout, "samples: %d kept as dataset rows under %s, %d without a usable window (in samples.jsonl only)\n", sw.Rows, *samplesDir, sw.Untrainable)
	}
	if !a.OK() {
		return fmt.Errorf("%w: %d sequence numbers missing, %d conflicts, %d rejected messages", errAudit, a.Missing, a.Conflicts, a.Rejected)
	}
	return nil
}
