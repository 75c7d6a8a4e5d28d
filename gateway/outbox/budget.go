package outbox

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/shelfgate/shelfgate/gateway"
)

// ShedStream is the stream of the EventShed records the outbox writes when
// it sheds rows undelivered.
const ShedStream gateway.StreamID = "events/shed"

// Reasons given in the Detail of shed events.
const (
	reasonBudget = "max_bytes" // the byte budget (Options.MaxBytes) was exceeded
	reasonFull   = "disk_full" // the database or filesystem was full
)

const (
	// shedMinRows and shedMaxRows bound how many rows one commit sheds:
	// enough that a shed's notices (one per stream and range) are a small
	// fraction of what it frees, few enough that the commit stays short.
	shedMinRows = 1024
	shedMaxRows = 32 << 10
	// vacuumMinPages is the freelist size below which no vacuum runs;
	// vacuumStep is the most pages one incremental_vacuum returns.
	vacuumMinPages = 1024
	vacuumStep     = 2048
	// walTruncateBytes: a WAL larger than this is truncated once the backlog
	// has drained or after a vacuum; walMaxBytes: larger than this, always.
	walTruncateBytes = 8 << 20
	walMaxBytes      = 64 << 20
	// maintIdle is the writer's maintenance period; maintBusy the period
	// while a vacuum is in progress.
	maintIdle = 250 * time.Millisecond
	maintBusy = 10 * time.Millisecond
)

// noPageLimit is SQLite's largest max_page_count.
const noPageLimit = 0xfffffffe

// headroom is what max_page_count allows above the byte budget: a commit
// may overshoot the budget before it sheds, and a shed must still fit.
func headroom(maxBytes int64) int64 {
	return min(max(maxBytes/8, 1<<20), 256<<20)
}

// shedRun is one contiguous range of sequence numbers shed from one stream.
type shedRun struct {
	stream   int64
	class    gateway.Class
	from, to uint64
	n        int64
}

// shedResult is what one commit shed.
type shedResult struct {
	rows   [numClasses]int64 // rows shed per class
	hi     [numClasses]int64 // highest id shed per class: every row of the class at or below it is gone, but notices
	runs   []shedRun
	reason string
}

// maintState is the writer's bookkeeping for vacuum and checkpoints.
type maintState struct {
	deleted  bool // rows were deleted since the last TRUNCATE checkpoint
	vacuumed bool // pages were vacuumed since the last TRUNCATE checkpoint
}

// budget sheds samples, then telemetry (then events) when the rows in use exceed
// MaxBytes, down to a little below it, at most shedMaxRows per commit: one
// pragma query per commit, no per-row work.
func (o *Outbox) budget(st *txState) error {
	var pages, free int64
	if err := st.tx.Stmt(st.o.pagesStmt).QueryRow().Scan(&pages, &free); err != nil {
		return fmt.Errorf("outbox: measure size: %w", err)
	}
	used := (pages - free) * o.pageSize
	if used <= o.opts.MaxBytes {
		return nil
	}
	low := o.opts.MaxBytes - o.opts.MaxBytes/32
	rows := o.backlog.Load() + st.added - sum(st.deleted[:]) - sum(st.shed.rows[:])
	perRow := max(used/max(rows, 1), 1)
	want := min(max((used-low+perRow-1)/perRow, shedMinRows), shedMaxRows)
	return o.shed(st, want, true, reasonBudget)
}

