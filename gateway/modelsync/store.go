package modelsync

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "github.com/mattn/go-sqlite3" // state database
	"github.com/shelfgate/shelfgate/model"
)

// Files in the model directory.
const (
	ActiveFile   = "active.sgm"   // the model that runs
	PreviousFile = "previous.sgm" // the rollback slot
	StateFile    = "state.db"     // SQLite: highest version, transfer, rejected files
	previousTmp  = "previous.tmp" // hard link of active.sgm while it becomes previous.sgm
	stagingGlob  = "staging-*.tmp"
	incomingPfx  = "incoming-" // incoming-<version>.part: a transfer's file, written at offsets
	incomingSfx  = ".part"
)

const schema = `
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL) STRICT;
CREATE TABLE IF NOT EXISTS transfer(
	id INTEGER PRIMARY KEY CHECK (id = 1),
	version INTEGER NOT NULL,
	envelope BLOB NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS blocks(idx INTEGER PRIMARY KEY) STRICT;
CREATE TABLE IF NOT EXISTS rejected(sha256 TEXT PRIMARY KEY, reason TEXT NOT NULL) STRICT;
`

// StoreOptions configures a Store.
type StoreOptions struct {
	// Decode is how every model file is loaded: TrustedKeys (a signature
	// by one of them is required when not empty), MaxSize and the compute
	// budgets MaxMACs and MaxGoldenMACs.
	Decode model.DecodeOptions
	// Live is where the running model is published; the classifier loads
	// it for every window. Nil means the Store keeps its own.
	Live *atomic.Pointer[model.Model]
	// CommitBytes is how many bytes of received blocks a transfer writes
	// before it fsyncs its file and commits their indexes to the state
	// database in one transaction; DefaultCommitBytes. A block is always
	// on disk before it is recorded; a crash loses at most the blocks not
	// yet recorded, which are requested again.
	CommitBytes int
	// CommitInterval is the longest a received block waits for its
	// commit while more blocks arrive; DefaultCommitInterval. (The
	// Syncer's poll commits blocks of a transfer that went quiet.)
	CommitInterval time.Duration

	// crash, when set (tests only), is called at each step of an install
	// with the step's name.
	crash func(point string)
}

// Defaults of StoreOptions.
const (
	DefaultCommitBytes    = 1 << 20
	DefaultCommitInterval = 250 * time.Millisecond
)

// Store owns the model directory: the active model, the rollback slot, the
// highest version ever installed and the state of the transfer in
// progress. Its methods are safe for concurrent use.
type Store struct {
	dir  string
	db   *sql.DB
	opts StoreOptions
	live *atomic.Pointer[model.Model]

	mu        sync.Mutex
	activeVer uint64
	prevVer   uint64
	highest   uint64
	recovered []string               // what OpenStore repaired, for the status
	open      map[*Transfer]struct{} // transfers with an open file: Close commits them
}

