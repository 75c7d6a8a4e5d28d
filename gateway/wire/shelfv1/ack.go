package shelfv1

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/shelfgate/shelfgate/gateway"
)

// MaxAckBytes bounds a consumer acknowledgement.
const MaxAckBytes = 512

// MaxTagLen bounds a batch tag ("batch").
const MaxTagLen = 64

// ErrBadAck is returned by DecodeAck for a payload that is not a valid ack.
var ErrBadAck = errors.New("shelfv1: bad ack")

// Ack is the JSON body a cloud consumer publishes on
// shelfgate/v1/<site>/<gateway>/ack once it has durably stored a batch, for
// gateways that keep rows until the consumer confirms them
// (uplink.ack_mode consumer). It echoes the batch's class, lo, hi and
// batch fields unchanged:
//
//	{"class":"telemetry","lo":1,"hi":500,"batch":"3q2-7wAAAAAAAAAAAAAAAA"}
//
// The gateway deletes the batch's rows only if batch is the tag it gave
// exactly that class, lo and hi.
type Ack struct {
	Class string `json:"class"`
	Lo    int64  `json:"lo"`
	Hi    int64  `json:"hi"`
	Batch string `json:"batch"`
}

// AppendAck appends the ack of ref to buf.
func AppendAck(buf []byte, ref gateway.BatchRef) []byte {
	buf = append(buf, `{"class":"`...)
	buf = append(buf, ref.Class.String()...)
	buf = append(buf, `","lo":`...)
	buf = strconv.AppendInt(buf, ref.Lo, 10)
	buf = append(buf, `,"hi":`...)
	buf = strconv.AppendInt(buf, ref.Hi, 10)
	buf = append(buf, `,"batch":`...)
	buf = appendString(buf, ref.Tag)
	return append(buf, '}')
}

// DecodeAck parses and checks an ack. It does not check the tag: only the
// gateway can (uplink.Confirm).
func DecodeAck(p []byte) (gateway.BatchRef, error) {
	if len(p) > MaxAckBytes {
		return gateway.BatchRef{}, fmt.Errorf("%w: %d bytes exceeds the limit of %d", ErrBadAck, len(p), MaxAckBytes)
	}
	if bytes.Equal(bytes.TrimSpace(p), []byte("null")) {
		return gateway.BatchRef{}, fmt.Errorf("%w: null, want an object", ErrBadAck)
	}
	var a Ack
	dec := json.NewDecoder(bytes.NewReader(p))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&a); err != nil {
		return gateway.BatchRef{}, fmt.Errorf("%w: %v", ErrBadAck, err)
	}
	if dec.More() {
		return gateway.BatchRef{}, fmt.Errorf("%w: data after the object", ErrBadAck)
	}
	c, ok := ParseClass(a.Class)
	switch {
	case !ok:
		return gateway.BatchRef{}, fmt.Errorf("%w: class %q, want \"telemetry\" or \"event\"", ErrBadAck, a.Class)
	case a.Lo <= 0:
		return gateway.BatchRef{}, fmt.Errorf("%w: lo %d, want > 0", ErrBadAck, a.Lo)
	case a.Hi < a.Lo:
		return gateway.BatchRef{}, fmt.Errorf("%w: hi %d below lo %d", ErrBadAck, a.Hi, a.Lo)
	case a.Batch == "" || len(a.Batch) > MaxTagLen:
		return gateway.BatchRef{}, fmt.Errorf("%w: batch %q, want the batch's tag (1-%d characters)", ErrBadAck, a.Batch, MaxTagLen)
	}
	return gateway.BatchRef{Class: c, Lo: a.Lo, Hi: a.Hi, Tag: a.Batch}, nil
}