// shed deletes up to want of the oldest samples, then of the oldest
// telemetry rows and, if events is set and neither is left, the oldest
// events, recording per stream the
// contiguous ranges of sequence numbers deleted. Shed notices themselves
// (ShedStream) are never shed: they are the only account of what was, and
// collect would report the rows they cover as missing.
//
// Every query starts above shedFloor[c], the highest id shed of the class
// so far: below it only rows shedding skips (events under telemetry
// shedding, notices) are left, and a 72 h outage showed scans past them
// growing to half the writer's time.
func (o *Outbox) shed(st *txState, want int64, events bool, reason string) error {
	classes := []gateway.Class{gateway.ClassSamples, gateway.ClassTelemetry}
	if events {
		classes = append(classes, gateway.ClassEvent)
	}
	notices := int64(-1) // the stream id of ShedStream, if it exists
	if s, ok := o.byName[ShedStream]; ok {
		notices = s.id
	}
	for _, c := range classes {
		if want <= 0 {
			break
		}
		// The class is a literal so the planner can use the partial index
		// on events.
		where := fmt.Sprintf(`class = %d AND id > %d AND stream != %d`, c, o.shedFloor[c], notices)
		var hi int64
		err := st.tx.QueryRow(`SELECT id FROM outbox WHERE `+where+` ORDER BY id LIMIT 1 OFFSET ?`, want-1).Scan(&hi)
		if errors.Is(err, sql.ErrNoRows) {
			err = st.tx.QueryRow(`SELECT id FROM outbox WHERE ` + where + ` ORDER BY id DESC LIMIT 1`).Scan(&hi)
			if errors.Is(err, sql.ErrNoRows) {
				continue // nothing of this class
			}
		}
		if err != nil {
			return fmt.Errorf("outbox: shed %s: %w", c, err)
		}
		// Contiguous runs of sequence numbers per stream (gaps and islands:
		// seq minus its rank is constant within a run).
		rows, err := st.tx.Query(fmt.Sprintf(`
SELECT stream, min(seq), max(seq), count(*) FROM (
	SELECT stream, seq, seq - row_number() OVER (PARTITION BY stream ORDER BY id) AS g
	FROM outbox WHERE %s AND id <= ?
) GROUP BY stream, g ORDER BY stream, 2`, where), hi)
		if err != nil {
			return fmt.Errorf("outbox: shed %s: %w", c, err)
		}
		var total int64
		for rows.Next() {
			r := shedRun{class: c}
			if err := rows.Scan(&r.stream, &r.from, &r.to, &r.n); err != nil {
				rows.Close()
				return fmt.Errorf("outbox: shed %s: %w", c, err)
			}
			total += r.n
			st.shed.runs = append(st.shed.runs, r)
		}
		if err := rows.Close(); err != nil {
			return fmt.Errorf("outbox: shed %s: %w", c, err)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("outbox: shed %s: %w", c, err)
		}
		res, err := st.tx.Exec(`DELETE FROM outbox WHERE `+where+` AND id <= ?`, hi)
		if err != nil {
			return fmt.Errorf("outbox: shed %s up to id %d: %w", c, hi, err)
		}
		k, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("outbox: shed %s: %w", c, err)
		}
		if k != total {
			return fmt.Errorf("outbox: shed %s up to id %d: deleted %d rows, counted %d", c, hi, k, total)
		}
		st.shed.rows[c] += k
		st.shed.hi[c] = max(st.shed.hi[c], hi)
		st.shed.reason = reason
		want -= k
	}
	return nil
}

// noticeRow is the newest shed notice written for a stream.
type noticeRow struct {
	id       int64
	seq      uint64
	from, to uint64
	n        int64
	reason   string
}

