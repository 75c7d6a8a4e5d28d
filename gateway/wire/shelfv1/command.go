package shelfv1

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/shelfgate/shelfgate/gateway"
)

// MaxCommandBytes bounds a downlink command payload.
const MaxCommandBytes = 64 << 10

// MaxCommandID bounds a command's request id.
const MaxCommandID = 128

// ErrBadCommand is returned by DecodeCommand for a payload that is not a
// valid command.
var ErrBadCommand = errors.New("shelfv1: bad command")

// Command is the JSON body of a downlink command on
// shelfgate/v1/<site>/<gateway>/cmd/<name>:
//
//	{"id":"req-0001","args":{...}}
//
// id is required: 1-128 printable ASCII characters without spaces, unique
// per request. The gateway runs a command id once; a command with an id it
// has seen before (a broker redelivery, a cloud retry) is answered with the
// recorded reply and not run again. args is optional and command-specific.
type Command struct {
	ID   string          `json:"id"`
	Args json.RawMessage `json:"args,omitempty"`
}

// DecodeCommand parses and checks a command body.
func DecodeCommand(p []byte) (Command, error) {
	if len(p) > MaxCommandBytes {
		return Command{}, fmt.Errorf("%w: %d bytes exceeds the limit of %d", ErrBadCommand, len(p), MaxCommandBytes)
	}
	if t := bytes.TrimSpace(p); len(t) == 0 || t[0] != '{' {
		return Command{}, fmt.Errorf("%w: payload is not a JSON object", ErrBadCommand)
	}
	var c Command
	dec := json.NewDecoder(bytes.NewReader(p))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return Command{}, fmt.Errorf("%w: %v", ErrBadCommand, err)
	}
	if dec.More() {
		return Command{}, fmt.Errorf("%w: data after the object", ErrBadCommand)
	}
	if c.ID == "" {
		return Command{}, fmt.Errorf("%w: id is missing or empty", ErrBadCommand)
	}
	if len(c.ID) > MaxCommandID {
		return Command{}, fmt.Errorf("%w: id of %d bytes exceeds %d", ErrBadCommand, len(c.ID), MaxCommandID)
	}
	for i := 0; i < len(c.ID); i++ {
		if b := c.ID[i]; b <= ' ' || b > '~' {
			return Command{}, fmt.Errorf("%w: id %q has byte 0x%02x at %d; use printable ASCII without spaces", ErrBadCommand, c.ID, b, i)
		}
	}
	if len(c.Args) > 0 && bytes.Equal(c.Args, []byte("null")) {
		c.Args = nil
	}
	return c, nil
}

// Reply answers one command. It is the body of a durable command_reply
// event on the events topic (stream "events/commands") and of the
// best-effort copy on .../cmd/<name>/reply:
//
//	{"kind":"command_reply","id":"req-0001","name":"ping","ok":true,"result":"pong","time":"..."}
//	{"kind":"command_reply","id":"req-0002","name":"reboot","ok":false,"error":"unknown command \"reboot\"","time":"..."}
//
// id is empty only in the best-effort reply to a command that had no
// usable id (such a command is not run and not recorded).
type Reply struct {
	Kind   gateway.EventKind `json:"kind"`
	ID     string            `json:"id"`
	Name   string            `json:"name"`
	OK     bool              `json:"ok"`
	Error  string            `json:"error,omitempty"`
	Result json.RawMessage   `json:"result,omitempty"`
	Time   time.Time         `json:"time"`
}

// NewReply returns the reply to command id name: ok with result (any JSON
// value; nil for none) when err is nil, else the error.
func NewReply(id, name string, result any, err error, now time.Time) (Reply, error) {
	r := Reply{Kind: gateway.EventCommandReply, ID: id, Name: name, OK: err == nil, Time: now.UTC()}
	if err != nil {
		r.Error = err.Error()
		return r, nil
	}
	if result != nil {
		p, err := json.Marshal(result)
		if err != nil {
			return Reply{}, fmt.Errorf("command %s %s: result: %w", name, id, err)
		}
		r.Result = p
	}
	return r, nil
}

// Encode returns the JSON form of r.
func (r Reply) Encode() []byte {
	p, err := json.Marshal(r)
	if err != nil { // only an invalid Result can fail; report that instead
		p, _ = json.Marshal(Reply{Kind: r.Kind, ID: r.ID, Name: r.Name, Error: "result is not valid JSON", Time: r.Time})
	}
	return p
}

// ReplyRecord returns the durable event record carrying the encoded reply p.
func ReplyRecord(p []byte, now time.Time) gateway.Record {
	return gateway.Record{Class: gateway.ClassEvent, Stream: gateway.StreamCommandReplies, Time: now, Body: p}
}

// DecodeReply parses a reply (for consumers and tests).
func DecodeReply(p []byte) (Reply, error) {
	var r Reply
	dec := json.NewDecoder(bytes.NewReader(p))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return Reply{}, fmt.Errorf("shelfv1: bad reply: %w", err)
	}
	if r.Kind != gateway.EventCommandReply {
		return Reply{}, fmt.Errorf("shelfv1: bad reply: kind %q, want %q", r.Kind, gateway.EventCommandReply)
	}
	return r, nil
}
