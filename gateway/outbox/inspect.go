package outbox

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/shelfgate/shelfgate/gateway"
)

// Report is what Inspect finds in an outbox file.
type Report struct {
	Path       string
	FileBytes  int64
	WALBytes   int64
	PageSize   int64
	Pages      int64
	FreePages  int64
	HighWater  int64 // sqlite_sequence
	MarkHigh   int64 // the sidecar's committed mark (0 if none)
	MarkOK     bool  // the sidecar is readable
	Integrity  string
	Backlog    []StreamBacklog
	OldestTime time.Time         // oldest unsent row (zero if none)
	Shed       [numClasses]int64 // rows shed per class over the database's life
	Commands   int64             // command ids recorded
}

// StreamBacklog is the backlog of one stream and class.
type StreamBacklog struct {
	Stream         gateway.StreamID
	Class          gateway.Class
	Rows           int64
	FromSeq, ToSeq uint64
	Oldest         time.Time
}

// Inspect reads the outbox at path without disturbing a gateway running on
// it: a read-only connection that sees the last committed state through
// the WAL and never checkpoints or writes.
func Inspect(ctx context.Context, path string) (*Report, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("outbox: inspect %s: %w", path, err)
	}
	db, err := sql.Open("sqlite3", "file:"+escapePath(path)+"?mode=ro&_busy_timeout=5000")
	if err != nil {
		return nil, fmt.Errorf("outbox: inspect %s: %w", path, err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	r := &Report{Path: path}
	if fi, err := os.Stat(path + "-wal"); err == nil {
		r.WALBytes = fi.Size()
	}
	if fi, err := os.Stat(path); err == nil {
		r.FileBytes = fi.Size()
	}
	if m, ok, _ := readMark(path); ok {
		r.MarkHigh, r.MarkOK = m.committed, true
	}
	// One read transaction: every figure is of the same commit.
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("outbox: inspect %s: %w", path, explainErrno(path, err))
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `BEGIN`); err != nil {
		return nil, fmt.Errorf("outbox: inspect %s: %w", path, err)
	}
	defer conn.ExecContext(context.Background(), `ROLLBACK`)
	if err := conn.QueryRowContext(ctx, `PRAGMA quick_check(1)`).Scan(&r.Integrity); err != nil {
		r.Integrity = err.Error()
		return r, fmt.Errorf("outbox: inspect %s: %w: %v", path, ErrCorrupt, err)
	}
	if err := conn.QueryRowContext(ctx, `SELECT page_size, page_count, freelist_count FROM pragma_page_size(), pragma_page_count(), pragma_freelist_count()`).Scan(&r.PageSize, &r.Pages, &r.FreePages); err != nil {
		return r, fmt.Errorf("outbox: inspect %s: %w", path, err)
	}
	var hw sql.NullInt64
	if err := conn.QueryRowContext(ctx, `SELECT seq FROM sqlite_sequence WHERE name = 'outbox'`).Scan(&hw); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return r, fmt.Errorf("outbox: inspect %s: not an outbox: %w", path, err)
	}
	r.HighWater = hw.Int64
	rows, err := conn.QueryContext(ctx, `SELECT coalesce(s.name, 'unknown/' || o.stream), o.class, count(*), min(o.seq), max(o.seq), min(o.ts)
		FROM outbox o LEFT JOIN streams s ON s.id = o.stream GROUP BY o.stream, o.class ORDER BY 1, 2`)
	if err != nil {
		return r, fmt.Errorf("outbox: inspect %s: not an outbox: %w", path, err)
	}
	for rows.Next() {
		var b StreamBacklog
		var ts int64
		if err := rows.Scan(&b.Stream, &b.Class, &b.Rows, &b.FromSeq, &b.ToSeq, &ts); err != nil {
			rows.Close()
			return r, fmt.Errorf("outbox: inspect %s: %w", path, err)
		}
		b.Oldest = time.UnixMicro(ts)
		if r.OldestTime.IsZero() || b.Oldest.Before(r.OldestTime) {
			r.OldestTime = b.Oldest
		}
		r.Backlog = append(r.Backlog, b)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return r, fmt.Errorf("outbox: inspect %s: %w", path, err)
	}
	if srows, err := conn.QueryContext(ctx, `SELECT class, rows FROM shed`); err == nil {
		for srows.Next() {
			var c, n int64
			if srows.Scan(&c, &n) == nil && c >= 0 && c < numClasses {
				r.Shed[c] = n
			}
		}
		srows.Close()
	}
	conn.QueryRowContext(ctx, `SELECT count(*) FROM commands`).Scan(&r.Commands)
	return r, nil
}
