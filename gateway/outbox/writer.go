package outbox

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strconv"
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
			keep, err = o.commitOnFull(pending, acks, rows)
		}
		switch {
		case isDamageErr(err):
			o.markDamaged(err.Error())
		case errors.Is(err, gateway.ErrDiskFull):
			o.refused(rows)
		case err == nil && len(pending) > 0:
			o.accepted()
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
			o.endEpisodes()
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

// deleteStepMax is the most rows one of the writer's delete transactions
// takes on the full path (applyAcks).
const deleteStepMax = 1024

// commitOnFull is the writer's answer to a commit of pending and acks
// (rows records in all) that failed with SQLITE_FULL. It makes room
// (onFull), applies the acks on their own (applyAcks), then retries the
// pending rows as they are if the database may have pages for them, and
// once more after shedding room for them (commitAfterFull). It returns the
// acks that could not be applied yet, for the next commit, and the pending
// rows' result: nil, or an error wrapping gateway.ErrDiskFull.
func (o *Outbox) commitOnFull(pending []appendReq, acks []ackReq, rows int) (keep []ackReq, err error) {
	o.fullCommits.Add(1)
	walRoom := o.onFull()
	if len(acks) > 0 {
		// Deletes must go through on a full disk. A single transaction
		// holding every ack may need more WAL than a full filesystem has
		// room for (an ack of events touches one page per event, as events
		// lie between telemetry rows), and then it never commits; so the
		// acks go first, on their own and in steps that fit.
		keep = o.applyAcks(acks)
	}
	if len(pending) == 0 {
		return keep, nil
	}
	// What was full may have been the WAL's room on the filesystem, not the
	// database's pages: if the deletes freed pages, or onFull made room in
	// the WAL and enough pages are free, the rows may fit as they are, and
	// nothing need be shed.
	if len(acks) > 0 || walRoom && o.roomFor(rows) {
		if err = o.commit(pending, nil, commitNormal); !IsFull(err) {
			return keep, err
		}
		o.fullCommits.Add(1)
		o.onFull()
	}
	if err = o.commit(pending, nil, commitAfterFull); IsFull(err) {
		o.fullCommits.Add(1)
		o.fullRefused.Add(int64(rows))
		err = fmt.Errorf("outbox: %d rows refused: %w: %w", rows, gateway.ErrDiskFull, err)
	}
	return keep, err
}

// applyAcks applies acks on a full disk: all in one transaction if that
// fits, else oldest first, each in transactions of at most deleteStep rows
// of its class. A step that fails with SQLITE_FULL is retried after onFull
// with half as many rows, down to one row; a step that commits lets the
// next one take twice as many, up to deleteStepMax. It returns the acks, or
// the parts of them, not applied: those that failed with one row, or with
// another error.
func (o *Outbox) applyAcks(acks []ackReq) (keep []ackReq) {
	switch err := o.commit(nil, acks, commitDeletesOnly); {
	case err == nil:
		return nil
	case !IsFull(err):
		return acks
	}
	o.fullCommits.Add(1)
	o.onFull()
	for i, last := 0, false; i < len(acks); {
		a := acks[i]
		step := int64(deleteStepMax)
		if int(a.class) < len(o.deleteStep) && o.deleteStep[a.class] > 0 {
			step = min(o.deleteStep[a.class], deleteStepMax)
		}
		hi, err := o.stepEnd(a, step)
		if err == nil {
			err = o.commit(nil, []ackReq{{class: a.class, lo: a.lo, hi: hi}}, commitDeletesOnly)
		}
		switch {
		case err == nil:
			if int(a.class) < len(o.deleteStep) {
				o.deleteStep[a.class] = min(2*step, deleteStepMax)
			}
			last = false
			if hi >= a.hi {
				i++
			} else {
				acks[i].lo = hi + 1
			}
		case IsFull(err) && !last:
			o.fullCommits.Add(1)
			if int(a.class) < len(o.deleteStep) {
				o.deleteStep[a.class] = max(step/2, 1)
			}
			// One row failed: try it once more after onFull, then give up
			// until the next commit.
			last = step == 1
			o.onFull()
		default:
			if IsFull(err) {
				o.fullCommits.Add(1)
			}
			return acks[i:]
		}
	}
	return nil
}

// roomFor reports whether the database's free pages may hold rows more
// rows of the average size of those it holds.
func (o *Outbox) roomFor(rows int) bool {
	var pages, free int64
	if err := o.wdb.QueryRow(`SELECT page_count, freelist_count FROM pragma_page_count(), pragma_freelist_count()`).Scan(&pages, &free); err != nil || free == 0 {
		return false
	}
	n := o.backlog.Load()
	if n <= 0 {
		return true
	}
	return free*o.pageSize >= int64(rows)*((pages-free)*o.pageSize/n)
}

// stepEnd returns the highest id of a step of a: the id of a's step-th row
// still in the database, or a.hi if a holds fewer rows.
func (o *Outbox) stepEnd(a ackReq, step int64) (int64, error) {
	var hi int64
	// The class is a literal so the planner can use the partial index on
	// events.
	err := o.wdb.QueryRow(fmt.Sprintf(`SELECT id FROM outbox WHERE class = %d AND id BETWEEN ? AND ? ORDER BY id LIMIT 1 OFFSET ?`, a.class), a.lo, a.hi, step-1).Scan(&hi)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return a.hi, nil
	case err != nil:
		return 0, fmt.Errorf("outbox: delete acked %s ids %d-%d: %w", a.class, a.lo, a.hi, err)
	}
	return hi, nil
}

