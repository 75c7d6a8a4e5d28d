package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/shelfgate/shelfgate/gateway"
	"github.com/shelfgate/shelfgate/gateway/downlink"
	"github.com/shelfgate/shelfgate/gateway/outbox"
	"github.com/shelfgate/shelfgate/gateway/uplink"
	"github.com/shelfgate/shelfgate/gateway/wire/shelfv1"
)

// Rejection reasons of the command handler (besides downlink's own).
const (
	reasonUnknownCommand = "unknown_command"
	reasonCommandFailed  = "command_failed"
)

// Queue and payload bounds of the two downlink handlers.
const (
	commandQueue = 64
	ackQueue     = 1024
)

// commandStore is what the command handler needs of the outbox: a
// command's id and result are recorded in one transaction with its effect
// and its durable reply (outbox.RecordCommand).
type commandStore interface {
	CommandResult(ctx context.Context, id string) (result []byte, ok bool, err error)
	RecordCommand(ctx context.Context, id string, result []byte, recs []gateway.Record) (prev []byte, dup bool, err error)
}

// confirmer applies consumer acks (uplink.Uplink.Confirm).
type confirmer interface {
	Confirm(ctx context.Context, ref gateway.BatchRef) error
}

// publisher sends best-effort messages (uplink.Uplink.Publish).
type publisher interface {
	Publish(topic string, payload []byte) error
}

var (
	_ commandStore = (*outbox.Outbox)(nil)
	_ confirmer    = (*uplink.Uplink)(nil)
	_ publisher    = (*uplink.Uplink)(nil)
)

// commandFunc runs one command with its args (nil when none). Its result
// (any JSON value) is the reply's result; effects are records appended in
// the same transaction that records the command, so a command's effect and
// its "done" can never be separated by a crash.
type commandFunc func(ctx context.Context, args json.RawMessage) (result any, effects []gateway.Record, err error)

// builtinCommands are the commands every gateway answers: ping (reply
// "pong") and status (the birth fields).
func builtinCommands(birth func() map[string]any) map[string]commandFunc {
	return map[string]commandFunc{
		"ping": func(context.Context, json.RawMessage) (any, []gateway.Record, error) {
			return "pong", nil, nil
		},
		"status": func(context.Context, json.RawMessage) (any, []gateway.Record, error) {
			if birth == nil {
				return map[string]any{}, nil, nil
			}
			return birth(), nil, nil
		},
	}
}

// registerDownlink registers the gateway's downlink handlers with r:
// commands on .../cmd/+ and, with consumer acks, acks on .../ack.
func registerDownlink(r *downlink.Router, topics shelfv1.Topics, store commandStore, up interface {
	confirmer
	publisher
}, cmds map[string]commandFunc, consumerAcks bool, log *slog.Logger) error {
	ch := &commandHandler{topics: topics, store: store, reply: up, run: cmds, now: time.Now, log: log}
	if err := r.Handle(topics.Commands(), ch, downlink.Options{Name: "commands", QueueLen: commandQueue, MaxPayload: shelfv1.MaxCommandBytes}); err != nil {
		return err
	}
	if consumerAcks {
		if err := r.Handle(topics.Ack(), ackHandler(up), downlink.Options{Name: "acks", QueueLen: ackQueue, MaxPayload: shelfv1.MaxAckBytes}); err != nil {
			return err
		}
	}
	return nil
}

// ackHandler applies consumer acks; a malformed one, or one the uplink
// rejects (forged, replayed), is a counted, logged rejection that deletes
// nothing.
func ackHandler(c confirmer) downlink.Handler {
	return downlink.HandlerFunc(func(ctx context.Context, m downlink.Message) error {
		ref, err := shelfv1.DecodeAck(m.Payload)
		if err != nil {
			return downlink.Reject(downlink.ReasonMalformed, err)
		}
		return c.Confirm(ctx, ref)
	})
}

// commandHandler runs each command id once. The reply is recorded with the
// id in the outbox (a command_reply event, delivered like any event) and
// also published best effort on .../cmd/<name>/reply; a command whose id
// was recorded before is answered with the recorded reply and not run.
type commandHandler struct {
	topics shelfv1.Topics
	store  commandStore
	reply  publisher
	run    map[string]commandFunc
	now    func() time.Time
	log    *slog.Logger
}

func (h *commandHandler) Handle(ctx context.Context, m downlink.Message) error {
	name, ok := h.topics.CommandName(m.Topic)
	if !ok {
		return downlink.Reject(downlink.ReasonMalformed, fmt.Errorf("topic %q is not a command topic", m.Topic))
	}
	cmd, err := shelfv1.DecodeCommand(m.Payload)
	if err != nil {
		// No usable id: nothing to record the answer under. Say why, best effort.
		r, _ := shelfv1.NewReply("", name, nil, err, h.now())
		h.publish(name, r.Encode())
		return downlink.Reject(downlink.ReasonMalformed, err)
	}
	h.log.Debug("command received", "command", name, "id", cmd.ID, "args_bytes", len(cmd.Args))
	prev, done, err := h.store.CommandResult(ctx, cmd.ID)
	if err != nil {
		return fmt.Errorf("command %s %s: %w", name, cmd.ID, err)
	}
	if done {
		h.log.Info("command answered from its record, not run again", "command", name, "id", cmd.ID)
		h.publish(name, prev)
		return nil
	}
	fn, known := h.run[name]
	var result any
	var effects []gateway.Record
	var runErr error
	if known {
		result, effects, runErr = fn(ctx, cmd.Args)
	} else {
		runErr = fmt.Errorf("unknown command %q", name)
	}
	now := h.now()
	r, err := shelfv1.NewReply(cmd.ID, name, result, runErr, now)
	if err != nil { // a result that is not JSON: answer with that error
		effects = nil
		runErr = err
		r, _ = shelfv1.NewReply(cmd.ID, name, nil, err, now)
	}
	p := r.Encode()
	recs := append(effects, shelfv1.ReplyRecord(p, now))
	prev, dup, err := h.store.RecordCommand(ctx, cmd.ID, p, recs)
	if err != nil {
		return fmt.Errorf("command %s %s: %w", name, cmd.ID, err)
	}
	if dup { // recorded meanwhile (cannot happen with one handler goroutine, but cheap)
		p = prev
	}
	h.publish(name, p)
	switch {
	case !known:
		return downlink.Reject(reasonUnknownCommand, runErr)
	case runErr != nil:
		return downlink.Reject(reasonCommandFailed, runErr)
	}
	return nil
}

// publish sends the best-effort copy of a reply; between sessions there is
// none (the durable reply is in the outbox).
func (h *commandHandler) publish(name string, p []byte) {
	if err := h.reply.Publish(h.topics.Reply(name), p); err != nil && !errors.Is(err, uplink.ErrNotConnected) {
		h.log.Warn("command reply", "command", name, "err", err)
	}
}
