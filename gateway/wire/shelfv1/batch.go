package shelfv1

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/shelfgate/shelfgate/gateway"
)

// Version is the version of the batch wire format ("v").
const Version = 1

// MaxBatchBytes bounds the size of a batch a consumer accepts.
const MaxBatchBytes = 4 << 20

// ErrBadBatch is returned by DecodeBatch for a payload that is not a valid batch.
var ErrBadBatch = errors.New("shelfv1: bad batch")

// Batch is one MQTT message on the telemetry or events topic. Records are
// ordered by id; within a stream, sequence numbers increase.
//
//	{"v":1,"site":"s","gw":"g","class":"telemetry","sent":1700000000000,
//	 "lo":1,"hi":500,"batch":"3q2-7wAAAAAAAAAAAAAAAA",
//	 "records":[{"id":1,"s":"loadcell/shelf-01/bin-01","q":1,"t":1700000000000000,"v":1234.5,"u":"g"}, ...]}
//
// t is Unix microseconds; f (quality flags) and e (event body) are omitted
// when empty. lo, hi and batch name the batch for consumer acknowledgements
// (see Ack): a consumer echoes them to confirm it stored the batch. They are
// omitted when the gateway does not tag batches.
type Batch struct {
	Version int          `json:"v"`
	Site    string       `json:"site"`
	Gateway string       `json:"gw"`
	Class   string       `json:"class"`
	Sent    int64        `json:"sent"`
	Lo      int64        `json:"lo,omitempty"`
	Hi      int64        `json:"hi,omitempty"`
	Tag     string       `json:"batch,omitempty"`
	Records []WireRecord `json:"records"`
}

// Ref returns the batch's reference for a consumer acknowledgement, and
// false when the batch carries none.
func (b *Batch) Ref() (gateway.BatchRef, bool) {
	c, ok := ParseClass(b.Class)
	if !ok || b.Tag == "" || b.Lo <= 0 || b.Hi < b.Lo {
		return gateway.BatchRef{}, false
	}
	return gateway.BatchRef{Class: c, Lo: b.Lo, Hi: b.Hi, Tag: b.Tag}, true
}

// ParseClass maps a wire class name ("telemetry", "event", "samples") to
// its Class.
func ParseClass(s string) (gateway.Class, bool) {
	switch s {
	case "telemetry":
		return gateway.ClassTelemetry, true
	case "event":
		return gateway.ClassEvent, true
	case "samples":
		return gateway.ClassSamples, true
	}
	return 0, false
}

// WireRecord is one record in a Batch.
type WireRecord struct {
	ID      int64           `json:"id"`
	Stream  string          `json:"s"`
	Seq     uint64          `json:"q"`
	Time    int64           `json:"t"`
	Value   float64         `json:"v"`
	Unit    string          `json:"u,omitempty"`
	Quality uint8           `json:"f,omitempty"`
	Event   json.RawMessage `json:"e,omitempty"`
}

// AppendBatch appends the wire form of recs (all of ref.Class) to buf;
// ref's Lo, Hi and Tag are written when Tag is set. It allocates nothing
// beyond growing buf.
func AppendBatch(buf []byte, site, gw string, ref gateway.BatchRef, sent time.Time, recs []gateway.Record) []byte {
	buf = append(buf, `{"v":1,"site":`...)
	buf = appendString(buf, site)
	buf = append(buf, `,"gw":`...)
	buf = appendString(buf, gw)
	buf = append(buf, `,"class":"`...)
	buf = append(buf, ref.Class.String()...)
	buf = append(buf, `","sent":`...)
	buf = strconv.AppendInt(buf, sent.UnixMilli(), 10)
	if ref.Tag != "" {
		buf = append(buf, `,"lo":`...)
		buf = strconv.AppendInt(buf, ref.Lo, 10)
		buf = append(buf, `,"hi":`...)
		buf = strconv.AppendInt(buf, ref.Hi, 10)
		buf = append(buf, `,"batch":`...)
		buf = appendString(buf, ref.Tag)
	}
	buf = append(buf, `,"records":[`...)
	for i := range recs {
		r := &recs[i]
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, `{"id":`...)
		buf = strconv.AppendInt(buf, r.ID, 10)
		buf = append(buf, `,"s":`...)
		buf = appendString(buf, string(r.Stream))
		buf = append(buf, `,"q":`...)
		buf = strconv.AppendUint(buf, r.Seq, 10)
		buf = append(buf, `,"t":`...)
		buf = strconv.AppendInt(buf, r.Time.UnixMicro(), 10)
		buf = append(buf, `,"v":`...)
		v := r.Value
		if math.IsNaN(v) || math.IsInf(v, 0) {
			v = 0 // JSON has no NaN; such readings carry a quality flag instead
		}
		buf = strconv.AppendFloat(buf, v, 'g', -1, 64)
		if r.Unit != "" {
			buf = append(buf, `,"u":`...)
			buf = appendString(buf, r.Unit)
		}
		if r.Quality != 0 {
			buf = append(buf, `,"f":`...)
			buf = strconv.AppendUint(buf, uint64(r.Quality), 10)
		}
		if len(r.Body) > 0 {
			buf = append(buf, `,"e":`...)
			buf = append(buf, r.Body...)
		}
		buf = append(buf, '}')
	}
	return append(buf, "]}"...)
}

// appendString appends s as a JSON string. Stream ids and units are plain
// ASCII in practice; anything else is escaped conservatively.
func appendString(buf []byte, s string) []byte {
	buf = append(buf, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			buf = append(buf, c)
			i++
			continue
		}
		if c < utf8.RuneSelf {
			switch c {
			case '"', '\\':
				buf = append(buf, '\\', c)
			default:
				buf = append(buf, `\u00`...)
				buf = append(buf, "0123456789abcdef"[c>>4], "0123456789abcdef"[c&0xf])
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			buf = append(buf, `\ufffd`...)
		} else {
			buf = append(buf, s[i:i+size]...)
		}
		i += size
	}
	return append(buf, '"')
}

// DecodeBatch parses and checks one batch payload.
func DecodeBatch(p []byte) (*Batch, error) {
	if len(p) > MaxBatchBytes {
		return nil, fmt.Errorf("%w: %d bytes exceeds the limit of %d", ErrBadBatch, len(p), MaxBatchBytes)
	}
	var b Batch
	dec := json.NewDecoder(bytes.NewReader(p))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadBatch, err)
	}
	if b.Version != Version {
		return nil, fmt.Errorf("%w: version %d, want %d", ErrBadBatch, b.Version, Version)
	}
	if _, ok := ParseClass(b.Class); !ok {
		return nil, fmt.Errorf("%w: class %q", ErrBadBatch, b.Class)
	}
	if b.Tag != "" && (b.Lo <= 0 || b.Hi < b.Lo) {
		return nil, fmt.Errorf("%w: batch %q with lo %d, hi %d", ErrBadBatch, b.Tag, b.Lo, b.Hi)
	}
	if b.Tag == "" && (b.Lo != 0 || b.Hi != 0) {
		// lo and hi name a batch only with its tag; alone they are a
		// range nothing vouches for.
		return nil, fmt.Errorf("%w: lo %d, hi %d without a batch tag", ErrBadBatch, b.Lo, b.Hi)
	}
	for i, r := range b.Records {
		if r.ID <= 0 || r.Seq == 0 || r.Stream == "" {
			return nil, fmt.Errorf("%w: records[%d]: id %d, seq %d, stream %q must be set", ErrBadBatch, i, r.ID, r.Seq, r.Stream)
		}
	}
	return &b, nil
}
