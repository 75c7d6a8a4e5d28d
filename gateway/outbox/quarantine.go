package outbox

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mattn/go-sqlite3"

	"github.com/shelfgate/shelfgate/gateway"
)

// ErrCorrupt means the outbox's database is damaged. Open survives it (it
// moves the file aside and starts a fresh outbox); a running Outbox that
// finds it (the periodic check, or a commit) refuses further Appends with
// an error wrapping ErrCorrupt, and the service should Close it and Open
// it again, which moves the file aside.
var ErrCorrupt = errors.New("outbox: database damaged")

// ErrAlreadySalvaged means SalvageInto found the file's rows already
// salvaged into the outbox.
var ErrAlreadySalvaged = errors.New("outbox: file already salvaged into this outbox")

// EventQuarantined is the Kind of the event an outbox writes (stream
// QuarantineStream) after moving a damaged database aside: Detail says
// why, where the file went, and which id ranges were unreadable; Quantity
// is the number of rows salvaged.
const EventQuarantined gateway.EventKind = "outbox_quarantined"

// QuarantineStream is the stream of EventQuarantined records.
const QuarantineStream gateway.StreamID = "events/outbox"

// appID is the outbox's PRAGMA application_id ("SGOB").
const appID = 0x53474f42

// defaultCheckEvery is the period of the integrity check when
// Options.CheckEvery is 0.
const defaultCheckEvery = 10 * time.Minute

// damage is why a database cannot be used.
type damage struct{ reason string }

func (d *damage) Error() string { return d.reason }
func (d *damage) Unwrap() error { return ErrCorrupt }

// probeResult is what probe found in a database that is not damaged.
type probeResult struct {
	damage      *damage
	fresh       bool // no tables yet
	instance    [16]byte
	hasInstance bool
}

// isDamageErr reports whether err is SQLite finding the file damaged or
// not a database.
func isDamageErr(err error) bool {
	var se sqlite3.Error
	return errors.As(err, &se) && (se.Code == sqlite3.ErrCorrupt || se.Code == sqlite3.ErrNotADB)
}

// probe checks the database open on db before anything is written to it:
// quick_check, that it is an outbox (or empty), and that it holds every id
// its high-water mark says was committed.
func probe(db *sql.DB, path string, existed bool, mark hwMark, hasMark bool) (probeResult, error) {
	var pr probeResult
	dmg := func(format string, a ...any) (probeResult, error) {
		pr.damage = &damage{fmt.Sprintf(format, a...)}
		return pr, nil
	}
	rows, err := db.Query(`PRAGMA quick_check(20)`)
	if err != nil {
		if isDamageErr(err) {
			return dmg("quick_check: %v", err)
		}
		return pr, err
	}
	var problems []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			rows.Close()
			return dmg("quick_check: %v", err)
		}
		if s != "ok" {
			problems = append(problems, s)
		}
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		if isDamageErr(err) {
			return dmg("quick_check: %v", err)
		}
		return pr, err
	}
	if len(problems) > 0 {
		return dmg("quick_check: %s", strings.Join(problems, "; "))
	}
	tables := map[string]bool{}
	trows, err := db.Query(`SELECT name FROM sqlite_schema WHERE type = 'table'`)
	if err != nil {
		if isDamageErr(err) {
			return dmg("read schema: %v", err)
		}
		return pr, err
	}
	for trows.Next() {
		var n string
		trows.Scan(&n)
		tables[n] = true
	}
	trows.Close()
	var app int64
	if err := db.QueryRow(`PRAGMA application_id`).Scan(&app); err != nil {
		return dmg("read application_id: %v", err)
	}
	if len(tables) == 0 {
		pr.fresh = true
		if hasMark && existed {
			return dmg("the database was replaced by an empty one (ids up to %d were committed)", mark.committed)
		}
		return pr, nil
	}
	if app != appID && !(app == 0 && tables["outbox"] && tables["streams"]) {
		names := make([]string, 0, len(tables))
		for n := range tables {
			names = append(names, n)
		}
		return dmg("not a Shelfgate outbox (application_id %#x, tables %s)", app, strings.Join(names, ", "))
	}
	var hw sql.NullInt64
	if err := db.QueryRow(`SELECT seq FROM sqlite_sequence WHERE name = 'outbox'`).Scan(&hw); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return dmg("read id high-water mark: %v", err)
	}
	if tables["meta"] {
		var inst []byte
		err := db.QueryRow(`SELECT value FROM meta WHERE key = 'instance'`).Scan(&inst)
		if err == nil && len(inst) == 16 {
			copy(pr.instance[:], inst)
			pr.hasInstance = true
		}
	}
	if hasMark {
		if pr.hasInstance && pr.instance != mark.instance {
			return dmg("the database is not the outbox its high-water mark %s was kept for", hwmPath(path))
		}
		if hw.Int64 < mark.committed {
			return dmg("the database lost committed rows: ids up to %d were committed, it holds up to %d", mark.committed, hw.Int64)
		}
	}
	return pr, nil
}