// commitMode says how a commit makes room.
type commitMode int

const (
	// commitNormal inserts, applies acks, then sheds if the budget is exceeded.
	commitNormal commitMode = iota
	// commitAfterFull is the last retry after SQLITE_FULL: shed first (room
	// for the pending rows), then insert.
	commitAfterFull
	// commitDeletesOnly applies acks and nothing else (no shed notices that
	// would need pages): deletes must work on a full disk (applyAcks).
	commitDeletesOnly
)

// txState is one commit's work in progress. Nothing in the Outbox changes
// until the transaction has committed.
type txState struct {
	// lastNotice and noticeUpdates: shed notices written or extended in
	// this transaction (see shedNotices), applied once it commits.
	lastNotice    map[int64]noticeRow
	noticeUpdates []gateway.Record
	handLocked    bool // o.handMu is held until the commit is published
	o             *Outbox
	tx            *sql.Tx
	conn          *sql.Conn // the connection tx runs on
	del           *sql.Stmt
	seq           *sql.Stmt
	args          []any
	n             int // rows buffered in args
	nextID        int64
	// Sequence numbers are assigned on copies so a failed commit leaves the
	// in-memory state unchanged; streams first seen here are forgotten again.
	seqs    map[gateway.StreamID]uint64
	created []gateway.StreamID

	added, addedEvents int64
	addedSamples       int64
	deleted            [numClasses]int64 // acked rows per class
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
	switch r.Class {
	case gateway.ClassEvent:
		st.addedEvents++
	case gateway.ClassSamples:
		st.addedSamples++
	}
	if st.n == insertRows {
		return st.flush()
	}
	return nil
}

// insertBuffered inserts the rows buffered in st.args with one multi-row
// INSERT run on the transaction's connection at the driver level:
// database/sql's per-argument conversion, locking and Rows bookkeeping
// cost a fifth of the writer's time. Statements are prepared once per row
// count and driver connection (the writer has one connection).
func (st *txState) insertBuffered() error {
	if st.n == 0 {
		return nil
	}
	return st.conn.Raw(func(dc any) error {
		q, err := st.o.rawInsert(dc, st.n)
		if err != nil {
			return err
		}
		o := st.o
		if cap(o.nv) < len(st.args) {
			o.nv = make([]driver.NamedValue, len(st.args))
		}
		nv := o.nv[:len(st.args)]
		for i, a := range st.args {
			nv[i] = driver.NamedValue{Ordinal: i + 1, Value: a}
		}
		rows, err := q.QueryContext(context.Background(), nv)
		if err != nil {
			return err
		}
		return rows.Close()
	})
}

