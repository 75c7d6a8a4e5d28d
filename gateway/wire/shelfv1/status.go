package shelfv1

import (
	"encoding/json"
	"time"
)

// Status states.
const (
	StateOnline  = "online"
	StateOffline = "offline"
)

// StatusLastSeq is the key of the retained status message's map from
// stream to last committed sequence number. Read before the status's
// "backlog": when backlog is 0, every sequence number up to it has left the
// gateway, so a consumer that did not receive one has lost it (loss at a
// stream's tail, which sequence gaps alone cannot show).
const StatusLastSeq = "last_seq"

// StatusBody returns a retained status body for t's gateway: fields (the
// birth fields: version, backlog, last_seq, ...), then "state", "reason"
// (omitted when empty), "gateway", "site" and "time" (RFC 3339, UTC; omitted
// when now is zero, as in the last will, which is fixed at connect time).
// Keys are sorted, so equal inputs give equal bytes.
//
//	birth:   {"backlog":0,...,"gateway":"gw-1","site":"site-1","state":"online","time":"..."}
//	LWT:     {"gateway":"gw-1","site":"site-1","state":"offline"}
//	offline: {...,"reason":"shutdown","state":"offline","time":"..."}
func (t Topics) StatusBody(state, reason string, fields map[string]any, now time.Time) []byte {
	m := make(map[string]any, len(fields)+5)
	for k, v := range fields {
		m[k] = v
	}
	m["state"] = state
	if reason != "" {
		m["reason"] = reason
	}
	m["gateway"] = t.Gateway
	m["site"] = t.Site
	if !now.IsZero() {
		m["time"] = now.UTC().Format(time.RFC3339Nano)
	}
	p, err := json.Marshal(m)
	if err != nil { // a field that cannot be marshalled: keep the status itself
		p, _ = json.Marshal(map[string]any{"state": state, "reason": reason, "gateway": t.Gateway, "site": t.Site, "error": err.Error()})
	}
	return p
}
