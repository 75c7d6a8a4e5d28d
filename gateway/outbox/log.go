package outbox

import (
	"context"
	"os"
	"time"

	"github.com/shelfgate/shelfgate/gateway"
)

// Loss of service is logged once per episode, when it starts and when it
// ends, with counts (the writer keeps the state in episodes):
//
//   - shedding started / ended, per class: reason, streams, budget, bytes
//     in use, and the rows shed over the episode when it ends (after
//     shedQuiet without shedding);
//   - filesystem full (the first SQLITE_FULL of the filesystem) and space
//     returned (the reserve written back, or room again without one);
//   - reserve given up and re-created;
//   - appends refused (gateway.ErrDiskFull: the sources keep their
//     readings) and accepted again, with the rows refused.

// shedQuiet is how long a class goes without shedding before its shedding
// episode is logged as ended.
const shedQuiet = 5 * time.Second

// episodes is what the writer has logged of the episodes in progress.
type episodes struct {
	shedding   [numClasses]bool
	shedStart  [numClasses]int64 // shedN at the start
	shedSince  [numClasses]time.Time
	shedLast   [numClasses]time.Time
	full       bool // the filesystem is full
	fullSince  time.Time
	refusing   bool
	refusedAt0 int64 // fullRefused at the start
}

// noteShed logs the start of a shedding episode (writer only).
func (o *Outbox) noteShed(st *txState) {
	now := time.Now()
	for c, k := range st.shed.rows {
		if k == 0 {
			continue
		}
		e := &o.episodes
		e.shedLast[c] = now
		if e.shedding[c] {
			continue
		}
		e.shedding[c], e.shedSince[c], e.shedStart[c] = true, now, o.shedN[c].Load()-k
		streams := map[int64]bool{}
		for _, r := range st.shed.runs {
			if int(r.class) == c {
				streams[r.stream] = true
			}
		}
		var pages, free int64
		// The writer connection is still held by this commit (st.conn).
		st.conn.QueryRowContext(context.Background(), `SELECT page_count, freelist_count FROM pragma_page_count(), pragma_freelist_count()`).Scan(&pages, &free)
		o.log.Warn("outbox shedding started: oldest rows deleted undelivered",
			"class", gateway.Class(c).String(), "reason", st.shed.reason, "streams", len(streams),
			"rows", k, "budget_bytes", o.opts.MaxBytes, "used_bytes", (pages-free)*o.pageSize,
			"file_bytes", pages*o.pageSize, "available_bytes", availBytes(o.path))
	}
}

// endEpisodes logs the end of shedding episodes that have gone quiet, and
// of a full filesystem without a reserve once there is room (writer only,
// from the maintenance tick).
func (o *Outbox) endEpisodes() {
	e := &o.episodes
	for c := range e.shedding {
		if e.shedding[c] && time.Since(e.shedLast[c]) >= shedQuiet {
			e.shedding[c] = false
			o.log.Info("outbox shedding ended", "class", gateway.Class(c).String(),
				"rows_shed", o.shedN[c].Load()-e.shedStart[c], "total_shed", o.shedN[c].Load(),
				"duration", time.Since(e.shedSince[c]).Round(time.Millisecond).String(), "backlog", o.backlog.Load())
		}
	}
	if e.full && o.reserveBytes <= 0 {
		if avail := availBytes(o.path); avail >= 1<<20 {
			o.spaceReturned(avail)
		}
	}
}

// fullFilesystem logs the start of a full-filesystem episode.
func (o *Outbox) fullFilesystem(avail int64) {
	e := &o.episodes
	if e.full {
		return
	}
	e.full, e.fullSince = true, time.Now()
	o.log.Warn("outbox filesystem full: acks and shedding make room, the database is held at its size",
		"available_bytes", avail, "backlog", o.backlog.Load(), "reserve_bytes", o.reserveBytes)
}

// spaceReturned logs the end of a full-filesystem episode.
func (o *Outbox) spaceReturned(avail int64) {
	e := &o.episodes
	if !e.full {
		return
	}
	e.full = false
	var wal int64
	if fi, err := os.Stat(o.path + "-wal"); err == nil {
		wal = fi.Size()
	}
	var file int64
	if fi, err := os.Stat(o.path); err == nil {
		file = fi.Size()
	}
	o.log.Info("outbox space returned", "available_bytes", avail, "file_bytes", file, "wal_bytes", wal,
		"backlog", o.backlog.Load(), "duration", time.Since(e.fullSince).Round(time.Millisecond).String())
}

// refused logs the start of an episode of appends refused with
// gateway.ErrDiskFull; accepted its end (writer only).
func (o *Outbox) refused(rows int) {
	e := &o.episodes
	if e.refusing {
		return
	}
	e.refusing, e.refusedAt0 = true, o.fullRefused.Load()-int64(rows)
	o.log.Error("outbox refusing appends: disk full, the sources keep their readings",
		"rows", rows, "available_bytes", availBytes(o.path), "backlog", o.backlog.Load())
}

func (o *Outbox) accepted() {
	e := &o.episodes
	if !e.refusing {
		return
	}
	e.refusing = false
	o.log.Info("outbox accepting appends again", "rows_refused", o.fullRefused.Load()-e.refusedAt0)
}
