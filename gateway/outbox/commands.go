package outbox

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/shelfgate/shelfgate/gateway"
)

// Commands are recorded so that each runs once: RecordCommand stores a
// command's request id and result in the same transaction as the records
// it appends (its reply events), and a command whose id is already recorded
// appends nothing and gets the earlier result back. The table is bounded:
// it keeps the newest commandsKept ids, and forgets ids older than
// commandsMaxAge; a command replayed after that runs again.
const (
	commandsKept   = 10_000
	commandsMaxAge = 30 * 24 * time.Hour
)

// secretKey is the meta row holding the secret (Secret).
const secretKey = "uplink_secret"

// secretBytes is the secret's length.
const secretBytes = 32

// cmdReq is a RecordCommand in the writer's queue. The writer sets dup and
// prev in each commit attempt; they are read once the Append has returned.
type cmdReq struct {
	id     string
	result []byte
	at     time.Time
	dup    bool
	prev   []byte
}

// RecordCommand records the command with request id and its result, and
// appends recs (the command's durable reply events), all in one
// transaction of the single writer, so that after a crash either both are
// there or neither is. If id is already recorded it appends nothing and
// returns the result recorded first with dup set. recs get their ID and Seq
// as with Append; the caller must not touch them until RecordCommand
// returns. An empty id is an error.
func (o *Outbox) RecordCommand(ctx context.Context, id string, result []byte, recs []gateway.Record) (prev []byte, dup bool, err error) {
	if id == "" {
		return nil, false, errors.New("outbox: record command: empty request id")
	}
	if result == nil {
		result = []byte{}
	}
	c := &cmdReq{id: id, result: result, at: time.Now()}
	if err := o.enqueue(ctx, appendReq{recs: recs, cmd: c}); err != nil {
		return nil, false, fmt.Errorf("outbox: record command %q: %w", id, err)
	}
	if c.dup {
		return c.prev, true, nil
	}
	return nil, false, nil
}

// CommandResult returns the result recorded for the command with request id,
// and whether there is one.
func (o *Outbox) CommandResult(ctx context.Context, id string) (result []byte, ok bool, err error) {
	err = o.rdb.QueryRowContext(ctx, `SELECT result FROM commands WHERE id = ?`, id).Scan(&result)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, false, nil
	case err != nil:
		return nil, false, fmt.Errorf("outbox: command result %q: %w", id, err)
	}
	if result == nil {
		result = []byte{}
	}
	return result, true, nil
}

// recordCommand inserts c into the table commands unless its id is there
// already, in which case it sets c.dup and c.prev; it reports whether the
// command is new. It prunes the table to its bounds in the same
// transaction.
func (st *txState) recordCommand(c *cmdReq) (fresh bool, err error) {
	c.dup, c.prev = false, nil
	var prev []byte
	err = st.tx.QueryRow(`SELECT result FROM commands WHERE id = ?`, c.id).Scan(&prev)
	switch {
	case err == nil:
		if prev == nil {
			prev = []byte{}
		}
		c.dup, c.prev = true, prev
		return false, nil
	case !errors.Is(err, sql.ErrNoRows):
		return false, fmt.Errorf("outbox: look up command %q: %w", c.id, err)
	}
	res, err := st.tx.Exec(`INSERT INTO commands(id, at, result) VALUES (?, ?, ?)`, c.id, c.at.UnixMicro(), c.result)
	if err != nil {
		return false, fmt.Errorf("outbox: record command %q: %w", c.id, err)
	}
	n, err := res.LastInsertId()
	if err != nil {
		return false, fmt.Errorf("outbox: record command %q: %w", c.id, err)
	}
	if _, err := st.tx.Exec(`DELETE FROM commands WHERE n <= ? OR at < ?`, n-commandsKept, c.at.Add(-commandsMaxAge).UnixMicro()); err != nil {
		return false, fmt.Errorf("outbox: prune commands: %w", err)
	}
	return true, nil
}

// Secret returns the outbox's secret: secretBytes random bytes created once
// (crypto/rand) and stored in the database, the same across reopening. The
// uplink keys the MACs of its batch ids with it, so that an ack naming a
// batch the gateway never sent is recognised.
func (o *Outbox) Secret(ctx context.Context) ([]byte, error) {
	o.secretMu.Lock()
	defer o.secretMu.Unlock()
	if o.secret != nil {
		return append([]byte(nil), o.secret...), nil
	}
	var s []byte
	err := o.rdb.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = ?`, secretKey).Scan(&s)
	if errors.Is(err, sql.ErrNoRows) {
		fresh := make([]byte, secretBytes)
		if _, err := rand.Read(fresh); err != nil {
			return nil, fmt.Errorf("outbox: make secret: %w", err)
		}
		// The writer connection, between two of the writer's commits: OR
		// IGNORE keeps a secret stored meanwhile by anyone else.
		if _, err := o.wdb.ExecContext(ctx, `INSERT OR IGNORE INTO meta(key, value) VALUES (?, ?)`, secretKey, fresh); err != nil {
			return nil, fmt.Errorf("outbox: store secret: %w", err)
		}
		err = o.wdb.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = ?`, secretKey).Scan(&s)
	}
	if err != nil {
		return nil, fmt.Errorf("outbox: read secret: %w", err)
	}
	if len(s) != secretBytes {
		return nil, fmt.Errorf("outbox: secret in %s has %d bytes, want %d", o.path, len(s), secretBytes)
	}
	o.secret = s
	return append([]byte(nil), s...), nil
}
