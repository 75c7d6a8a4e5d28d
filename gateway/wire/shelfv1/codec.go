package shelfv1

import (
	"time"

	"github.com/shelfgate/shelfgate/gateway"
)

// Codec is the v1 protocol as the uplink's lanes use it (it satisfies
// gateway/uplink.Codec).
type Codec struct {
	Topics Topics
}

// BatchTopic is the topic of a class's batches.
func (c Codec) BatchTopic(cl gateway.Class) string { return c.Topics.For(cl) }

// AppendBatch appends a batch of recs (all of ref.Class) to buf.
func (c Codec) AppendBatch(buf []byte, ref gateway.BatchRef, sent time.Time, recs []gateway.Record) []byte {
	return AppendBatch(buf, c.Topics.Site, c.Topics.Gateway, ref, sent, recs)
}

// StatusTopic is the retained status topic (birth, last will, offline).
func (c Codec) StatusTopic() string { return c.Topics.Status() }

// Status is the retained status body; see Topics.StatusBody.
func (c Codec) Status(state, reason string, fields map[string]any, now time.Time) []byte {
	return c.Topics.StatusBody(state, reason, fields, now)
}
