package outbox

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/shelfgate/shelfgate/gateway"
)

// eagerRows is the pending row count at which the writer commits without
// waiting out MaxDelay.
const eagerRows = 1024

// writer is the only goroutine that writes to the database. It gathers
// appends and acks for up to MaxDelay or MaxBatchRows and commits them in one
// transaction.
func (o *Outbox) writer() {
	defer close(o.stopped)
	var (
		pending []appendReq
		acks    []ackReq
		rows    int
		timer   = time.NewTimer(time.Hour)
		armed   bool
	)
	timer.Stop()
	maint := time.NewTimer(maintIdle)
	defer maint.Stop()
	flush := func() {
		if len(pending) == 0 && len(acks) == 0 {
			return
		}
		var keep []ackReq
		err := o.commit(pending, acks, commitNormal)
		if IsFull(err) {
			o.fullCommits.Add(1)
			// Make room by policy and try once more (see onFull for a full
			// filesystem).
			o.onFull()
			err = o.commit(pending, acks, commitAfterFull)
			if IsFull(err) {
				o.fullCommits.Add(1)
				o.fullRefused.Add(int64(rows))
				// Acks are deletes: they must still go through, and if even
				// they cannot, they wait for the next commit.
				if len(acks) > 0 {
					if aerr := o.commit(nil, acks, commitDeletesOnly); aerr != nil {
						keep = acks
					}
				}
				err = fmt.Errorf("outbox: %d rows refused: %w: %w", rows, gateway.ErrDiskFull, err)
			}
		}
		for _, p := range pending {
			p.done <- err
		}
		pending, acks, rows = pending[:0], append(acks[:0], keep...), 0
		if armed {
			timer.Stop()
			armed = false
		}
	}
	arm := func() {
		if !armed {
			timer.Reset(o.opts.MaxDelay)
			armed = true
		}
	}
	for {
		select {
		case r := <-o.appends:
			pending = append(pending, r)
			rows += len(r.recs)
			// Waiting for company only pays for small commits: once a
			// commit's fsync is shared by enough rows, commit at once.
			if rows >= o.opts.MaxBatchRows || rows >= eagerRows {
				flush()
			} else {
				arm()
			}
		case a := <-o.acks:
			acks = append(acks, a)
			arm()
		case <-timer.C:
			armed = false
			flush()
		case <-maint.C:
			// Acks kept back by a full disk are retried here too.
			flush()
			o.restoreReserve()
			if o.maintain() {
				maint.Reset(maintBusy)
			} else {
				maint.Reset(maintIdle)
			}
		case <-o.quit:
			// Take everything already queued, then stop.
			for {
				select {
				case r := <-o.appends:
					pending = append(pending, r)
					continue
				case a := <-o.acks:
					acks = append(acks, a)
					continue
				default:
				}
				break
			}
			flush()
			return
		}
	}
}

// commitMode says how a commit makes room.
type commitMode int

const (
	// commitNormal inserts, applies acks, then sheds if the budget is exceeded.
	commitNormal commitMode = iota
	// commitAfterFull is the retry after SQLITE_FULL: shed first (room for
	// the pending rows), then insert.
	commitAfterFull
	// commitDeletesOnly applies acks and nothing else (no shed notices that
	// would need pages): deletes must work on a full disk.
	commitDeletesOnly
)

// txState is one commit's work in progress. Nothing in the Outbox changes
// until the transaction has committed.
type txState struct {
	o      *Outbox
	tx     *sql.Tx
	ins    *sql.Stmt
	ins1   *sql.Stmt
	args   []any
	n      int // rows buffered in args
	nextID int64
	// Sequence numbers are assigned on copies so a failed commit leaves the
	// in-memory state unchanged; streams first seen here are forgotten again.
	seqs    map[gateway.StreamID]uint64
	created []gateway.StreamID

	added, addedEvents int64
	deleted            [2]int64 // acked rows per class
	shed               shedResult
}

