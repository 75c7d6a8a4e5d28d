package outbox

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"log/slog"

	"github.com/mattn/go-sqlite3"

	"github.com/shelfgate/shelfgate/gateway"
)

// Options tune the group commit and bound the database's size.
type Options struct {
	// MaxBatchRows ends a group commit once this many rows are pending.
	MaxBatchRows int
	// MaxDelay ends a group commit this long after its first row arrived.
	MaxDelay time.Duration
	// MaxBytes is the byte budget of the database file (pages in use ×
	// page size; the WAL is checkpointed and not counted). When a commit
	// leaves more than MaxBytes in use, the oldest telemetry rows are shed
	// in the same transaction (events only when no telemetry is left), each
	// shed range is reported by an EventShed record, and the database's hard
	// size limit (max_page_count) is set to MaxBytes plus headroom. Zero
	// means no budget: only a full filesystem sheds.
	MaxBytes int64
	// ReserveBytes is the size of the reserve file kept beside the database
	// (path + "-reserve") and deleted when the filesystem is full, so that
	// the WAL can still be checkpointed and acks and shedding still commit;
	// it is written back once there is room again. The WAL is checkpointed
	// before it outgrows half of it. 0 means 8 MiB, or an eighth of a
	// smaller filesystem (at least 256 KiB); negative, no reserve.
	ReserveBytes int64
	// Logger receives one line per episode of lost service (shedding, a
	// full disk, the reserve given up and re-created, a damaged database
	// moved aside). Nil discards.
	Logger *slog.Logger
	// CheckEvery is the period of the integrity check (PRAGMA quick_check
	// on a reader connection, which does not block the writer) after the
	// one at Open. 0 means 10 minutes; negative, only at Open.
	CheckEvery time.Duration
	// TailBytes bounds the in-memory tails of recently committed records
	// that the uplink reads instead of querying (half for telemetry, a
	// quarter each for events and samples). Memory is taken only while
	// records wait for their acks: a few hundred rows in steady state, up
	// to the bound while the uplink is behind; a reader further behind is
	// served from the database. 0 means DefaultTailBytes; negative, the
	// smallest tails (64 records each).
	TailBytes int64
}

// DefaultOptions are sane for a Raspberry Pi with an SD card: a commit every
// 5 ms or 8192 rows, whichever comes first.
var DefaultOptions = Options{MaxBatchRows: 8192, MaxDelay: 5 * time.Millisecond}

const schema = `
CREATE TABLE IF NOT EXISTS streams (
	id       INTEGER PRIMARY KEY,
	name     TEXT    NOT NULL UNIQUE,
	unit     TEXT    NOT NULL DEFAULT '',
	last_seq INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS outbox (
	id      INTEGER PRIMARY KEY AUTOINCREMENT,
	stream  INTEGER NOT NULL,
	seq     INTEGER NOT NULL,
	class   INTEGER NOT NULL,
	ts      INTEGER NOT NULL,
	value   REAL    NOT NULL,
	quality INTEGER NOT NULL,
	body    BLOB
);
CREATE INDEX IF NOT EXISTS outbox_events ON outbox(id) WHERE class = 1;
CREATE INDEX IF NOT EXISTS outbox_samples ON outbox(id) WHERE class = 2;
CREATE TABLE IF NOT EXISTS shed (
	class INTEGER PRIMARY KEY,
	rows  INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS meta (
	key   TEXT PRIMARY KEY,
	value BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS commands (
	n      INTEGER PRIMARY KEY,
	id     TEXT    NOT NULL UNIQUE,
	at     INTEGER NOT NULL,
	result BLOB    NOT NULL
);
`

// insertRows is how many rows one multi-row INSERT statement carries.
const insertRows = 128

// DefaultTailBytes is the default of Options.TailBytes.
const DefaultTailBytes = 8 << 20

// numClasses is the number of record classes (gateway.ClassTelemetry,
// ClassEvent, ClassSamples): the size of every per-class array.
const numClasses = 3

func sum(xs []int64) int64 {
	var n int64
	for _, x := range xs {
		n += x
	}
	return n
}