// shedNotices reports st's shed runs on ShedStream in the same
// transaction. A run that continues the stream's newest notice (the next
// sequence numbers, for the same reason) extends that notice in place
// while no reader has been handed it, so a long outage leaves one notice
// per stream rather than one per commit that shed: the 72 h case wrote
// 17,000 notices in 12 simulated hours, and on an 8 MiB budget they took
// it over. Otherwise it inserts a new notice. It returns the new notices;
// st.noticeUpdates holds the extended ones.
func (o *Outbox) shedNotices(st *txState) ([]gateway.Record, error) {
	if len(st.shed.runs) == 0 {
		return nil, nil
	}
	now := time.Now()
	var notices []gateway.Record
	for _, r := range st.shed.runs {
		name := gateway.StreamID(fmt.Sprintf("unknown/%d", r.stream))
		if v, ok := o.names.Load(r.stream); ok {
			name = v.(*stream).name
		}
		own := noticeRow{from: r.from, to: r.to, n: r.n, reason: st.shed.reason}
		last, ok := st.lastNotice[r.stream]
		if !ok {
			last, ok = o.lastNotice[r.stream]
		}
		if ok && last.to+1 == r.from && last.reason == own.reason {
			if !st.handLocked {
				// Held until the commit is published: Read cannot hand
				// the notice out between this check and then.
				o.handMu.Lock()
				st.handLocked = true
			}
			if last.id > o.handed {
				row := last
				row.to, row.n = r.to, last.n+r.n
				rec, err := noticeRecord(name, row, now)
				if err != nil {
					return nil, err
				}
				// A notice of this transaction may still be buffered.
				if err := st.flush(); err != nil {
					return nil, err
				}
				res, err := st.tx.Exec(`UPDATE outbox SET body = ?, value = ?, ts = ? WHERE id = ? AND class = 1`, rec.Body, rec.Value, now.UnixMicro(), row.id)
				if err != nil {
					return nil, fmt.Errorf("outbox: extend shed notice %d: %w", row.id, err)
				}
				if k, _ := res.RowsAffected(); k == 1 {
					rec.ID, rec.Seq = row.id, row.seq
					st.noticeUpdates = append(st.noticeUpdates, rec)
					st.lastNotice[r.stream] = row
					continue
				}
				// Gone (delivered after all): the run gets its own notice.
			}
		}
		rec, err := noticeRecord(name, own, now)
		if err != nil {
			return nil, err
		}
		notices = append(notices, rec)
		n := &notices[len(notices)-1]
		if err := st.insert(n); err != nil {
			return nil, err
		}
		own.id, own.seq = n.ID, n.Seq
		st.lastNotice[r.stream] = own
	}
	if err := st.flush(); err != nil {
		return nil, err
	}
	return notices, nil
}

// noticeRecord is the ShedStream record reporting row of stream name.
func noticeRecord(name gateway.StreamID, row noticeRow, now time.Time) (gateway.Record, error) {
	body, err := json.Marshal(gateway.Event{
		Kind: gateway.EventShed, Stream: name, FromSeq: row.from, ToSeq: row.to,
		Quantity: int(row.n), Detail: row.reason, Time: now,
	})
	if err != nil {
		return gateway.Record{}, fmt.Errorf("outbox: shed notice: %w", err)
	}
	return gateway.Record{Class: gateway.ClassEvent, Stream: ShedStream, Time: now, Value: float64(row.n), Body: body}, nil
}

