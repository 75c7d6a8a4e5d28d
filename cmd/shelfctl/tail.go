package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/shelfgate/shelfgate/gateway"
	"github.com/shelfgate/shelfgate/gateway/compress"
	"github.com/shelfgate/shelfgate/gateway/wire/shelfv1"
)

const tailSynopsis = "[--broker URL] [--site S] [--gateway G] [--raw] [connection flags]"

func tail(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("tail", flag.ContinueOnError)
	mf := addMQTTFlags(fs, os.LookupEnv)
	site := fs.String("site", "", "only this site (default all)")
	gw := fs.String("gateway", "", "only this gateway (default all)")
	raw := fs.Bool("raw", false, "print every reading, not one line per batch")
	if err := parseFlags(fs, args, stdout, stderr); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: tail takes no arguments, got %q", errUsage, fs.Args())
	}
	cn, err := mf.resolve()
	if err != nil {
		return err
	}
	s, g := *site, *gw
	if s == "" {
		s = "+"
	}
	if g == "" {
		g = "+"
	}
	base := shelfv1.TopicRoot + "/" + s + "/" + g
	zstd, err := compress.NewDecoder(shelfv1.MaxBatchBytes)
	if err != nil {
		return err
	}
	p := &printer{w: stdout, raw: *raw, agg: map[string]*readingAgg{}, zstd: zstd}
	handle := func(_ paho.Client, m paho.Message) { p.message(m.Topic(), m.Payload()) }
	if !*raw {
		go func() {
			t := time.NewTicker(time.Second)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					p.flush()
				}
			}
		}()
	}
	opts := cn.apply(paho.NewClientOptions()).SetClientID(fmt.Sprintf("shelfctl-tail-%d", os.Getpid())).
		SetCleanSession(true).SetAutoReconnect(true).SetMaxReconnectInterval(2 * time.Second).
		SetOnConnectHandler(func(c paho.Client) {
			c.SubscribeMultiple(map[string]byte{base + "/telemetry": 1, base + "/events": 1, base + "/status": 1, base + "/cmd/+/reply": 1}, handle)
		}).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			fmt.Fprintf(stderr, "tail: connection to %s lost (%v), reconnecting\n", cn.url, err)
		})
	c, err := mf.connect(ctx, opts)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	fmt.Fprintf(stderr, "tailing %s/{telemetry,events,status,cmd/+/reply} on %s (Ctrl-C to stop)\n", base, cn.url)
	<-ctx.Done()
	c.Disconnect(250)
	return nil
}

// printer prints messages one at a time. Unless raw, readings are summed up
// once a second per gateway (count, id range, latest value per stream), so
// events stand out.
type printer struct {
	mu   sync.Mutex
	w    io.Writer
	raw  bool
	agg  map[string]*readingAgg
	zstd *compress.Decoder
}

type readingAgg struct {
	n      int
	lo, hi int64
	last   map[string]shelfv1.WireRecord
}

func (p *printer) flush() {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now().Format("15:04:05.000")
	for who, a := range p.agg {
		if a.n == 0 {
			continue
		}
		names := make([]string, 0, len(a.last))
		for n := range a.last {
			names = append(names, n)
		}
		sort.Strings(names)
		var sb strings.Builder
		for _, n := range names {
			r := a.last[n]
			fmt.Fprintf(&sb, " %s=%.1f%s", strings.TrimPrefix(n, "loadcell/"), r.Value, r.Unit)
		}
		fmt.Fprintf(p.w, "%s %s READINGS n=%d ids=%d-%d%s\n", now, who, a.n, a.lo, a.hi, sb.String())
		delete(p.agg, who)
	}
}

func (p *printer) message(topic string, payload []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	parts := strings.Split(topic, "/")
	if len(parts) < 5 {
		return
	}
	w := p.w
	who := parts[2] + "/" + parts[3]
	now := time.Now().Format("15:04:05.000")
	switch parts[4] {
	case "status":
		fmt.Fprintf(w, "%s %s STATUS %s\n", now, who, payload)
	case "cmd":
		fmt.Fprintf(w, "%s %s REPLY %s %s\n", now, who, strings.Join(parts[5:], "/"), payload)
	case "telemetry", "events":
		b, err := shelfv1.DecodePayload(p.zstd, payload)
		if err != nil {
			fmt.Fprintf(w, "%s %s BAD %s: %v\n", now, who, parts[4], err)
			return
		}
		if b.Class == gateway.ClassEvent.String() {
			for _, r := range b.Records {
				var ev gateway.Event
				json.Unmarshal(r.Event, &ev)
				desc := describeEvent(ev)
				if ev.Kind == gateway.EventCommandReply {
					desc = describeReply(r.Event)
				}
				fmt.Fprintf(w, "%s %s EVENT %-9s %s id=%d seq=%d\n", now, who, strings.ToUpper(string(ev.Kind)), desc, r.ID, r.Seq)
			}
			return
		}
		if p.raw {
			for _, r := range b.Records {
				fmt.Fprintf(w, "%s %s %s #%d = %.2f %s (id %d)\n", now, who, r.Stream, r.Seq, r.Value, r.Unit, r.ID)
			}
			return
		}
		a := p.agg[who]
		if a == nil {
			a = &readingAgg{last: map[string]shelfv1.WireRecord{}}
			p.agg[who] = a
		}
		for _, r := range b.Records {
			if a.n == 0 || r.ID < a.lo {
				a.lo = r.ID
			}
			a.hi = max(a.hi, r.ID)
			a.n++
			a.last[r.Stream] = r
		}
	}
}

// describeReply is the human part of a command_reply event line.
func describeReply(body []byte) string {
	r, err := shelfv1.DecodeReply(body)
	if err != nil {
		return err.Error()
	}
	if !r.OK {
		return fmt.Sprintf("cmd=%s req=%s error=%q", r.Name, r.ID, r.Error)
	}
	return fmt.Sprintf("cmd=%s req=%s ok result=%s", r.Name, r.ID, r.Result)
}

// describeEvent is the human part of an event line.
func describeEvent(ev gateway.Event) string {
	switch ev.Kind {
	case gateway.EventPick, gateway.EventPut, gateway.EventMisPick:
		d := fmt.Sprintf("bin=%s qty=%d delta=%.1fg sku=%s", ev.Bin, ev.Quantity, ev.DeltaGrams, ev.SKU)
		if inf := ev.Inference; inf != nil { // a plate's: who identified it and how sure
			d += fmt.Sprintf(" facing=%d conf=%.2f by=%s", inf.Facing, inf.Confidence, inf.Classifier)
			if inf.ModelVersion != 0 {
				d += fmt.Sprintf(" v%d", inf.ModelVersion)
			}
		}
		if ev.Kind == gateway.EventMisPick && ev.Detail != "" {
			d += " (" + ev.Detail + ")"
		}
		return d
	case gateway.EventLowStock:
		return fmt.Sprintf("bin=%s stock=%d sku=%s", ev.Bin, ev.Quantity, ev.SKU)
	case gateway.EventScan:
		return fmt.Sprintf("%s code=%s", ev.Stream, ev.Detail)
	case gateway.EventTag:
		return fmt.Sprintf("%s uid=%s", ev.Stream, ev.Detail)
	case gateway.EventShed:
		return fmt.Sprintf("%s seq=%d-%d rows=%d", ev.Stream, ev.FromSeq, ev.ToSeq, ev.Quantity)
	}
	return fmt.Sprintf("%s %s", ev.Stream, ev.Detail)
}