// seed runs once the schema exists: it stamps the application id, makes
// the instance id, and starts a new database's ids above the high-water
// mark it replaces.
func (o *Outbox) seed(pr probeResult, mark hwMark, hasMark bool) error {
	if _, err := o.wdb.Exec(fmt.Sprintf(`PRAGMA application_id = %d`, appID)); err != nil {
		return fmt.Errorf("outbox: set application_id: %w", err)
	}
	if pr.hasInstance {
		o.instance = pr.instance
	} else if err := ensureInstance(o.wdb, &o.instance); err != nil {
		return err
	}
	if pr.fresh && hasMark {
		if err := raiseSequence(o.wdb, max(mark.reserved, mark.committed)); err != nil {
			return err
		}
	}
	return nil
}

// ensureInstance reads the database's instance id, making one if missing.
func ensureInstance(db interface {
	Exec(string, ...any) (sql.Result, error)
	QueryRow(string, ...any) *sql.Row
}, inst *[16]byte) error {
	fresh := make([]byte, 16)
	rand.Read(fresh)
	if _, err := db.Exec(`INSERT OR IGNORE INTO meta(key, value) VALUES ('instance', ?)`, fresh); err != nil {
		return fmt.Errorf("outbox: store instance id: %w", err)
	}
	var b []byte
	if err := db.QueryRow(`SELECT value FROM meta WHERE key = 'instance'`).Scan(&b); err != nil || len(b) != 16 {
		return fmt.Errorf("outbox: read instance id: %v (%d bytes)", err, len(b))
	}
	copy(inst[:], b)
	return nil
}

// raiseSequence makes the outbox's next id at least hw+1.
func raiseSequence(db interface {
	Exec(string, ...any) (sql.Result, error)
}, hw int64) error {
	res, err := db.Exec(`UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name = 'outbox'`, hw)
	if err != nil {
		return fmt.Errorf("outbox: raise id high-water mark: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		if _, err := db.Exec(`INSERT INTO sqlite_sequence(name, seq) VALUES ('outbox', ?)`, hw); err != nil {
			return fmt.Errorf("outbox: set id high-water mark: %w", err)
		}
	}
	return nil
}

// openMark opens the sidecar and brings it up to the database's state.
func (o *Outbox) openMark() error {
	hw := o.lastID.Load()
	m := hwMark{instance: o.instance, committed: hw, reserved: hw + hwmStep}
	if old, ok, _ := readMark(o.path); ok && old.instance == o.instance {
		m.reserved = max(m.reserved, old.reserved)
		m.gen = old.gen
	}
	h, err := openMark(o.path, m)
	if err != nil {
		return err
	}
	o.hwm = h
	return nil
}

// markCommitted keeps the sidecar ahead of the ids a commit is about to
// assign (before the commit, with fsync, every hwmStep ids) and records
// the ids committed (after it). A failed write is logged once and never
// fails the commit.
func (o *Outbox) markReserve(next int64) {
	if o.hwm == nil || next-1 <= o.hwm.mark.reserved {
		return
	}
	o.hwm.mark.reserved = next - 1 + hwmStep
	o.markErr(o.hwm.write(true))
}

func (o *Outbox) markCommitted(last int64) {
	if o.hwm == nil || last <= o.hwm.mark.committed {
		return
	}
	o.hwm.mark.committed = last
	o.markErr(o.hwm.write(false))
}