// maintain runs one step of housekeeping in the writer: an incremental
// vacuum step while the freelist is large (after a drain), and a TRUNCATE
// checkpoint once the backlog has drained or the WAL grew large; then, if
// the reserve was given up, an attempt to write it back. It reports
// whether more steps are due soon. Failures are left to the next step.
//
// The thresholds scale with the filesystem: a vacuum starts at
// vacuumMinPages free pages, or at a sixty-fourth of the filesystem's
// pages if that is fewer (at least 16), and at any 16 free pages while the
// filesystem has less room than the reserve; the WAL is truncated after a
// drain once larger than walTruncateBytes or a thirty-second of the
// filesystem. A drain is the backlog reaching zero, or half the file's
// pages free after deletes. Truncating the WAL no longer waits for the
// reserve: after a full disk it is what gives the space back, and the
// reserve is written again right after it.
func (o *Outbox) maintain() (more bool) {
	var pages, free int64
	if err := o.wdb.QueryRow(`SELECT page_count, freelist_count FROM pragma_page_count(), pragma_freelist_count()`).Scan(&pages, &free); err != nil {
		return false
	}
	avail := availBytes(o.path)
	tight := avail >= 0 && avail < max(o.reserveBytes, 1<<20)
	minFree := o.vacuumMin(tight)
	if o.incremental && free >= minFree && (free*4 >= pages || tight) {
		// incremental_vacuum frees one page per step of the statement, so
		// it is run as a query and read to the end.
		// A step's moved pages go through the WAL: the step is sized to a
		// quarter of the room there is on the filesystem, and a step so
		// limited (or any on a tight filesystem) is checkpointed at once,
		// so the file shrinks as it goes and the WAL reuses its blocks.
		step := min(free, vacuumStep)
		if avail >= 0 {
			step = min(step, max(16, avail/o.pageSize/4))
		}
		rows, err := o.wdb.Query(fmt.Sprintf(`PRAGMA incremental_vacuum(%d)`, step))
		if err != nil {
			return false
		}
		for rows.Next() {
		}
		rows.Close()
		var after int64
		if err := o.wdb.QueryRow(`SELECT freelist_count FROM pragma_freelist_count()`).Scan(&after); err != nil {
			return false
		}
		if after < free {
			o.vacuumed.Add(free - after)
			o.maint.vacuumed = true
		}
		if fi, err := os.Stat(o.path + "-wal"); err == nil && (tight || step < min(free, vacuumStep) || fi.Size() > o.walUsual) {
			o.checkpoint(checkpointTruncate)
		}
		if after < free && after >= minFree {
			return true
		}
	}
	fi, err := os.Stat(o.path + "-wal")
	if err != nil {
		return false
	}
	wal := fi.Size()
	drained := o.maint.deleted && (o.backlog.Load() == 0 || free*2 >= pages)
	truncate := wal > walMaxBytes || (wal > 0 && o.maint.vacuumed) ||
		(drained && (wal > o.walTruncate() || (tight && wal > 0)))
	if !truncate {
		return false
	}
	if o.reserveBytes > 0 && !o.reserved.Load() && !drained && !o.maint.vacuumed {
		// Still full and nothing freed: a truncated WAL would have to
		// grow again.
		return false
	}
	if o.checkpoint(checkpointTruncate) {
		o.maint.deleted, o.maint.vacuumed = false, false
		if !o.reserved.Load() {
			o.reserveTry = time.Time{} // now, not after reserveRetry
			o.restoreReserve()
		}
	}
	return false
}

// vacuumMin is the free page count at which maintain vacuums.
func (o *Outbox) vacuumMin(tight bool) int64 {
	if tight {
		return 16
	}
	n := int64(vacuumMinPages)
	if o.fsBytes > 0 {
		n = min(n, max(o.fsBytes/o.pageSize/64, 16))
	}
	return n
}

// walTruncate is the WAL size above which maintain truncates it after a
// drain.
func (o *Outbox) walTruncate() int64 {
	if o.fsBytes > 0 {
		return min(walTruncateBytes, max(o.fsBytes/32, 64<<10))
	}
	return walTruncateBytes
}

// Checkpoint modes (PRAGMA wal_checkpoint).
const (
	// checkpointTruncate copies the WAL into the database and truncates it,
	// which is also when a vacuumed database file shrinks.
	checkpointTruncate = "TRUNCATE"
	// checkpointRestart copies the WAL into the database and waits until no
	// reader uses it, so the next transaction writes the WAL from its start;
	// the file keeps its size.
	checkpointRestart = "RESTART"
)

// checkpoint checkpoints the WAL in mode (checkpointTruncate or
// checkpointRestart). It reports whether the checkpoint completed (no
// reader held it back).
func (o *Outbox) checkpoint(mode string) bool {
	var busy, log, done int64
	if err := o.wdb.QueryRow(`PRAGMA wal_checkpoint(`+mode+`)`).Scan(&busy, &log, &done); err != nil {
		return false
	}
	return busy == 0
}