// Stats are the outbox's counters.
//
// Accounting: over the life of a database, rows committed (Committed, which
// includes the shed notices the outbox writes itself) = rows acked + rows
// shed + Backlog. Committed and Acked count since Open; ShedTelemetry and
// ShedEvents are cumulative over the database's life (persisted).
type Stats struct {
	Committed int64 // rows committed since Open, shed notices included
	Acked     int64 // rows deleted after delivery since Open
	Commits   int64 // transactions since Open
	Backlog   int64 // rows waiting now (all classes)
	Events    int64 // of which events
	Samples   int64 // of which samples
	LastID    int64 // highest id ever assigned

	// ShedTelemetry and ShedEvents count rows deleted undelivered, under the
	// byte budget or on a full disk, over the database's whole life.
	ShedTelemetry int64
	ShedEvents    int64
	ShedSamples   int64
	// ShedNotices counts the EventShed records written since Open (one per
	// stream and contiguous range of sequence numbers shed).
	ShedNotices int64
	// FullCommits counts transactions that failed with a full database or
	// filesystem since Open (each is retried: see the package
	// documentation).
	FullCommits int64
	// FullRefused counts rows whose Append failed with gateway.ErrDiskFull
	// since Open; the caller still holds them.
	FullRefused int64
	// ReserveReleases counts the times the reserve file was given up to a
	// full filesystem since Open; Reserved says whether it is in place now.
	ReserveReleases int64
	Reserved        bool
	// VacuumedPages counts pages returned to the filesystem by incremental
	// vacuum since Open.
	VacuumedPages int64

	MaxBytes  int64 // the byte budget (0: none)
	FileBytes int64 // database pages × page size (the main file's size)
	UsedBytes int64 // pages in use (not on the freelist) × page size; the budget's measure
	WALBytes  int64 // size of the -wal file

	// Quarantined counts damaged databases this Open moved aside
	// (QuarantinePath is the last); Recovered the rows salvaged from them
	// into this outbox. Damaged says a check while running found the
	// database damaged: Appends fail with ErrCorrupt until it is reopened.
	// IntegrityChecks counts the periodic checks since Open.
	Quarantined     int64
	QuarantinePath  string
	Recovered       int64
	Damaged         bool
	IntegrityChecks int64

	OldestTime time.Time     // time of the oldest row waiting (zero if none)
	OldestAge  time.Duration // time since OldestTime (zero if none)
}

type stream struct {
	id   int64
	name gateway.StreamID
	unit string
	seq  uint64
}

type appendReq struct {
	recs []gateway.Record
	cmd  *cmdReq // RecordCommand: recs are appended only if cmd.id is new
	done chan error
}

type ackReq struct {
	class  gateway.Class
	lo, hi int64
}