// insert assigns r its id and sequence number and queues its row.
func (st *txState) insert(r *gateway.Record) error {
	s, isNew, err := st.o.streamFor(st.tx, r.Stream, r.Unit)
	if err != nil {
		return err
	}
	if isNew {
		st.created = append(st.created, s.name)
	}
	seq, ok := st.seqs[s.name]
	if !ok {
		seq = s.seq
	}
	seq++
	st.seqs[s.name] = seq
	r.ID, r.Seq = st.nextID, seq
	st.nextID++
	var body any
	if len(r.Body) > 0 {
		body = r.Body
	}
	st.args = append(st.args, r.ID, s.id, int64(r.Seq), int64(r.Class), r.Time.UnixMicro(), r.Value, int64(r.Quality), body)
	st.n++
	st.added++
	if r.Class == gateway.ClassEvent {
		st.addedEvents++
	}
	if st.n == insertRows {
		if err := execFused(st.ins, st.args); err != nil {
			return fmt.Errorf("outbox: insert: %w", err)
		}
		st.args, st.n = st.args[:0], 0
	}
	return nil
}

// execFused runs an INSERT through Query rather than Exec: go-sqlite3 then
// resets, binds every argument and steps in one cgo call, where Exec makes
// one call per argument (8 per row), which was the ingest path's main cost.
func execFused(stmt *sql.Stmt, args []any) error {
	rows, err := stmt.Query(args...)
	if err != nil {
		return err
	}
	return errors.Join(rows.Err(), rows.Close())
}

// flush writes the rows still buffered.
func (st *txState) flush() error {
	for i := 0; i < st.n; i++ {
		if err := execFused(st.ins1, st.args[i*8:i*8+8]); err != nil {
			return fmt.Errorf("outbox: insert: %w", err)
		}
	}
	st.args, st.n = st.args[:0], 0
	return nil
}