// rawInsert returns the n-row INSERT prepared on driver connection dc.
func (o *Outbox) rawInsert(dc any, n int) (driver.StmtQueryContext, error) {
	if o.rawConn != dc {
		o.closeRaw()
		o.rawConn = dc
	}
	if q := o.rawIns[n]; q != nil {
		return q, nil
	}
	cp, ok := dc.(driver.ConnPrepareContext)
	if !ok {
		return nil, fmt.Errorf("driver connection %T cannot prepare", dc)
	}
	stmt, err := cp.PrepareContext(context.Background(), insertSQL(n))
	if err != nil {
		return nil, err
	}
	q, ok := stmt.(driver.StmtQueryContext)
	if !ok {
		stmt.Close()
		return nil, fmt.Errorf("driver statement %T cannot query", stmt)
	}
	o.rawIns[n] = q
	return q, nil
}

// closeRaw closes the statements rawInsert prepared; it runs on the
// writer's driver connection (inside Conn.Raw) or after the writer stopped.
func (o *Outbox) closeRaw() {
	for n, q := range o.rawIns {
		if q != nil {
			q.(driver.Stmt).Close()
			o.rawIns[n] = nil
		}
	}
}

// flush writes the rows still buffered.
func (st *txState) flush() error {
	if err := st.insertBuffered(); err != nil {
		return fmt.Errorf("outbox: insert: %w", err)
	}
	st.args, st.n = st.args[:0], 0
	return nil
}

// commit runs one transaction: the acks' deletes, for commitAfterFull a
// shed making room, the pending rows (and commands), the budget's shedding,
// shed notices, stream sequences and shed counts; once it has committed it
// publishes the result to the Outbox's in-memory state (publish). A failed
// commit changes nothing in memory.
func (o *Outbox) commit(pending []appendReq, acks []ackReq, mode commitMode) (err error) {
	ctx := context.Background()
	conn, err := o.wdb.Conn(ctx)
	if err != nil {
		return fmt.Errorf("outbox: writer connection: %w", err)
	}
	defer conn.Close()
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("outbox: begin: %w", err)
	}
	st := &txState{
		o: o, tx: tx, conn: conn, args: o.args[:0],
		del: tx.Stmt(o.delStmt), seq: tx.Stmt(o.seqStmt),
		nextID: o.nextID, seqs: map[gateway.StreamID]uint64{},
		lastNotice: map[int64]noticeRow{},
	}
	defer func() {
		if st.handLocked {
			o.handMu.Unlock()
		}
	}()
	defer func() {
		o.args = st.args[:0]
		if err != nil {
			tx.Rollback()
			o.forgetCreated(st)
		}
	}()
	// Deletes first: on a full database the pages they free take the rows.
	if err := st.deleteAcked(acks); err != nil {
		return err
	}
	if mode == commitAfterFull {
		if err := o.shedForPending(st, pending); err != nil {
			return err
		}
	}
	if err := st.insertPending(pending); err != nil {
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
	if err := o.writeSequences(st); err != nil {
		return err
	}
	if err := st.countShed(); err != nil {
		return err
	}
	o.markReserve(st.nextID)
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("outbox: commit: %w", err)
	}
	o.publish(st, pending, acks, notices)
	o.markCommitted(st.nextID - 1)
	return nil
}

// forgetCreated drops the streams a failed transaction registered.
func (o *Outbox) forgetCreated(st *txState) {
	for _, name := range st.created {
		if s, ok := o.byName[name]; ok {
			delete(o.byName, name)
			o.names.Delete(s.id)
		}
	}
}

// deleteAcked deletes the acked rows, counting them per class.
func (st *txState) deleteAcked(acks []ackReq) error {
	for _, a := range acks {
		res, err := st.del.Exec(a.lo, a.hi, int64(a.class))
		if err != nil {
			return fmt.Errorf("outbox: delete acked %s ids %d-%d: %w", a.class, a.lo, a.hi, err)
		}
		k, _ := res.RowsAffected()
		if int(a.class) < len(st.deleted) {
			st.deleted[a.class] += k
		}
	}
	return nil
}

// shedForPending sheds room for the pending rows on the last retry after
// SQLITE_FULL: events only when the rows coming in are events too, since
// samples and telemetry are always shed first.
func (o *Outbox) shedForPending(st *txState, pending []appendReq) error {
	rows, lower := 0, false
	for _, p := range pending {
		rows += len(p.recs)
		for i := range p.recs {
			lower = lower || p.recs[i].Class != gateway.ClassEvent
		}
	}
	return o.shed(st, max(shedMinRows, 2*int64(rows)), !lower, reasonFull)
}

