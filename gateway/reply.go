package gateway

// EventCommandReply is the kind of the durable event that answers a
// downlink command: its body is the reply (id, name, ok, error, result),
// written to the outbox in the same transaction that records the command's
// id, so the answer survives restarts and a redelivered command is answered
// from the record instead of being run again.
const EventCommandReply EventKind = "command_reply"

// StreamCommandReplies is the event stream of command replies.
const StreamCommandReplies StreamID = "events/commands"
