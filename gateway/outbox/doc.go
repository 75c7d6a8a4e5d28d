// Package outbox is Shelfgate's durable store of readings and events waiting
// for delivery: one SQLite file in WAL mode with synchronous=FULL, written by a
// single goroutine that group-commits many callers' rows in one transaction.
//
// Append returns only after the transaction holding the rows has committed,
// so an accepted row survives kill -9 and power loss. Every row gets a
// gateway-unique id (never reused: the high-water mark lives in
// sqlite_sequence, as with AUTOINCREMENT) and a gap-free per-stream sequence
// number persisted in the same transaction. Rows leave only through Ack,
// which the uplink calls after the broker's PUBACK.
package outbox
