package uplink

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"sync"

	"github.com/shelfgate/shelfgate/gateway"
)

// Reasons Confirm rejects an ack for (its errors carry them; see
// downlink.ReasonOf).
const (
	ReasonForged   = "forged"   // the tag is not the one the gateway gave class, lo, hi
	ReasonReplayed = "replayed" // the batch was confirmed already
	ReasonMode     = "not_consumer_mode"
)

// ErrAckRejected is wrapped by every error of Confirm that rejects an ack.
var ErrAckRejected = errors.New("uplink: ack rejected")

type ackError struct {
	reason string
	err    error
}

func (e *ackError) Error() string  { return e.err.Error() }
func (e *ackError) Unwrap() error  { return e.err }
func (e *ackError) Reason() string { return e.reason }

func rejectAck(reason, format string, args ...any) error {
	return &ackError{reason: reason, err: fmt.Errorf("%w: %s", ErrAckRejected, fmt.Sprintf(format, args...))}
}

// Confirm applies a consumer acknowledgement: the rows of ref's batch
// leave the store. Only a batch this gateway sent (in this or an earlier
// run with the same BatchKey) can be confirmed, and only the rows it
// carried: ref's Tag must be the one the uplink gave exactly ref's class,
// Lo and Hi. A forged or altered ack, one of a batch confirmed lately, or
// any ack without Options.ConsumerAcks is rejected (an error wrapping
// ErrAckRejected with a Reason) and deletes nothing.
func (u *Uplink) Confirm(ctx context.Context, ref gateway.BatchRef) error {
	if !u.opts.ConsumerAcks {
		return rejectAck(ReasonMode, "consumer acks are off (uplink.ack_mode broker)")
	}
	if !u.tags.valid(ref) {
		return rejectAck(ReasonForged, "%s ids %d-%d: tag %q is not the gateway's", ref.Class, ref.Lo, ref.Hi, ref.Tag)
	}
	if !u.seen.add(ref.Tag) {
		return rejectAck(ReasonReplayed, "%s ids %d-%d: batch %s confirmed already", ref.Class, ref.Lo, ref.Hi, ref.Tag)
	}
	if err := u.store.Ack(ctx, ref.Class, ref.Lo, ref.Hi); err != nil {
		u.seen.remove(ref.Tag) // not applied: a repeat may still apply it
		return fmt.Errorf("uplink: confirm %s ids %d-%d: %w", ref.Class, ref.Lo, ref.Hi, err)
	}
	u.confirmed.Add(1)
	return nil
}

// tagger computes batch tags: HMAC-SHA256 over "class|lo|hi", truncated to
// 16 bytes, base64url without padding (22 characters).
type tagger struct {
	mu  sync.Mutex
	mac hash.Hash
	buf []byte
}

func newTagger(key []byte) *tagger {
	return &tagger{mac: hmac.New(sha256.New, key), buf: make([]byte, 0, 64)}
}

func (t *tagger) sum(c gateway.Class, lo, hi int64, dst []byte) []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := append(t.buf[:0], c.String()...)
	b = append(b, '|')
	b = strconv.AppendInt(b, lo, 10)
	b = append(b, '|')
	b = strconv.AppendInt(b, hi, 10)
	t.mac.Reset()
	t.mac.Write(b)
	var sum [sha256.Size]byte
	return append(dst, t.mac.Sum(sum[:0])[:16]...)
}

// ref returns the reference of the batch of class c confirming ids lo..hi.
func (t *tagger) ref(c gateway.Class, lo, hi int64) gateway.BatchRef {
	var raw [16]byte
	return gateway.BatchRef{Class: c, Lo: lo, Hi: hi, Tag: base64.RawURLEncoding.EncodeToString(t.sum(c, lo, hi, raw[:0]))}
}

func (t *tagger) valid(ref gateway.BatchRef) bool {
	got, err := base64.RawURLEncoding.DecodeString(ref.Tag)
	if err != nil || len(got) != 16 || ref.Lo <= 0 || ref.Hi < ref.Lo {
		return false
	}
	var raw [16]byte
	return hmac.Equal(got, t.sum(ref.Class, ref.Lo, ref.Hi, raw[:0]))
}

// recent is a bounded set of the last n tags added.
type recent struct {
	mu   sync.Mutex
	set  map[string]struct{}
	ring []string
	next int
}

func newRecent(n int) *recent {
	return &recent{set: make(map[string]struct{}, n), ring: make([]string, n)}
}

// add adds tag and reports whether it was new.
func (r *recent) add(tag string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.set[tag]; ok {
		return false
	}
	if old := r.ring[r.next]; old != "" {
		delete(r.set, old)
	}
	r.ring[r.next] = tag
	r.next = (r.next + 1) % len(r.ring)
	r.set[tag] = struct{}{}
	return true
}

func (r *recent) remove(tag string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.set, tag) // its ring slot is reused in turn
}