func (o *Outbox) markErr(err error) {
	switch {
	case err != nil && !o.hwmFailed:
		o.hwmFailed = true
		o.log.Warn("outbox high-water mark not written; ids rely on the database alone until it is", "err", err)
	case err == nil && o.hwmFailed:
		o.hwmFailed = false
		o.log.Info("outbox high-water mark written again")
	}
}

// quarantine is a damaged database moved aside.
type quarantine struct {
	reason  string
	path    string // where it went
	salv    *Salvaged
	salvErr error
	rows    int64 // rows salvaged into the fresh outbox
}

// intentPath records a quarantine in progress (its target), so that one
// interrupted by a crash is finished at the next Open.
func intentPath(path string) string { return path + "-quarantine" }

func freshPath(path string) string { return path + "-fresh" }

// finishQuarantine completes a quarantine a crash interrupted.
func finishQuarantine(path string, mark hwMark, hasMark bool, log *slog.Logger) (*quarantine, error) {
	b, err := os.ReadFile(intentPath(path))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("outbox: read quarantine record %s: %w", intentPath(path), err)
	}
	target := strings.TrimSpace(string(b))
	if filepath.Dir(target) != filepath.Dir(path) || !strings.HasPrefix(filepath.Base(target), filepath.Base(path)+".corrupt-") {
		return nil, fmt.Errorf("outbox: quarantine record %s names %q, not a file beside %s", intentPath(path), target, path)
	}
	log.Warn("outbox quarantine was interrupted; finishing it", "moved_to", target)
	q := &quarantine{reason: "a quarantine interrupted by a crash", path: target}
	return q, recoverInto(path, q, mark, hasMark, log)
}

// quarantineAndSalvage moves the damaged database at path aside and puts a
// fresh outbox holding its readable rows in its place.
func quarantineAndSalvage(path string, dmg *damage, mark hwMark, hasMark bool, log *slog.Logger) (*quarantine, error) {
	at := time.Now().UTC()
	q := &quarantine{reason: dmg.reason, path: path + ".corrupt-" + at.Format("20060102T150405.000000000Z")}
	if err := writeAtomic(intentPath(path), []byte(q.path+"\n")); err != nil {
		log.Warn("outbox quarantine record not written; going on without it", "err", err)
	}
	log.Error("outbox database damaged; moving it aside and starting a fresh outbox", "reason", dmg.reason, "moved_to", q.path)
	return q, recoverInto(path, q, mark, hasMark, log)
}

// recoverInto moves the database at path (and its WAL) to q.path if it is
// still there, salvages q.path, builds a fresh outbox holding its rows
// beside path and renames it into place, then removes the intent record.
// Every step can be repeated after a crash.
func recoverInto(path string, q *quarantine, mark hwMark, hasMark bool, log *slog.Logger) error {
	if fileExists(q.path) && fileExists(path) && !fileExists(freshPath(path)) {
		// A crash after the fresh outbox was renamed into place.
		os.Remove(intentPath(path))
		syncDir(filepath.Dir(path))
		return nil
	}
	if err := moveAside(path, q.path); err != nil {
		return err
	}
	q.salv, q.salvErr = Salvage(q.path)
	if q.salvErr != nil {
		log.Warn("outbox salvage found nothing readable", "file", q.path, "err", q.salvErr)
	}
	fp := freshPath(path)
	for _, p := range []string{fp, fp + "-wal", fp + "-shm", fp + "-journal"} {
		os.Remove(p)
	}
	inst, start, err := buildFresh(fp, q, mark, hasMark)
	if err != nil {
		return err
	}
	// The sidecar names the fresh database before it takes the path.
	m := hwMark{instance: inst, committed: start, reserved: start}
	if hasMark {
		m.gen = mark.gen
	}
	if h, err := openMark(path, m); err != nil {
		log.Warn("outbox high-water mark not written for the fresh outbox", "err", err)
	} else {
		h.close()
	}
	if err := os.Rename(fp, path); err != nil {
		return fmt.Errorf("outbox: put fresh outbox in place of %s: %w", path, err)
	}
	syncDir(filepath.Dir(path))
	os.Remove(intentPath(path))
	syncDir(filepath.Dir(path))
	return nil
}

