// Package outbox is Shelfgate's durable store of readings and events waiting
// for delivery: one SQLite file in WAL mode with synchronous=FULL, written by a
// single goroutine that group-commits many callers' rows in one transaction.
//
// Append returns only after the transaction holding the rows has committed,
// so an accepted row survives kill -9 and power loss. Every row gets a
// gateway-unique id (never reused: the high-water mark lives in
// sqlite_sequence, as with AUTOINCREMENT) and a gap-free per-stream sequence
// number persisted in the same transaction. Rows leave through Ack, which
// the uplink calls after the broker's PUBACK, or by shedding.
//
// # Bounded disk
//
// With Options.MaxBytes set, a commit that leaves more than MaxBytes of
// pages in use sheds the oldest samples (gateway.ClassSamples, the
// feedback loop's labelled windows: the lowest priority), then the oldest
// telemetry rows in the same transaction, events only when neither is left, in chunks of at most 32 Ki rows
// per commit, down to 1/32 below the budget. Ingest never waits for the
// budget. For every stream and contiguous range of sequence numbers shed,
// the same transaction appends an event record to stream "events/shed"
// (ShedStream) whose Body is the JSON of
//
//	gateway.Event{Kind: "shed", Stream: <stream shed from>, FromSeq, ToSeq,
//	              Quantity: <rows>, Detail: "max_bytes" | "disk_full", Time}
//
// so the cloud can tell sequence numbers shed from ones lost. A shed that
// continues a stream's newest notice (the next sequence numbers, same
// reason) rewrites that notice in place instead, as long as Read has not
// handed it out, so an outage leaves about one notice per stream. Notices
// are never shed themselves. Rows shed are counted per class in the table
// shed (cumulative, in Stats).
//
// A commit that fails with SQLITE_FULL (the filesystem, or max_page_count,
// which is set to MaxBytes plus headroom) is taken apart: its acks are
// applied on their own, in as many transactions as it takes for each to
// fit, then its rows are retried, as they are if the database may have
// pages for them (acks freed some, or pages are free and it was the WAL
// that had no room), and then once after shedding room for them. On a full
// filesystem the writer first gives up its reserve file
// (Options.ReserveBytes) so the WAL can be checkpointed, and holds the
// database at its size until the reserve can be written again; meanwhile
// the WAL cannot count on growing either, so a commit that finds it full
// waits for readers to leave it and the retry writes it from its start. If
// the last retry fails too, Append returns an error wrapping
// gateway.ErrDiskFull: nothing committed is lost and the caller keeps its
// rows; acks still apply, and are retried until they do.
//
// # Commands and the secret
//
// RecordCommand stores a downlink command's request id and result in the
// same transaction as the reply events it appends, so a command replayed
// after a reconnect or a restart is answered with the recorded result and
// not run twice (CommandResult looks one up). The table keeps the newest
// 10,000 ids and forgets ids older than 30 days. Secret returns 32 random
// bytes made once per database (table meta), which the uplink uses to MAC
// the batch ids it sends so that forged acks can be told apart.
//
// New databases use auto_vacuum=INCREMENTAL: after a drain the writer
// returns free pages to the filesystem in small steps, each checkpointed
// at once so the file shrinks as it goes, then truncates the WAL (also
// while the reserve is given up: that is what gives the space back) and
// writes the reserve back as soon as it fits with room to spare. The
// thresholds scale with the filesystem (see maintain).
//
// # Damage
//
// Open runs PRAGMA quick_check, and a reader runs it again every
// Options.CheckEvery. A database that fails it, is not an outbox, was
// replaced by an empty file, or lost committed ids (a truncated WAL: the
// high-water mark in the sidecar outbox.db-hwm is ahead of it) is moved
// aside with its WAL to outbox.db.corrupt-<time>. Salvage reads its
// readable rows page by page and Open re-queues them in a fresh outbox with
// their ids and sequence numbers; new ids continue above every id the
// damaged one could have used, each stream's sequence above the highest
// the file shows, and an EventQuarantined record on QuarantineStream says
// what happened and which ids were unreadable. A crash during this is
// finished at the next Open (outbox.db-quarantine). Found while running,
// damage stops Appends with ErrCorrupt until the outbox is reopened.
//
// # Logging
//
// Options.Logger gets one line when an episode of lost service starts and
// one when it ends, with counts: shedding (per class), a full filesystem
// and the space returned, the reserve given up and re-created, appends
// refused with gateway.ErrDiskFull, and damage.
package outbox
