package outbox

import (
	"context"
	"database/sql"
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
	flush := func() {
		if len(pending) == 0 && len(acks) == 0 {
			return
		}
		err := o.commit(pending, acks)
		for _, p := range pending {
			p.done <- err
		}
		pending, acks, rows = pending[:0], acks[:0], 0
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

func (o *Outbox) commit(pending []appendReq, acks []ackReq) (err error) {
	ctx := context.Background()
	tx, err := o.wdb.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("outbox: begin: %w", err)
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	nextID := o.nextID
	// Sequence numbers are assigned on copies so a failed commit leaves the
	// in-memory state unchanged; streams first seen here are forgotten again.
	seqs := map[gateway.StreamID]uint64{}
	var created []gateway.StreamID
	defer func() {
		if err != nil {
			for _, name := range created {
				if s, ok := o.byName[name]; ok {
					delete(o.byName, name)
					o.names.Delete(s.id)
				}
			}
		}
	}()
	var added, addedEvents int64
	ins := tx.Stmt(o.insStmt)
	ins1 := tx.Stmt(o.ins1Stmt)
	args := o.args[:0]
	n := 0
	for _, p := range pending {
		for i := range p.recs {
			r := &p.recs[i]
			s, isNew, err := o.streamFor(tx, r.Stream, r.Unit)
			if err != nil {
				return err
			}
			if isNew {
				created = append(created, s.name)
			}
			seq, ok := seqs[s.name]
			if !ok {
				seq = s.seq
			}
			seq++
			seqs[s.name] = seq
			r.ID, r.Seq = nextID, seq
			nextID++
			var body any
			if len(r.Body) > 0 {
				body = r.Body
			}
			args = append(args, r.ID, s.id, int64(r.Seq), int64(r.Class), r.Time.UnixMicro(), r.Value, int64(r.Quality), body)
			n++
			added++
			if r.Class == gateway.ClassEvent {
				addedEvents++
			}
			if n == insertRows {
				if _, err := ins.Exec(args...); err != nil {
					return fmt.Errorf("outbox: insert: %w", err)
				}
				args, n = args[:0], 0
			}
		}
	}
	for i := 0; i < n; i++ {
		if _, err := ins1.Exec(args[i*8 : i*8+8]...); err != nil {
			return fmt.Errorf("outbox: insert: %w", err)
		}
	}
	o.args = args[:0]
	for name, seq := range seqs {
		if _, err := tx.Exec(`UPDATE streams SET last_seq = ? WHERE id = ?`, int64(seq), o.byName[name].id); err != nil {
			return fmt.Errorf("outbox: update sequence of %s: %w", name, err)
		}
	}
	var deleted, deletedEvents int64
	for _, a := range acks {
		res, err := tx.Exec(`DELETE FROM outbox WHERE id BETWEEN ? AND ? AND class = ?`, a.lo, a.hi, int64(a.class))
		if err != nil {
			return fmt.Errorf("outbox: delete acked %s ids %d-%d: %w", a.class, a.lo, a.hi, err)
		}
		k, _ := res.RowsAffected()
		deleted += k
		if a.class == gateway.ClassEvent {
			deletedEvents += k
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("outbox: commit: %w", err)
	}
	for name, seq := range seqs {
		o.byName[name].seq = seq
	}
	// Publish the committed rows to the tails before lastID moves, so a
	// reader that sees the new lastID finds them.
	for c, t := range o.tails {
		t.mu.Lock()
		for _, p := range pending {
			for i := range p.recs {
				if r := &p.recs[i]; int(r.Class) == c {
					t.add(r)
				}
			}
		}
		t.mu.Unlock()
	}
	for _, a := range acks {
		if int(a.class) < len(o.tails) {
			o.tails[a.class].forget(a.hi)
		}
	}
	o.nextID = nextID
	o.lastID.Store(nextID - 1)
	o.commits.Add(1)
	o.commitN.Add(added)
	o.ackedN.Add(deleted)
	o.backlog.Add(added - deleted)
	o.events.Add(addedEvents - deletedEvents)
	if added > 0 {
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