// moveAside renames path's WAL, then path, to target's; the shared-memory
// file is removed. Pieces already moved are skipped.
func moveAside(path, target string) error {
	for _, sfx := range []string{"-wal", ""} {
		from, to := path+sfx, target+sfx
		if !fileExists(from) {
			continue
		}
		if fileExists(to) {
			return fmt.Errorf("outbox: move %s aside: %s exists", from, to)
		}
		if err := os.Rename(from, to); err != nil {
			return fmt.Errorf("outbox: move %s aside: %w", from, err)
		}
	}
	os.Remove(path + "-shm")
	syncDir(filepath.Dir(path))
	return nil
}

// buildFresh creates a complete outbox at fp holding q's salvaged rows, ids
// continuing above every id the damaged one could have used, and the
// EventQuarantined record; it checkpoints and closes it. It returns the
// fresh database's instance id and id high-water mark.
func buildFresh(fp string, q *quarantine, mark hwMark, hasMark bool) (inst [16]byte, start int64, err error) {
	db, err := sql.Open("sqlite3", "file:"+escapePath(fp)+"?_journal_mode=WAL&_synchronous=FULL&_auto_vacuum=incremental&_txlock=immediate&mode=rwc")
	if err != nil {
		return inst, 0, fmt.Errorf("outbox: create fresh outbox %s: %w", fp, err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.Exec(schema); err != nil {
		return inst, 0, explainOpen(fp, fmt.Errorf("create schema: %w", err))
	}
	if _, err := db.Exec(fmt.Sprintf(`PRAGMA application_id = %d`, appID)); err != nil {
		return inst, 0, fmt.Errorf("outbox: set application_id: %w", err)
	}
	tx, err := db.Begin()
	if err != nil {
		return inst, 0, fmt.Errorf("outbox: seed fresh outbox: %w", err)
	}
	defer tx.Rollback()
	if err := ensureInstance(tx, &inst); err != nil {
		return inst, 0, err
	}
	if hasMark {
		start = max(mark.reserved, mark.committed)
	}
	var missing []IDRange
	if q.salv != nil {
		start = max(start, q.salv.HighWater)
		missing = q.salv.Missing
		if hasMark && mark.committed > q.salv.HighWater {
			// Committed, then lost with the part of the file that held them.
			missing = mergeRanges(append(missing, IDRange{q.salv.HighWater + 1, mark.committed}))
		}
		if q.rows, err = requeue(tx, q.salv); err != nil {
			return inst, 0, err
		}
	}
	detail := fmt.Sprintf("moved aside to %s: %s; %d rows salvaged", filepath.Base(q.path), q.reason, q.rows)
	if len(missing) > 0 {
		detail += "; unreadable ids " + rangesString(missing)
	}
	if q.salvErr != nil {
		detail += "; salvage: " + q.salvErr.Error()
	}
	now := time.Now()
	body, _ := json.Marshal(gateway.Event{Kind: EventQuarantined, Stream: QuarantineStream, Quantity: int(q.rows), Detail: detail, Time: now})
	sid, seq, err := streamSeq(tx, QuarantineStream, "")
	if err != nil {
		return inst, 0, err
	}
	start++
	if _, err := tx.Exec(`INSERT INTO outbox(id, stream, seq, class, ts, value, quality, body) VALUES (?, ?, ?, 1, ?, ?, 0, ?)`,
		start, sid, seq+1, now.UnixMicro(), float64(q.rows), body); err != nil {
		return inst, 0, fmt.Errorf("outbox: write quarantine event: %w", err)
	}
	if _, err := tx.Exec(`UPDATE streams SET last_seq = ? WHERE id = ?`, seq+1, sid); err != nil {
		return inst, 0, fmt.Errorf("outbox: write quarantine event: %w", err)
	}
	if err := raiseSequence(tx, start); err != nil {
		return inst, 0, err
	}
	if err := tx.Commit(); err != nil {
		return inst, 0, explainOpen(fp, fmt.Errorf("seed fresh outbox: %w", err))
	}
	if _, err := db.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		return inst, 0, fmt.Errorf("outbox: checkpoint fresh outbox: %w", err)
	}
	return inst, start, nil
}

// streamSeq returns the id and last_seq of stream name, creating it.
func streamSeq(tx *sql.Tx, name gateway.StreamID, unit string) (id int64, seq uint64, err error) {
	err = tx.QueryRow(`SELECT id, last_seq FROM streams WHERE name = ?`, string(name)).Scan(&id, &seq)
	if errors.Is(err, sql.ErrNoRows) {
		res, ierr := tx.Exec(`INSERT INTO streams(name, unit) VALUES (?, ?)`, string(name), unit)
		if ierr != nil {
			return 0, 0, fmt.Errorf("outbox: register stream %s: %w", name, ierr)
		}
		id, err = res.LastInsertId()
	}
	if err != nil {
		return 0, 0, fmt.Errorf("outbox: stream %s: %w", name, err)
	}
	return id, seq, nil
}

// requeue inserts s's rows with their ids and sequence numbers (rows whose
// id is present already are skipped), raises every stream's last_seq to
// the highest the file shows and the id high-water mark above its ids, and
// records the file as salvaged. It returns the rows inserted.
func requeue(tx *sql.Tx, s *Salvaged) (int64, error) {
	key := "salvaged:" + filepath.Base(s.Path)
	var one int
	if err := tx.QueryRow(`SELECT 1 FROM meta WHERE key = ?`, key).Scan(&one); err == nil {
		return 0, ErrAlreadySalvaged
	}
	ids := map[gateway.StreamID]int64{}
	units := map[gateway.StreamID]string{}
	for _, st := range s.Streams {
		units[st.Name] = st.Unit
	}
	for name, seq := range s.MaxSeq() {
		id, last, err := streamSeq(tx, name, units[name])
		if err != nil {
			return 0, err
		}
		ids[name] = id
		if seq > last {
			if _, err := tx.Exec(`UPDATE streams SET last_seq = ? WHERE id = ?`, seq, id); err != nil {
				return 0, fmt.Errorf("outbox: raise sequence of %s: %w", name, err)
			}
		}
	}
	stmt, err := tx.Prepare(`INSERT OR IGNORE INTO outbox(id, stream, seq, class, ts, value, quality, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return 0, fmt.Errorf("outbox: requeue: %w", err)
	}
	defer stmt.Close()
	var n int64
	for _, r := range s.Rows {
		var body any
		if len(r.Body) > 0 {
			body = r.Body
		}
		res, err := stmt.Exec(r.ID, ids[r.Stream], int64(r.Seq), int64(r.Class), r.Time.UnixMicro(), r.Value, int64(r.Quality), body)
		if err != nil {
			return n, fmt.Errorf("outbox: requeue id %d: %w", r.ID, err)
		}
		k, _ := res.RowsAffected()
		n += k
	}
	if err := raiseSequence(tx, s.HighWater); err != nil {
		return n, err
	}
	for _, c := range s.Commands {
		if _, err := tx.Exec(`INSERT OR IGNORE INTO commands(id, at, result) VALUES (?, ?, ?)`, c.ID, c.At.UnixMicro(), c.Result); err != nil {
			return n, fmt.Errorf("outbox: requeue command %q: %w", c.ID, err)
		}
	}
	if s.Secret != nil {
		if _, err := tx.Exec(`INSERT OR IGNORE INTO meta(key, value) VALUES (?, ?)`, secretKey, s.Secret); err != nil {
			return n, fmt.Errorf("outbox: carry the secret over: %w", err)
		}
	}
	rep, _ := json.Marshal(map[string]any{"rows": n, "missing": s.Missing, "at": time.Now().UTC()})
	if _, err := tx.Exec(`INSERT INTO meta(key, value) VALUES (?, ?)`, key, rep); err != nil {
		return n, fmt.Errorf("outbox: record salvage: %w", err)
	}
	return n, nil
}

// SalvageInto re-queues every readable row of the damaged outbox file
// damagedPath (see Salvage) into the outbox at outboxPath, with its
// original id and sequence number, in one transaction. The gateway must
// not be running on outboxPath. A file is salvaged into an outbox once
// (ErrAlreadySalvaged).
func SalvageInto(ctx context.Context, outboxPath, damagedPath string) (*Salvaged, int64, error) {
	s, err := Salvage(damagedPath)
	if err != nil {
		return nil, 0, err
	}
	o, err := Open(outboxPath, Options{ReserveBytes: -1, CheckEvery: -1})
	if err != nil {
		return s, 0, err
	}
	if err := o.Close(); err != nil {
		return s, 0, err
	}
	db, err := sql.Open("sqlite3", "file:"+escapePath(outboxPath)+"?_journal_mode=WAL&_synchronous=FULL&_busy_timeout=10000&_txlock=immediate")
	if err != nil {
		return s, 0, fmt.Errorf("outbox: open %s: %w", outboxPath, err)
	}
	defer db.Close()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return s, 0, fmt.Errorf("outbox: salvage into %s: %w", outboxPath, err)
	}
	defer tx.Rollback()
	n, err := requeue(tx, s)
	if err != nil {
		return s, n, err
	}
	if err := tx.Commit(); err != nil {
		return s, 0, fmt.Errorf("outbox: salvage into %s: %w", outboxPath, err)
	}
	// Keep the sidecar ahead of the ids now in the database.
	if m, ok, _ := readMark(outboxPath); ok && m.committed < s.HighWater {
		m.committed, m.reserved = s.HighWater, max(m.reserved, s.HighWater)
		if h, err := openMark(outboxPath, m); err == nil {
			h.close()
		}
	}
	return s, n, nil
}

// rangesString formats id ranges as "a-b, c".
func rangesString(rs []IDRange) string {
	var b strings.Builder
	for i, r := range rs {
		if i > 0 {
			b.WriteString(", ")
		}
		if i == 16 {
			fmt.Fprintf(&b, "and %d more", len(rs)-i)
			break
		}
		if r.Lo == r.Hi {
			fmt.Fprintf(&b, "%d", r.Lo)
		} else if r.Hi == math.MaxInt64 {
			fmt.Fprintf(&b, "%d-", r.Lo)
		} else {
			fmt.Fprintf(&b, "%d-%d", r.Lo, r.Hi)
		}
	}
	return b.String()
}

// reportQuarantine counts the quarantine Open did and logs its outcome.
func (o *Outbox) reportQuarantine(q *quarantine) {
	o.quarantined.Add(1)
	o.recovered.Add(q.rows)
	o.quarantinePath = q.path
	attrs := []any{"moved_to", q.path, "reason", q.reason, "rows_salvaged", q.rows, "next_id", o.lastID.Load() + 1}
	if q.salv != nil && len(q.salv.Missing) > 0 {
		attrs = append(attrs, "unreadable_ids", rangesString(q.salv.Missing))
	}
	o.log.Warn("outbox recording again on a fresh database", attrs...)
}

// startChecker runs the periodic integrity check until Close.
func (o *Outbox) startChecker() {
	if o.opts.CheckEvery < 0 {
		close(o.checked)
		return
	}
	go func() {
		defer close(o.checked)
		t := time.NewTicker(o.opts.CheckEvery)
		defer t.Stop()
		for {
			select {
			case <-o.quit:
				return
			case <-t.C:
				o.checkNow()
			}
		}
	}()
}

// checkNow runs quick_check on a reader connection (it does not block the
// writer; its cost is one read of the database) and marks the outbox
// damaged if it fails.
func (o *Outbox) checkNow() {
	o.checks.Add(1)
	var res string
	err := o.rdb.QueryRow(`PRAGMA quick_check(1)`).Scan(&res)
	switch {
	case err != nil && isDamageErr(err):
		o.markDamaged(err.Error())
	case err == nil && res != "ok":
		o.markDamaged(res)
	}
}

// markDamaged stops Appends with ErrCorrupt; logged once.
func (o *Outbox) markDamaged(reason string) {
	if o.damaged.Swap(true) {
		return
	}
	err := fmt.Errorf("outbox %s: %w: %s (close and open the outbox to move it aside)", o.path, ErrCorrupt, reason)
	o.werr.CompareAndSwap(nil, &err)
	o.log.Error("outbox database damaged while running; refusing appends until it is reopened", "reason", reason)
}

// writeAtomic writes b to path through a temporary file, fsync and rename.
func writeAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, werr := f.Write(b)
	if err := errors.Join(werr, f.Sync(), f.Close()); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	syncDir(filepath.Dir(path))
	return nil
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

func fileExists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}