func (o *Outbox) commit(pending []appendReq, acks []ackReq, mode commitMode) (err error) {
	ctx := context.Background()
	tx, err := o.wdb.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("outbox: begin: %w", err)
	}
	st := &txState{
		o: o, tx: tx, ins: tx.Stmt(o.insStmt), ins1: tx.Stmt(o.ins1Stmt), args: o.args[:0],
		nextID: o.nextID, seqs: map[gateway.StreamID]uint64{},
	}
	defer func() {
		o.args = st.args[:0]
		if err != nil {
			tx.Rollback()
			for _, name := range st.created {
				if s, ok := o.byName[name]; ok {
					delete(o.byName, name)
					o.names.Delete(s.id)
				}
			}
		}
	}()
	// Deletes first: on a full database the pages they free take the rows.
	for _, a := range acks {
		res, err := tx.Exec(`DELETE FROM outbox WHERE id BETWEEN ? AND ? AND class = ?`, a.lo, a.hi, int64(a.class))
		if err != nil {
			return fmt.Errorf("outbox: delete acked %s ids %d-%d: %w", a.class, a.lo, a.hi, err)
		}
		k, _ := res.RowsAffected()
		if int(a.class) < len(st.deleted) {
			st.deleted[a.class] += k
		}
	}
	if mode == commitAfterFull {
		// Room for the pending rows: events only when the rows coming in
		// are events too, since telemetry is always shed first.
		rows, hasTelemetry := 0, false
		for _, p := range pending {
			rows += len(p.recs)
			for i := range p.recs {
				hasTelemetry = hasTelemetry || p.recs[i].Class == gateway.ClassTelemetry
			}
		}
		if err := o.shed(st, max(shedMinRows, 2*int64(rows)), !hasTelemetry, reasonFull); err != nil {
			return err
		}
	}
	for _, p := range pending {
		for i := range p.recs {
			if err := st.insert(&p.recs[i]); err != nil {
				return err
			}
		}
	}
	if err := st.flush(); err != nil {
		return err
	}
	if o.opts.MaxBytes > 0 && mode != commitDeletesOnly {
		if err := o.budget(st); err != nil {
			return err
		}
	}
	notices, err := o.shedNotices(st)
	if err != nil {
		return err
	}
	for name, seq := range st.seqs {
		if _, err := tx.Exec(`UPDATE streams SET last_seq = ? WHERE id = ?`, int64(seq), o.byName[name].id); err != nil {
			return fmt.Errorf("outbox: update sequence of %s: %w", name, err)
		}
	}
	for c, k := range st.shed.rows {
		if k == 0 {
			continue
		}
		if _, err := tx.Exec(`INSERT INTO shed(class, rows) VALUES (?, ?) ON CONFLICT(class) DO UPDATE SET rows = rows + excluded.rows`, c, k); err != nil {
			return fmt.Errorf("outbox: count shed rows: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("outbox: commit: %w", err)
	}
	for name, seq := range st.seqs {
		o.byName[name].seq = seq
	}
	// Publish the committed rows to the tails before lastID moves, so a
	// reader that sees the new lastID finds them. Rows shed or acked leave
	// the tails: every row of a class with id <= hi is gone from the
	// database, so raising the floor to hi keeps "every committed row above
	// the floor is in the ring" true.
	for c, t := range o.tails {
		t.mu.Lock()
		for _, p := range pending {
			for i := range p.recs {
				if r := &p.recs[i]; int(r.Class) == c {
					t.add(r)
				}
			}
		}
		if c == int(gateway.ClassEvent) {
			for i := range notices {
				t.add(&notices[i])
			}
		}
		t.mu.Unlock()
		if hi := st.shed.hi[c]; hi > 0 {
			t.forget(hi)
		}
	}
	for _, a := range acks {
		if int(a.class) < len(o.tails) {
			o.tails[a.class].forget(a.hi)
		}
	}
	o.nextID = st.nextID
	o.lastID.Store(st.nextID - 1)
	o.commits.Add(1)
	o.commitN.Add(st.added)
	deleted := st.deleted[0] + st.deleted[1]
	shed := st.shed.rows[0] + st.shed.rows[1]
	o.ackedN.Add(deleted)
	o.backlog.Add(st.added - deleted - shed)
	o.events.Add(st.addedEvents - st.deleted[gateway.ClassEvent] - st.shed.rows[gateway.ClassEvent])
	for c, k := range st.shed.rows {
		o.shedN[c].Add(k)
	}
	o.notices.Add(int64(len(notices)))
	if deleted+shed > 0 {
		o.maint.deleted = true
	}
	if st.added > 0 {
		select {
		case o.notify <- struct{}{}:
		default:
		}
	}
	return nil
}

// streamFor returns the stream row for name, creating it inside tx when new
// (isNew), or recording a changed unit.
func (o *Outbox) streamFor(tx *sql.Tx, name gateway.StreamID, unit string) (s *stream, isNew bool, err error) {
	old, ok := o.byName[name]
	if ok && (old.unit == unit || unit == "") {
		return old, false, nil
	}
	if name == "" {
		return nil, false, fmt.Errorf("outbox: record with an empty stream id")
	}
	if ok {
		// The unit changed: keep id and sequence. Stream values are shared
		// with readers, so replace rather than modify.
		if _, err := tx.Exec(`UPDATE streams SET unit = ? WHERE id = ?`, unit, old.id); err != nil {
			return nil, false, fmt.Errorf("outbox: change unit of stream %s: %w", name, err)
		}
		s = &stream{id: old.id, name: name, unit: unit, seq: old.seq}
		o.byName[name] = s
		o.names.Store(s.id, s)
		return s, false, nil
	}
	res, err := tx.Exec(`INSERT INTO streams(name, unit) VALUES (?, ?)`, string(name), unit)
	if err != nil {
		return nil, false, fmt.Errorf("outbox: register stream %s: %w", name, err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return nil, false, fmt.Errorf("outbox: register stream %s: %w", name, err)
	}
	s = &stream{id: id, name: name, unit: unit}
	o.byName[name] = s
	o.names.Store(id, s)
	return s, true, nil
}