// insertPending inserts the pending rows; a command's rows only if its id
// is new (recordCommand).
func (st *txState) insertPending(pending []appendReq) error {
	for _, p := range pending {
		if p.cmd != nil {
			fresh, err := st.recordCommand(p.cmd)
			if err != nil {
				return err
			}
			if !fresh {
				continue
			}
		}
		for i := range p.recs {
			if err := st.insert(&p.recs[i]); err != nil {
				return err
			}
		}
	}
	return st.flush()
}

// writeSequences stores every touched stream's new last_seq in one
// statement: [[id,seq],...].
func (o *Outbox) writeSequences(st *txState) error {
	if len(st.seqs) == 0 {
		return nil
	}
	js := append(o.seqJSON[:0], '[')
	for name, seq := range st.seqs {
		js = append(js, '[')
		js = strconv.AppendInt(js, o.byName[name].id, 10)
		js = append(js, ',')
		js = strconv.AppendUint(js, seq, 10)
		js = append(js, ']', ',')
	}
	js[len(js)-1] = ']'
	o.seqJSON = js
	if _, err := st.seq.Exec(string(js)); err != nil {
		return fmt.Errorf("outbox: update stream sequences: %w", err)
	}
	return nil
}

// countShed adds the rows shed in this transaction to the table shed.
func (st *txState) countShed() error {
	for c, k := range st.shed.rows {
		if k == 0 {
			continue
		}
		if _, err := st.tx.Exec(`INSERT INTO shed(class, rows) VALUES (?, ?) ON CONFLICT(class) DO UPDATE SET rows = rows + excluded.rows`, c, k); err != nil {
			return fmt.Errorf("outbox: count shed rows: %w", err)
		}
	}
	return nil
}

// publish applies a committed transaction to the Outbox's in-memory state:
// stream sequences, the tails, shed floors and notices, ids and counters,
// and wakes the reader.
func (o *Outbox) publish(st *txState, pending []appendReq, acks []ackReq, notices []gateway.Record) {
	for name, seq := range st.seqs {
		o.byName[name].seq = seq
	}
	o.publishTails(st, pending, acks, notices)
	for id, n := range st.lastNotice {
		o.lastNotice[id] = n
	}
	o.nextID = st.nextID
	o.lastID.Store(st.nextID - 1)
	o.commits.Add(1)
	o.commitN.Add(st.added)
	deleted := sum(st.deleted[:])
	shed := sum(st.shed.rows[:])
	o.ackedN.Add(deleted)
	o.backlog.Add(st.added - deleted - shed)
	o.events.Add(st.addedEvents - st.deleted[gateway.ClassEvent] - st.shed.rows[gateway.ClassEvent])
	o.samples.Add(st.addedSamples - st.deleted[gateway.ClassSamples] - st.shed.rows[gateway.ClassSamples])
	for c, k := range st.shed.rows {
		o.shedN[c].Add(k)
	}
	o.notices.Add(int64(len(notices)))
	if deleted+shed > 0 {
		o.maint.deleted = true
	}
	if shed > 0 {
		o.noteShed(st)
	}
	if st.added > 0 {
		select {
		case o.notify <- struct{}{}:
		default:
		}
	}
}

// publishTails adds the committed rows to the tails before lastID moves, so
// a reader that sees the new lastID finds them. Rows shed or acked leave
// the tails: every row of a class with id <= hi is gone from the database,
// so raising the floor to hi keeps "every committed row above the floor is
// in the ring" true.
func (o *Outbox) publishTails(st *txState, pending []appendReq, acks []ackReq, notices []gateway.Record) {
	for c, t := range o.tails {
		t.mu.Lock()
		for _, p := range pending {
			if p.cmd != nil && p.cmd.dup {
				continue // nothing of it was inserted
			}
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
			for i := range st.noticeUpdates {
				t.replace(&st.noticeUpdates[i])
			}
		}
		t.mu.Unlock()
		if hi := st.shed.hi[c]; hi > 0 {
			t.forget(hi)
			o.shedFloor[c] = max(o.shedFloor[c], hi)
		}
	}
	for _, a := range acks {
		if int(a.class) < len(o.tails) {
			o.tails[a.class].forget(a.hi)
		}
	}
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