// Outbox is the SQLite outbox. It is safe for concurrent use.
type Outbox struct {
	path string
	opts Options
	wdb  *sql.DB // the single writer connection
	rdb  *sql.DB // readers

	appends chan appendReq
	acks    chan ackReq
	quit    chan struct{}
	stopped chan struct{}
	closeMu sync.RWMutex // held for reading while queueing; Close takes it to stop new requests
	closed  bool
	werr    atomic.Pointer[error] // first fatal writer error

	// streams by name, for the writer; names by id for readers.
	byName  map[gateway.StreamID]*stream
	names   sync.Map // int64 -> *stream (immutable name/unit after creation)
	nextID  int64    // writer only
	lastID  atomic.Int64
	notify  chan struct{}
	backlog atomic.Int64
	events  atomic.Int64
	samples atomic.Int64
	commits atomic.Int64
	commitN atomic.Int64
	ackedN  atomic.Int64
	tails   [numClasses]*tail // recent committed records per class
	// Statements every commit runs, prepared once: preparing them in each
	// transaction (64 stream updates a commit in the benchmark) cost a
	// sixth of the writer's time.
	// INSERTs of 1..insertRows rows prepared on the writer's driver
	// connection (rawConn), run without database/sql (see insertBuffered).
	rawConn any
	rawIns  [insertRows + 1]driver.StmtQueryContext
	nv      []driver.NamedValue
	seqJSON []byte
	// lastNotice[stream] is the newest shed notice written for a stream
	// since Open (writer only); shedNotices extends it in place while no
	// reader has been handed it: handed is the highest event id Read has
	// returned, and handMu orders Read of events against that rewrite.
	lastNotice map[int64]noticeRow
	handMu     sync.Mutex
	handed     int64
	// shedFloor[c] is the highest id of class c shed since Open (writer
	// only): every row of the class at or below it is gone, notices aside.
	shedFloor [numClasses]int64
	delStmt   *sql.Stmt // DELETE acked rows: lo, hi, class
	seqStmt   *sql.Stmt // UPDATE streams' last_seq from JSON [[id,seq],...]
	pagesStmt *sql.Stmt // page_count, freelist_count
	args      []any

	pageSize    int64                    // bytes per database page
	maxPages    int64                    // max_page_count from MaxBytes plus headroom (noPageLimit without a budget)
	incremental bool                     // auto_vacuum=INCREMENTAL (databases created by this version)
	shedN       [numClasses]atomic.Int64 // cumulative rows shed per class (persisted in table shed)
	notices     atomic.Int64
	fullCommits atomic.Int64
	fullRefused atomic.Int64
	vacuumed    atomic.Int64
	maint       maintState        // writer only
	deleteStep  [numClasses]int64 // writer only: rows per delete transaction on the full path, per class (0: deleteStepMax)

	reserveBytes    int64
	reserved        atomic.Bool // the reserve file is in place
	reserveReleases atomic.Int64
	capped          bool      // writer only: max_page_count holds the database at its size after a full filesystem
	reserveTry      time.Time // writer only: when the reserve was last given up or written
	walUsual        int64     // bytes of WAL between automatic checkpoints (wal_autocheckpoint pages)
	fsBytes         int64     // size of the filesystem holding the database (-1 if unknown)

	log            *slog.Logger
	hwm            *hwmFile // the sidecar high-water mark (nil if it cannot be written)
	hwmFailed      bool     // writer only: a sidecar write failed (logged once)
	instance       [16]byte
	checked        chan struct{} // closed when the integrity checker has stopped
	damaged        atomic.Bool   // a periodic check or a commit found the database damaged
	checks         atomic.Int64
	quarantined    atomic.Int64 // files moved aside by Open
	recovered      atomic.Int64 // rows salvaged into this outbox by Open or SalvageInto
	quarantinePath string
	episodes       episodes // writer only: what has been logged (log.go)

	secretMu sync.Mutex
	secret   []byte // Secret, once read or made
}