// OpenStore opens (creating) the model directory dir and recovers from an
// interrupted install: leftover staging files and links are removed, an
// incoming file no transfer refers to is removed, and when active.sgm does
// not load but previous.sgm does, the previous model becomes active again.
// The highest installed version is the maximum of the persisted one and
// the versions of both slots.
func OpenStore(ctx context.Context, dir string, opts StoreOptions) (*Store, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("modelsync: create model directory: %w", err)
	}
	q := url.Values{}
	q.Set("_journal_mode", "WAL")
	q.Set("_synchronous", "FULL")
	q.Set("_busy_timeout", "5000")
	q.Set("_txlock", "immediate")
	path := filepath.Join(dir, StateFile)
	// A file: URI: '%', '?' and '#' in the path are escaped (a '#' cut
	// the path short, so two directories shared one database).
	esc := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23")
	db, err := sql.Open("sqlite3", "file:"+esc.Replace(path)+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("modelsync: open %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("modelsync: create schema in %s: %w", path, err)
	}
	if opts.CommitBytes <= 0 {
		opts.CommitBytes = DefaultCommitBytes
	}
	if opts.CommitInterval <= 0 {
		opts.CommitInterval = DefaultCommitInterval
	}
	s := &Store{dir: dir, db: db, opts: opts, live: opts.Live, open: map[*Transfer]struct{}{}}
	if s.live == nil {
		s.live = new(atomic.Pointer[model.Model])
	}
	if err := s.recover(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

func (s *Store) path(name string) string { return filepath.Join(s.dir, name) }

func (s *Store) recover(ctx context.Context) error {
	tmps, _ := filepath.Glob(s.path(stagingGlob))
	tmps = append(tmps, s.path(previousTmp))
	for _, p := range tmps {
		if err := os.Remove(p); err == nil {
			s.recovered = append(s.recovered, "removed "+filepath.Base(p))
		} else if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("modelsync: remove leftover %s: %w", p, err)
		}
	}
	if !exists(s.path(ActiveFile)) && exists(s.path(PreviousFile)) {
		if err := os.Rename(s.path(PreviousFile), s.path(ActiveFile)); err != nil {
			return fmt.Errorf("modelsync: restore previous model: %w", err)
		}
		s.recovered = append(s.recovered, "no active model: previous.sgm restored")
	}
	if exists(s.path(ActiveFile)) {
		m, err := s.load(ctx, s.path(ActiveFile))
		if err != nil && exists(s.path(PreviousFile)) {
			prev, perr := s.load(ctx, s.path(PreviousFile))
			if perr == nil {
				if rerr := os.Rename(s.path(PreviousFile), s.path(ActiveFile)); rerr != nil {
					return fmt.Errorf("modelsync: roll back to previous model: %w", rerr)
				}
				s.recovered = append(s.recovered, fmt.Sprintf("active model does not load (%v): rolled back to version %d", err, prev.Version))
				m, err = prev, nil
			}
		}
		if err != nil {
			s.recovered = append(s.recovered, fmt.Sprintf("active model does not load: %v", err))
		} else {
			s.live.Store(m)
			s.activeVer = m.Version
		}
	}
	if exists(s.path(PreviousFile)) {
		if v, err := fileVersion(s.path(PreviousFile)); err == nil {
			s.prevVer = v
		}
	}
	var h int64
	err := s.db.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'highest'`).Scan(&h)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("modelsync: read highest version: %w", err)
	}
	s.highest = max(uint64(h), s.activeVer, s.prevVer)
	if err := s.setHighest(ctx, s.highest); err != nil {
		return err
	}
	// A transfer at or below the highest version was installed (or can
	// no longer be): forget it. Incoming files of no transfer go.
	var tv int64
	err = s.db.QueryRowContext(ctx, `SELECT version FROM transfer WHERE id = 1`).Scan(&tv)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		tv = 0
	case err != nil:
		return fmt.Errorf("modelsync: read transfer: %w", err)
	case uint64(tv) <= s.highest:
		if err := s.clearTransfer(ctx); err != nil {
			return err
		}
		tv = 0
	}
	parts, _ := filepath.Glob(s.path(incomingPfx + "*" + incomingSfx))
	for _, p := range parts {
		if tv != 0 && p == s.incomingPath(uint64(tv)) {
			continue
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("modelsync: remove stale %s: %w", p, err)
		}
		s.recovered = append(s.recovered, "removed "+filepath.Base(p))
	}
	if tv != 0 && !exists(s.incomingPath(uint64(tv))) {
		// Blocks are recorded only after their bytes are synced, so a
		// missing file means no block survived.
		if _, err := s.db.ExecContext(ctx, `DELETE FROM blocks`); err != nil {
			return fmt.Errorf("modelsync: reset blocks: %w", err)
		}
	}
	return syncDir(s.dir)
}

// load reads and verifies a model file with the store's decode options.
func (s *Store) load(ctx context.Context, path string) (*model.Model, error) {
	data, err := s.read(path)
	if err != nil {
		return nil, err
	}
	return s.decode(ctx, data)
}

// read reads a model file into a buffer of its size, at most one byte
// over the decode size limit (the decoder then refuses it as too large).
// One read, no growing buffer: for a 5 MB model that growth cost as much
// as the file's SHA-256.
func (s *Store) read(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", filepath.Base(path), err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat %s: %w", filepath.Base(path), err)
	}
	limit := int64(s.opts.Decode.MaxSize)
	if limit <= 0 {
		limit = model.DefaultMaxSize
	}
	data := make([]byte, min(st.Size(), limit+1))
	if _, err := io.ReadFull(f, data); err != nil {
		return nil, fmt.Errorf("read %s: %w", filepath.Base(path), err)
	}
	return data, nil
}

func (s *Store) decode(ctx context.Context, data []byte) (*model.Model, error) {
	return model.DecodeContext(ctx, data, s.opts.Decode)
}

func (s *Store) incomingPath(version uint64) string {
	return s.path(fmt.Sprintf("%s%d%s", incomingPfx, version, incomingSfx))
}

// Close commits the blocks open transfers received and not yet recorded,
// closes their files and the state database.
func (s *Store) Close() error {
	s.mu.Lock()
	open := make([]*Transfer, 0, len(s.open))
	for t := range s.open {
		open = append(open, t)
	}
	s.mu.Unlock()
	var errs []error
	for _, t := range open {
		errs = append(errs, t.Close())
	}
	errs = append(errs, s.db.Close())
	return errors.Join(errs...)
}

// track and untrack keep the set of transfers with an open file.
func (s *Store) track(t *Transfer) {
	s.mu.Lock()
	s.open[t] = struct{}{}
	s.mu.Unlock()
}

func (s *Store) untrack(t *Transfer) {
	s.mu.Lock()
	delete(s.open, t)
	s.mu.Unlock()
}

// Dir is the model directory.
func (s *Store) Dir() string { return s.dir }

// activeSHA256 is the SHA-256 of the active model file, hex.
func (s *Store) activeSHA256() (string, error) {
	f, err := os.Open(filepath.Join(s.dir, ActiveFile))
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hash %s: %w", f.Name(), err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Active returns the running model and its version; nil and 0 before any
// model was installed.
func (s *Store) Active() (*model.Model, uint64) {
	m := s.live.Load()
	if m == nil {
		return nil, 0
	}
	return m, m.Version
}

// Live is the pointer the classifier reads the running model from.
func (s *Store) Live() *atomic.Pointer[model.Model] { return s.live }

// Previous is the version in the rollback slot, 0 when empty.
func (s *Store) Previous() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.prevVer
}

// Highest is the highest version this gateway ever installed; offers must
// be above it.
func (s *Store) Highest() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.highest
}

// Recovered lists what OpenStore repaired (removed leftovers, a restored or
// rolled-back model, a model that does not load).
func (s *Store) Recovered() []string { return append([]string(nil), s.recovered...) }

func (s *Store) setHighest(ctx context.Context, v uint64) error {
	if _, err := s.db.ExecContext(ctx, `INSERT INTO meta(key, value) VALUES('highest', ?)
		ON CONFLICT(key) DO UPDATE SET value = max(value, excluded.value)`, int64(v)); err != nil {
		return fmt.Errorf("modelsync: persist highest version %d: %w", v, err)
	}
	return nil
}

// Candidate is a verified model file waiting to be promoted.
type Candidate struct {
	Model    *model.Model
	Manifest *Manifest // nil for a file imported by hand
	// Note is what the Evaluator says of the candidate (its shadow
	// agreement and latency); a promoted candidate's note is reported in
	// Status.Note.
	Note string
	path string
}

// Stage verifies the complete file at path as the model m describes (m may
// be nil for a local import): its SHA-256 and length (ErrHashMismatch), then
// model.LoadContext with the trusted keys and compute budgets (ErrModel or
// ErrTooLarge, ErrBadSignature for a missing, bad or untrusted signature,
// wrapping the model sentinel), then name and version against m and the
// version against the highest installed (ErrRollback).
func (s *Store) Stage(ctx context.Context, path string, m *Manifest) (*Candidate, error) {
	s.step("stage-start")
	data, err := s.read(path)
	if err != nil {
		return nil, fmt.Errorf("read staged file: %w", err)
	}
	if m != nil {
		if err := checkData(data, m); err != nil {
			return nil, err
		}
	}
	s.step("stage-hashed")
	mod, err := s.decode(ctx, data)
	if err != nil {
		switch {
		case errors.Is(err, model.ErrTooLarge):
			return nil, fmt.Errorf("%w: %w", ErrTooLarge, err)
		case errors.Is(err, model.ErrBadSignature), errors.Is(err, model.ErrUnsigned), errors.Is(err, model.ErrUntrustedKey):
			return nil, fmt.Errorf("%w: %w", ErrBadSignature, err)
		case ctx.Err() != nil:
			return nil, err
		}
		return nil, fmt.Errorf("%w: %w", ErrModel, err)
	}
	if m != nil && (mod.Name != m.Name || mod.Version != m.Version) {
		return nil, fmt.Errorf("file holds model %q version %d, manifest says %q version %d: %w", mod.Name, mod.Version, m.Name, m.Version, ErrModel)
	}
	if h := s.Highest(); mod.Version <= h {
		return nil, fmt.Errorf("model version %d, highest installed %d: %w", mod.Version, h, ErrRollback)
	}
	return &Candidate{Model: mod, Manifest: m, path: path}, nil
}

// checkData compares the staged file's length and SHA-256 with the
// manifest's.
func checkData(data []byte, m *Manifest) error {
	if int64(len(data)) != m.Length {
		return fmt.Errorf("staged file: read %d bytes, manifest length %d: %w", len(data), m.Length, ErrHashMismatch)
	}
	sum := sha256.Sum256(data)
	if got := hex.EncodeToString(sum[:]); got != m.SHA256 {
		return fmt.Errorf("staged file SHA-256 %s, manifest %s: %w", got, m.SHA256, ErrHashMismatch)
	}
	return nil
}

// Import copies the model file at src into the directory as a staging
// file and stages it (the path for a first model or a manual install).
func (s *Store) Import(ctx context.Context, src string) (*Candidate, error) {
	in, err := os.Open(src)
	if err != nil {
		return nil, fmt.Errorf("modelsync: import: %w", err)
	}
	defer in.Close()
	out, err := os.CreateTemp(s.dir, stagingGlob)
	if err != nil {
		return nil, fmt.Errorf("modelsync: import: %w", err)
	}
	tmp := out.Name()
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		os.Remove(tmp)
		return nil, fmt.Errorf("modelsync: import %s: %w", src, err)
	}
	if err := closeSynced(out); err != nil {
		os.Remove(tmp)
		return nil, fmt.Errorf("modelsync: import %s: %w", src, err)
	}
	c, err := s.Stage(ctx, tmp, nil)
	if err != nil {
		os.Remove(tmp)
		return nil, fmt.Errorf("modelsync: import %s: %w", src, err)
	}
	return c, nil
}

// Discard removes a candidate that will not be promoted.
func (s *Store) Discard(c *Candidate) error {
	if err := os.Remove(c.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("modelsync: discard candidate: %w", err)
	}
	return nil
}

// Promote installs c as the active model: the active file becomes the
// rollback slot (through a hard link, so active.sgm exists at every
// instant), c's file is renamed over active.sgm, the directory is synced,
// the highest version is persisted, the transfer forgotten, and the live
// pointer swapped. A crash at any point leaves the old or the new model
// active (OpenStore cleans up the rest).
func (s *Store) Promote(ctx context.Context, c *Candidate) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.Model.Version <= s.highest {
		return fmt.Errorf("modelsync: promote version %d, highest installed %d: %w", c.Model.Version, s.highest, ErrRollback)
	}
	s.step("promote-start")
	active, prev, prevTmp := s.path(ActiveFile), s.path(PreviousFile), s.path(previousTmp)
	hadActive := exists(active)
	if hadActive {
		os.Remove(prevTmp)
		if err := os.Link(active, prevTmp); err != nil {
			return fmt.Errorf("modelsync: promote: keep previous model: %w", err)
		}
		s.step("previous-linked")
		if err := os.Rename(prevTmp, prev); err != nil {
			return fmt.Errorf("modelsync: promote: keep previous model: %w", err)
		}
		// rename(2) does nothing when both names are links to one file
		// (a promote killed after this step left previous.sgm = active.sgm).
		if err := os.Remove(prevTmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("modelsync: promote: %w", err)
		}
		s.step("previous-renamed")
		if err := syncDir(s.dir); err != nil {
			return fmt.Errorf("modelsync: promote: %w", err)
		}
	}
	if err := os.Rename(c.path, active); err != nil {
		return fmt.Errorf("modelsync: promote: install %s: %w", filepath.Base(c.path), err)
	}
	s.step("active-renamed")
	if err := syncDir(s.dir); err != nil {
		return fmt.Errorf("modelsync: promote: %w", err)
	}
	s.step("dir-synced")
	if hadActive {
		s.prevVer = s.activeVer
	}
	s.activeVer = c.Model.Version
	s.highest = c.Model.Version
	s.live.Store(c.Model)
	// One transaction (one fsync of the WAL): the highest version and,
	// for a transfer, forgetting it. On failure the file is installed
	// anyway; OpenStore recomputes highest from it and drops the transfer.
	if err := s.installed(ctx, c.Model.Version, c.Manifest != nil); err != nil {
		return err
	}
	s.step("committed")
	return nil
}

// Rollback makes the previous model active again. The previous file is
// loaded and verified first; if that fails the active model stays. The
// slot is empty afterwards; the highest version stays, so the rolled-back
// version is never accepted again.
func (s *Store) Rollback(ctx context.Context) (*model.Model, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	prev := s.path(PreviousFile)
	if !exists(prev) {
		return nil, fmt.Errorf("modelsync: rollback: %w", ErrNoPrevious)
	}
	m, err := s.load(ctx, prev)
	if err != nil {
		return nil, fmt.Errorf("modelsync: rollback: previous model does not load, active stays: %w: %w", ErrModel, err)
	}
	s.step("rollback-start")
	if err := os.Rename(prev, s.path(ActiveFile)); err != nil {
		return nil, fmt.Errorf("modelsync: rollback: %w", err)
	}
	s.step("rollback-renamed")
	if err := syncDir(s.dir); err != nil {
		return nil, fmt.Errorf("modelsync: rollback: %w", err)
	}
	s.activeVer, s.prevVer = m.Version, 0
	s.live.Store(m)
	return m, nil
}

func (s *Store) step(point string) {
	if s.opts.crash != nil {
		s.opts.crash(point)
	}
}

// Rejected records that the file with this SHA-256 was refused, so a
// retained offer of it is not downloaded again.
func (s *Store) reject(ctx context.Context, sha, reason string) error {
	_, err := s.db.ExecContext(ctx, `INSERT OR REPLACE INTO rejected(sha256, reason) VALUES(?, ?)`, sha, reason)
	if err != nil {
		return fmt.Errorf("modelsync: record rejection: %w", err)
	}
	return nil
}

// rejectedReason returns why the file with this SHA-256 was refused, or "".
func (s *Store) rejectedReason(ctx context.Context, sha string) (string, error) {
	var r string
	err := s.db.QueryRowContext(ctx, `SELECT reason FROM rejected WHERE sha256 = ?`, sha).Scan(&r)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("modelsync: read rejections: %w", err)
	}
	return r, nil
}

// installed persists v as the highest version installed and, with
// transfer, forgets the transfer, in one transaction.
func (s *Store) installed(ctx context.Context, v uint64, transfer bool) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("modelsync: persist highest version %d: %w", v, err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `INSERT INTO meta(key, value) VALUES('highest', ?)
		ON CONFLICT(key) DO UPDATE SET value = max(value, excluded.value)`, int64(v)); err != nil {
		return fmt.Errorf("modelsync: persist highest version %d: %w", v, err)
	}
	if transfer {
		for _, q := range []string{`DELETE FROM transfer`, `DELETE FROM blocks`} {
			if _, err := tx.ExecContext(ctx, q); err != nil {
				return fmt.Errorf("modelsync: clear transfer: %w", err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("modelsync: persist highest version %d: %w", v, err)
	}
	return nil
}

func (s *Store) clearTransfer(ctx context.Context) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("modelsync: clear transfer: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DELETE FROM transfer`); err != nil {
		return fmt.Errorf("modelsync: clear transfer: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM blocks`); err != nil {
		return fmt.Errorf("modelsync: clear transfer: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("modelsync: clear transfer: %w", err)
	}
	return nil
}

// fileVersion reads the model version from a file's header and body
// without verifying it (for the rollback slot's status).
func fileVersion(path string) (uint64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var b [24]byte
	if _, err := io.ReadFull(f, b[:]); err != nil {
		return 0, err
	}
	if string(b[:8]) != model.Magic {
		return 0, fmt.Errorf("%s: not a model file", path)
	}
	return uint64(b[16]) | uint64(b[17])<<8 | uint64(b[18])<<16 | uint64(b[19])<<24 |
		uint64(b[20])<<32 | uint64(b[21])<<40 | uint64(b[22])<<48 | uint64(b[23])<<56, nil
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

func closeSynced(f *os.File) error {
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