// Open opens or creates the outbox at path and starts its writer.
//
// A damaged database (quick_check fails, it is not an outbox, or it lost
// committed rows: see hwm.go) does not stop Open: the file is moved aside
// with its WAL (quarantine), its readable rows are salvaged into a fresh
// outbox at path with their original ids and sequence numbers, new ids
// continue above every id the damaged one could have used, and an
// EventQuarantined record reports it. Errors that are not damage (a
// missing directory, permissions, a read-only or full filesystem) are
// returned, saying what is wrong.
func Open(path string, opts Options) (*Outbox, error) {
	if opts.MaxBatchRows <= 0 {
		opts.MaxBatchRows = DefaultOptions.MaxBatchRows
	}
	if opts.MaxDelay <= 0 {
		opts.MaxDelay = DefaultOptions.MaxDelay
	}
	if opts.CheckEvery == 0 {
		opts.CheckEvery = defaultCheckEvery
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("outbox", path)
	if err := diagnoseOpen(path); err != nil {
		return nil, err
	}
	mark, hasMark, err := readMark(path)
	if err != nil {
		log.Warn("outbox high-water mark unreadable; relying on the database", "err", err)
	}
	q, err := finishQuarantine(path, mark, hasMark, log)
	if err != nil {
		return nil, err
	}
	if q != nil {
		mark, hasMark, _ = readMark(path)
	}
	o, dmg, err := openDB(path, opts, log, mark, hasMark)
	if dmg != nil {
		q, err = quarantineAndSalvage(path, dmg, mark, hasMark, log)
		if err != nil {
			return nil, err
		}
		mark, hasMark, _ = readMark(path)
		o, dmg, err = openDB(path, opts, log, mark, hasMark)
		if dmg != nil {
			return nil, fmt.Errorf("outbox: open %s: the fresh database is damaged too: %w", path, dmg)
		}
	}
	if err != nil {
		return nil, err
	}
	o.startChecker()
	go o.writer()
	if q != nil {
		o.reportQuarantine(q)
	}
	return o, nil
}

// openDB opens the database at path, checks it (probe) and, if it is
// sound, creates the schema, starts a new database's ids above the
// high-water mark and loads the writer's state. It returns the
// damage found, if any, with the database closed again.
func openDB(path string, opts Options, log *slog.Logger, mark hwMark, hasMark bool) (*Outbox, *damage, error) {
	dsn := func(mode string) string {
		v := url.Values{}
		v.Set("_journal_mode", "WAL")
		v.Set("_synchronous", "FULL")
		v.Set("_busy_timeout", "10000")
		v.Set("_txlock", "immediate")
		if mode != "" {
			v.Set("mode", mode)
		}
		if mode == "rwc" {
			// Takes effect only in a database without tables (a new one):
			// auto_vacuum must be chosen before the first table is created.
			v.Set("_auto_vacuum", "incremental")
		}
		return "file:" + escapePath(path) + "?" + v.Encode()
	}
	existed := fileExists(path)
	wdb, err := sql.Open("sqlite3", dsn("rwc"))
	if err != nil {
		return nil, nil, fmt.Errorf("outbox: open %s: %w", path, err)
	}
	wdb.SetMaxOpenConns(1)
	wdb.SetConnMaxIdleTime(0)
	pr, err := probe(wdb, path, existed, mark, hasMark)
	if err != nil || pr.damage != nil {
		wdb.Close()
		if err != nil {
			return nil, nil, explainOpen(path, err)
		}
		return nil, pr.damage, nil
	}
	if _, err := wdb.Exec(schema); err != nil {
		wdb.Close()
		return nil, nil, explainOpen(path, fmt.Errorf("create schema: %w", err))
	}
	rdb, err := sql.Open("sqlite3", dsn("ro"))
	if err != nil {
		wdb.Close()
		return nil, nil, fmt.Errorf("outbox: open %s for reading: %w", path, err)
	}
	rdb.SetMaxOpenConns(2)
	o := &Outbox{
		path: path, opts: opts, wdb: wdb, rdb: rdb, lastNotice: map[int64]noticeRow{},
		log:     log,
		appends: make(chan appendReq, 1024),
		acks:    make(chan ackReq, 4096),
		quit:    make(chan struct{}),
		stopped: make(chan struct{}),
		checked: make(chan struct{}),
		byName:  map[gateway.StreamID]*stream{},
		notify:  make(chan struct{}, 1),
	}
	if err := o.seed(pr, mark, hasMark); err != nil {
		wdb.Close()
		rdb.Close()
		return nil, nil, err
	}
	if err := o.load(); err != nil {
		wdb.Close()
		rdb.Close()
		return nil, nil, err
	}
	if err := o.openMark(); err != nil {
		// The database keeps its own mark; the sidecar only guards against
		// its loss. Recording goes on.
		log.Warn("outbox high-water mark cannot be written; ids rely on the database alone", "err", err)
	}
	return o, nil, nil
}

func escapePath(p string) string {
	return strings.NewReplacer("?", "%3f", "#", "%23").Replace(p)
}

func (o *Outbox) load() error {
	rows, err := o.wdb.Query(`SELECT id, name, unit, last_seq FROM streams`)
	if err != nil {
		return fmt.Errorf("outbox: load streams: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		s := &stream{}
		if err := rows.Scan(&s.id, &s.name, &s.unit, &s.seq); err != nil {
			return fmt.Errorf("outbox: load streams: %w", err)
		}
		o.byName[s.name] = s
		o.names.Store(s.id, s)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("outbox: load streams: %w", err)
	}
	var hw sql.NullInt64
	err = o.wdb.QueryRow(`SELECT seq FROM sqlite_sequence WHERE name = 'outbox'`).Scan(&hw)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("outbox: load id high-water mark: %w", err)
	}
	o.nextID = hw.Int64 + 1
	o.lastID.Store(hw.Int64)
	tb := o.opts.TailBytes
	if tb == 0 {
		tb = DefaultTailBytes
	}
	// Half for telemetry, a quarter each for events and samples.
	shares := [numClasses]int64{4, 2, 2}
	for c := range o.tails {
		o.tails[c] = newTail(int(max(tb, 0)/8*shares[c]), hw.Int64)
	}
	var n, ev, sm int64
	if err := o.wdb.QueryRow(`SELECT count(*), count(*) FILTER (WHERE class = 1), count(*) FILTER (WHERE class = 2) FROM outbox`).Scan(&n, &ev, &sm); err != nil {
		return fmt.Errorf("outbox: count backlog: %w", err)
	}
	o.backlog.Store(n)
	o.events.Store(ev)
	o.samples.Store(sm)
	for _, p := range []struct {
		stmt **sql.Stmt
		sql  string
	}{
		{&o.delStmt, `DELETE FROM outbox WHERE id BETWEEN ? AND ? AND class = ?`},
		{&o.seqStmt, `UPDATE streams SET last_seq = j.value ->> 1 FROM json_each(?) AS j WHERE streams.id = j.value ->> 0`},
		{&o.pagesStmt, `SELECT page_count, freelist_count FROM pragma_page_count(), pragma_freelist_count()`},
	} {
		if *p.stmt, err = o.wdb.Prepare(p.sql); err != nil {
			return fmt.Errorf("outbox: prepare %q: %w", p.sql, err)
		}
	}
	o.args = make([]any, 0, insertRows*8)

	rows, err = o.wdb.Query(`SELECT class, rows FROM shed`)
	if err != nil {
		return fmt.Errorf("outbox: load shed counts: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var c, k int64
		if err := rows.Scan(&c, &k); err != nil {
			return fmt.Errorf("outbox: load shed counts: %w", err)
		}
		if c >= 0 && c < int64(len(o.shedN)) {
			o.shedN[c].Store(k)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("outbox: load shed counts: %w", err)
	}
	var av int64
	if err := o.wdb.QueryRow(`SELECT page_size, auto_vacuum FROM pragma_page_size(), pragma_auto_vacuum()`).Scan(&o.pageSize, &av); err != nil {
		return fmt.Errorf("outbox: read page size: %w", err)
	}
	o.incremental = av == 2
	o.reserveBytes = o.opts.ReserveBytes
	o.fsBytes = totalBytes(o.path)
	if o.reserveBytes == 0 {
		o.reserveBytes = defaultReserveBytes
		// On a small filesystem (an SD card partition, a tmpfs) a reserve
		// it cannot hold would never be written, and a full disk would
		// then wedge the WAL: scale it to an eighth of the filesystem.
		if total := o.fsBytes; total > 0 {
			o.reserveBytes = max(min(o.reserveBytes, total/8), 256<<10)
		}
	}
	if o.reserveBytes > 0 {
		// One checkpoint's worth of WAL must fit in the reserve.
		ckpt := min(max(o.reserveBytes/2/o.pageSize, 16), 1000)
		if _, err := o.wdb.Exec(fmt.Sprintf(`PRAGMA wal_autocheckpoint = %d`, ckpt)); err != nil {
			return fmt.Errorf("outbox: set wal_autocheckpoint: %w", err)
		}
		o.walUsual = ckpt * o.pageSize
		// A full filesystem at start-up is not an error: the reserve is
		// written back later.
		ok, _ := o.makeReserve()
		o.reserved.Store(ok)
	}
	o.maxPages = noPageLimit
	if o.opts.MaxBytes > 0 {
		o.maxPages = (o.opts.MaxBytes + headroom(o.opts.MaxBytes)) / o.pageSize
	}
	// SQLite never sets it below the current page count.
	if err := o.wdb.QueryRow(fmt.Sprintf(`PRAGMA max_page_count = %d`, o.maxPages)).Scan(&o.maxPages); err != nil {
		return fmt.Errorf("outbox: set max_page_count: %w", err)
	}
	return nil
}

func insertSQL(n int) string {
	var b strings.Builder
	b.WriteString("INSERT INTO outbox(id, stream, seq, class, ts, value, quality, body) VALUES ")
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("(?,?,?,?,?,?,?,?)")
	}
	return b.String()
}

// Append stores recs durably. It assigns each record's ID and Seq in place
// and returns after the transaction holding them has committed. The caller
// must not touch recs until Append returns. Unit and Class come from each
// record; Body is stored for events.
func (o *Outbox) Append(ctx context.Context, recs []gateway.Record) error {
	if len(recs) == 0 {
		return nil
	}
	return o.enqueue(ctx, appendReq{recs: recs})
}

// enqueue hands r to the writer and waits for its commit.
func (o *Outbox) enqueue(ctx context.Context, r appendReq) error {
	if p := o.werr.Load(); p != nil {
		return *p
	}
	r.done = make(chan error, 1)
	o.closeMu.RLock()
	if o.closed {
		o.closeMu.RUnlock()
		return gateway.ErrClosed
	}
	select {
	case o.appends <- r:
		o.closeMu.RUnlock()
	case <-ctx.Done():
		o.closeMu.RUnlock()
		return ctx.Err()
	}
	// Once queued, the writer owns the request until it answers; waiting
	// here regardless of ctx keeps the caller from reusing the slice under
	// it.
	return <-r.done
}

// Ack deletes the rows of class c with lo <= id <= hi, after their delivery
// was acknowledged. Deletes are applied by the writer in its next commit;
// a crash before then only means the rows are delivered again.
func (o *Outbox) Ack(ctx context.Context, c gateway.Class, lo, hi int64) error {
	o.closeMu.RLock()
	defer o.closeMu.RUnlock()
	if o.closed {
		return gateway.ErrClosed
	}
	select {
	case o.acks <- ackReq{class: c, lo: lo, hi: hi}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Notify returns a channel that receives a value after commits that added rows.
// There is one channel per Outbox; use it from one consumer.
func (o *Outbox) Notify() <-chan struct{} { return o.notify }

// LastSeqs returns every stream's last committed sequence number.
func (o *Outbox) LastSeqs(ctx context.Context) (map[gateway.StreamID]uint64, error) {
	rows, err := o.rdb.QueryContext(ctx, `SELECT name, last_seq FROM streams`)
	if err != nil {
		return nil, fmt.Errorf("outbox: last sequences: %w", err)
	}
	defer rows.Close()
	m := map[gateway.StreamID]uint64{}
	for rows.Next() {
		var name string
		var seq uint64
		if err := rows.Scan(&name, &seq); err != nil {
			return nil, fmt.Errorf("outbox: last sequences: %w", err)
		}
		m[gateway.StreamID(name)] = seq
	}
	return m, rows.Err()
}

// Backlog returns the number of rows waiting for delivery.
func (o *Outbox) Backlog() int64 { return o.backlog.Load() }

// LastID returns the highest id committed so far.
func (o *Outbox) LastID() int64 { return o.lastID.Load() }

// Read returns up to limit rows of class c with id > after, oldest first,
// appended to buf[:0].
func (o *Outbox) Read(ctx context.Context, c gateway.Class, after int64, limit int, buf []gateway.Record) (out []gateway.Record, err error) {
	buf = buf[:0]
	if c == gateway.ClassEvent {
		// A shed notice handed out is never rewritten (see shedNotices).
		o.handMu.Lock()
		defer func() {
			if len(out) > 0 {
				o.handed = max(o.handed, out[len(out)-1].ID)
			}
			o.handMu.Unlock()
		}()
	}
	if int(c) < len(o.tails) {
		if out, ok := o.tails[c].read(after, limit, buf); ok {
			return out, nil
		}
	}
	if int(c) >= numClasses {
		return buf, fmt.Errorf("outbox: read: unknown class %d", c)
	}
	// The class is a literal so the planner can use the partial indexes.
	q := fmt.Sprintf(`SELECT id, stream, seq, ts, value, quality, body FROM outbox WHERE id > ? AND class = %d ORDER BY id LIMIT ?`, c)
	if err := ctx.Err(); err != nil {
		return buf, err
	}
	// A bounded query runs without the caller's ctx: go-sqlite3 then steps
	// each row in one cgo call instead of arming cancellation per row.
	rows, err := o.rdb.QueryContext(context.Background(), q, after, limit)
	if err != nil {
		return buf, fmt.Errorf("outbox: read %s after id %d: %w", c, after, err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			r    gateway.Record
			sid  int64
			ts   int64
			q    int64
			body []byte
		)
		if err := rows.Scan(&r.ID, &sid, &r.Seq, &ts, &r.Value, &q, &body); err != nil {
			return buf, fmt.Errorf("outbox: read %s: %w", c, err)
		}
		if v, ok := o.names.Load(sid); ok {
			st := v.(*stream)
			r.Stream, r.Unit = st.name, st.unit
		} else {
			r.Stream = gateway.StreamID(fmt.Sprintf("unknown/%d", sid))
		}
		r.Class = c
		r.Time = time.UnixMicro(ts)
		r.Quality = gateway.Quality(q)
		r.Body = body
		buf = append(buf, r)
	}
	if err := rows.Err(); err != nil {
		return buf, fmt.Errorf("outbox: read %s: %w", c, err)
	}
	return buf, nil
}

// Stats returns the outbox's counters; FileBytes and OldestTime query the database.
func (o *Outbox) Stats(ctx context.Context) (Stats, error) {
	s := Stats{
		Committed: o.commitN.Load(), Acked: o.ackedN.Load(), Commits: o.commits.Load(),
		Backlog: o.backlog.Load(), Events: o.events.Load(), LastID: o.lastID.Load(),
		ShedTelemetry: o.shedN[gateway.ClassTelemetry].Load(), ShedEvents: o.shedN[gateway.ClassEvent].Load(),
		ShedSamples: o.shedN[gateway.ClassSamples].Load(), Samples: o.samples.Load(),
		ShedNotices: o.notices.Load(), FullCommits: o.fullCommits.Load(), FullRefused: o.fullRefused.Load(),
		VacuumedPages: o.vacuumed.Load(), MaxBytes: o.opts.MaxBytes,
		ReserveReleases: o.reserveReleases.Load(), Reserved: o.reserved.Load(),
		Quarantined: o.quarantined.Load(), QuarantinePath: o.quarantinePath, Recovered: o.recovered.Load(),
		Damaged: o.damaged.Load(), IntegrityChecks: o.checks.Load(),
	}
	var pages, free int64
	if err := o.rdb.QueryRowContext(ctx, `SELECT page_count, freelist_count FROM pragma_page_count(), pragma_freelist_count()`).Scan(&pages, &free); err != nil {
		return s, fmt.Errorf("outbox: stats: %w", err)
	}
	s.FileBytes, s.UsedBytes = pages*o.pageSize, (pages-free)*o.pageSize
	if fi, err := os.Stat(o.path + "-wal"); err == nil {
		s.WALBytes = fi.Size()
	}
	var ts sql.NullInt64
	if err := o.rdb.QueryRowContext(ctx, `SELECT ts FROM outbox ORDER BY id LIMIT 1`).Scan(&ts); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return s, fmt.Errorf("outbox: stats: %w", err)
	}
	if ts.Valid {
		s.OldestTime = time.UnixMicro(ts.Int64)
		s.OldestAge = max(time.Since(s.OldestTime), 0)
	}
	return s, nil
}

// Close stops the writer after committing everything already queued, and
// closes the database. It is safe to call more than once.
func (o *Outbox) Close() error {
	o.closeMu.Lock()
	if o.closed {
		o.closeMu.Unlock()
		return nil
	}
	o.closed = true
	close(o.quit)
	o.closeMu.Unlock()
	<-o.stopped
	<-o.checked
	if o.hwm != nil {
		o.hwm.close()
	}
	if c, cerr := o.wdb.Conn(context.Background()); cerr == nil {
		c.Raw(func(any) error { o.closeRaw(); return nil })
		c.Close()
	}
	err := errors.Join(o.delStmt.Close(), o.seqStmt.Close(), o.pagesStmt.Close(), o.rdb.Close())
	// On a full filesystem the checkpoint may not fit; the WAL holds the
	// committed rows all the same and is checkpointed at the next Open.
	if _, cerr := o.wdb.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); cerr != nil && !IsFull(cerr) {
		err = errors.Join(err, fmt.Errorf("outbox: checkpoint: %w", cerr))
	}
	return errors.Join(err, o.wdb.Close())
}

// IsFull reports whether err means the database or filesystem is full
// (SQLITE_FULL: the filesystem, or the max_page_count limit). An Append
// refused for that reason wraps gateway.ErrDiskFull instead.
func IsFull(err error) bool {
	var se sqlite3.Error
	return errors.As(err, &se) && se.Code == sqlite3.ErrFull
}
