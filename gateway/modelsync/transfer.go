package modelsync

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

// Transfer is the download of one model file into incoming-<version>.part
// beside the active model. Each block is written at its offset; blocks are
// committed in batches (StoreOptions.CommitBytes, CommitInterval): the file
// is fsync'd, then the batch's indexes are recorded in the state database
// in one transaction. So the database never names a block the file lacks,
// and after a disconnect or a restart only blocks not recorded are
// requested again (a crash costs at most the blocks of two batches). A
// batch commits on its own goroutine while the next blocks are written;
// one commit runs at a time.
type Transfer struct {
	store *Store
	man   *Manifest
	env   []byte

	mu      sync.Mutex
	f       *os.File
	have    []bool // written (recorded or pending)
	n       int
	pending []int     // written, not yet synced and recorded
	pendSz  int       // bytes in pending
	pendAt  time.Time // when the oldest pending block was written

	committing bool          // a batch commits in the background
	commitDone chan struct{} // closed when that commit ends
	commitErr  error         // the last background commit's failure, for the Syncer's poll
}

// BeginTransfer starts the transfer of the file m describes (offered as
// envelope), replacing any other transfer in progress. A transfer of the
// same version and file resumes with its blocks.
func (s *Store) BeginTransfer(ctx context.Context, m *Manifest, envelope []byte) (*Transfer, error) {
	if cur, err := s.ResumeTransfer(ctx); err != nil {
		return nil, err
	} else if cur != nil {
		if cur.man.Version == m.Version && cur.man.SHA256 == m.SHA256 && cur.man.BlockSize == m.BlockSize {
			return cur, nil
		}
		if err := cur.Abort(ctx); err != nil {
			return nil, err
		}
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("modelsync: begin transfer: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DELETE FROM blocks`); err != nil {
		return nil, fmt.Errorf("modelsync: begin transfer: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO transfer(id, version, envelope) VALUES(1, ?, ?)`, int64(m.Version), envelope); err != nil {
		return nil, fmt.Errorf("modelsync: begin transfer: %w", err)
	}
	f, err := os.OpenFile(s.incomingPath(m.Version), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("modelsync: begin transfer: %w", err)
	}
	if err := f.Truncate(m.Length); err != nil {
		f.Close()
		return nil, fmt.Errorf("modelsync: begin transfer: size %s: %w", f.Name(), err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, fmt.Errorf("modelsync: begin transfer: %w", err)
	}
	if err := tx.Commit(); err != nil {
		f.Close()
		return nil, fmt.Errorf("modelsync: begin transfer: %w", err)
	}
	if err := syncDir(s.dir); err != nil {
		f.Close()
		return nil, err
	}
	t := &Transfer{store: s, man: m, env: envelope, f: f, have: make([]bool, m.Blocks)}
	s.track(t)
	return t, nil
}

// ResumeTransfer reopens the transfer recorded in the state database, or
// returns nil when there is none.
func (s *Store) ResumeTransfer(ctx context.Context) (*Transfer, error) {
	var env []byte
	err := s.db.QueryRowContext(ctx, `SELECT envelope FROM transfer WHERE id = 1`).Scan(&env)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("modelsync: read transfer: %w", err)
	}
	e, err := DecodeEnvelope(env)
	if err != nil {
		return nil, fmt.Errorf("modelsync: stored transfer: %w", err)
	}
	m, err := DecodeManifest(e.Manifest)
	if err != nil {
		return nil, fmt.Errorf("modelsync: stored transfer: %w", err)
	}
	f, err := os.OpenFile(s.incomingPath(m.Version), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("modelsync: resume transfer: %w", err)
	}
	if err := f.Truncate(m.Length); err != nil {
		f.Close()
		return nil, fmt.Errorf("modelsync: resume transfer: %w", err)
	}
	t := &Transfer{store: s, man: m, env: env, f: f, have: make([]bool, m.Blocks)}
	rows, err := s.db.QueryContext(ctx, `SELECT idx FROM blocks`)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("modelsync: read blocks: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var i int
		if err := rows.Scan(&i); err != nil {
			f.Close()
			return nil, fmt.Errorf("modelsync: read blocks: %w", err)
		}
		if i >= 0 && i < m.Blocks && !t.have[i] {
			t.have[i] = true
			t.n++
		}
	}
	if err := rows.Err(); err != nil {
		f.Close()
		return nil, fmt.Errorf("modelsync: read blocks: %w", err)
	}
	s.track(t)
	return t, nil
}

// Manifest is the manifest of the file being transferred.
func (t *Transfer) Manifest() *Manifest { return t.man }

// Put stores a decoded block: its version, index and length must be the
// manifest's (ErrNoTransfer, ErrCorruptBlock). It reports whether the block
// was new; a block already held is ignored. The block is written at once
// and committed (fsync, then recorded) with its batch: in the background
// when the batch reaches StoreOptions.CommitBytes or its oldest block is
// older than CommitInterval, when the Syncer polls, and on Close (Stage
// closes).
func (t *Transfer) Put(ctx context.Context, b Block) (bool, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.f == nil {
		return false, fmt.Errorf("modelsync: transfer closed: %w", ErrNoTransfer)
	}
	if b.Version != t.man.Version {
		return false, fmt.Errorf("block %d of version %d, transfer is version %d: %w", b.Index, b.Version, t.man.Version, ErrNoTransfer)
	}
	if b.Index < 0 || b.Index >= t.man.Blocks {
		return false, fmt.Errorf("block index %d, manifest has %d blocks: %w", b.Index, t.man.Blocks, ErrCorruptBlock)
	}
	if want := t.man.blockLen(b.Index); len(b.Data) != want {
		return false, fmt.Errorf("block %d has %d bytes, manifest implies %d: %w", b.Index, len(b.Data), want, ErrCorruptBlock)
	}
	if t.have[b.Index] {
		return false, nil
	}
	if _, err := t.f.WriteAt(b.Data, int64(b.Index)*int64(t.man.BlockSize)); err != nil {
		return false, fmt.Errorf("modelsync: write block %d: %w", b.Index, err)
	}
	t.store.step("block-written")
	if len(t.pending) == 0 {
		t.pendAt = time.Now()
	}
	t.pending = append(t.pending, b.Index)
	t.pendSz += len(b.Data)
	t.have[b.Index] = true
	t.n++
	if t.pendSz >= t.store.opts.CommitBytes || time.Since(t.pendAt) >= t.store.opts.CommitInterval {
		// In the background: the next blocks are written meanwhile (a
		// batch that fills during a commit waits for the next Put, the
		// last blocks for Stage's Close).
		t.commitBackgroundLocked(ctx)
	}
	return true, nil
}

// kick starts a background commit of the pending blocks unless one is
// running; it never waits for an fsync (the Syncer's poll calls it with
// the Syncer locked).
func (t *Transfer) kick(ctx context.Context) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.commitBackgroundLocked(ctx)
}

// commitBackgroundLocked commits the pending blocks on a goroutine of its
// own, unless there are none or a commit is running (t.mu held).
func (t *Transfer) commitBackgroundLocked(ctx context.Context) {
	if len(t.pending) == 0 || t.committing || t.f == nil {
		return
	}
	batch := t.pending
	t.pending, t.pendSz = nil, 0
	done := make(chan struct{})
	t.committing, t.commitDone = true, done
	f := t.f
	go func() {
		err := t.commitCtx(ctx, f, batch)
		t.mu.Lock()
		if err != nil {
			t.unholdLocked(batch)
			t.commitErr = err
		}
		t.committing = false
		close(done)
		t.mu.Unlock()
	}()
}

// takeCommitErr returns and clears the error of a failed background
// commit (its blocks are missing again).
func (t *Transfer) takeCommitErr() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	err := t.commitErr
	t.commitErr = nil
	return err
}

// settleLocked waits for the background commit (t.mu held, released while
// waiting).
func (t *Transfer) settleLocked() {
	for t.committing {
		done := t.commitDone
		t.mu.Unlock()
		<-done
		t.mu.Lock()
	}
}

// commitLocked commits the pending blocks on the caller's goroutine (t.mu
// held, no background commit running). On failure they are forgotten (not
// held): they are requested again.
func (t *Transfer) commitLocked(ctx context.Context) error {
	if len(t.pending) == 0 || t.f == nil {
		return nil
	}
	err := t.commitCtx(ctx, t.f, t.pending)
	if err != nil {
		t.unholdLocked(t.pending)
	}
	t.pending, t.pendSz = t.pending[:0], 0
	return err
}

// unholdLocked marks blocks whose commit failed as missing (t.mu held).
func (t *Transfer) unholdLocked(batch []int) {
	for _, i := range batch {
		if t.have[i] {
			t.have[i] = false
			t.n--
		}
	}
}

// commitCtx fsyncs f, then records batch in one transaction. It needs no
// lock: the file stays open and the batch unchanged until it returns.
func (t *Transfer) commitCtx(ctx context.Context, f *os.File, batch []int) error {
	ctx = context.WithoutCancel(ctx) // a commit once started is finished
	if err := f.Sync(); err != nil {
		return fmt.Errorf("modelsync: sync %d blocks: %w", len(batch), err)
	}
	t.store.step("blocks-synced")
	tx, err := t.store.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("modelsync: record %d blocks: %w", len(batch), err)
	}
	defer tx.Rollback()
	st, err := tx.PrepareContext(ctx, `INSERT OR IGNORE INTO blocks(idx) VALUES(?)`)
	if err != nil {
		return fmt.Errorf("modelsync: record %d blocks: %w", len(batch), err)
	}
	defer st.Close()
	for _, i := range batch {
		if _, err := st.ExecContext(ctx, i); err != nil {
			return fmt.Errorf("modelsync: record block %d: %w", i, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("modelsync: record %d blocks: %w", len(batch), err)
	}
	t.store.step("block-recorded")
	return nil
}

// Missing lists the indexes of blocks not yet received, ascending.
func (t *Transfer) Missing() []int {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []int
	for i, ok := range t.have {
		if !ok {
			out = append(out, i)
		}
	}
	return out
}

// Received is the number of blocks held.
func (t *Transfer) Received() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.n
}

// Complete reports whether every block is held.
func (t *Transfer) Complete() bool { return t.Received() == t.man.Blocks }

// Path is the file the blocks are written to.
func (t *Transfer) Path() string { return t.store.incomingPath(t.man.Version) }

// Reset forgets every block (after the assembled file failed its hash: the
// bad block cannot be told apart, so all are fetched again).
func (t *Transfer) Reset(ctx context.Context) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.settleLocked()
	t.commitErr = nil
	if _, err := t.store.db.ExecContext(ctx, `DELETE FROM blocks`); err != nil {
		return fmt.Errorf("modelsync: reset transfer: %w", err)
	}
	clear(t.have)
	t.n = 0
	t.pending, t.pendSz = t.pending[:0], 0
	return nil
}

// Close commits the blocks not yet recorded, closes the file and keeps
// the transfer for a later resume.
func (t *Transfer) Close() error {
	return t.close(true)
}

func (t *Transfer) close(commit bool) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.settleLocked()
	if t.f == nil {
		return nil
	}
	var err error
	if commit {
		// Not the caller's context: a shutdown's is done, and these
		// blocks are worth keeping.
		err = t.commitLocked(context.Background())
	}
	t.pending, t.pendSz = t.pending[:0], 0
	err = errors.Join(err, t.f.Close())
	t.f = nil
	t.store.untrack(t)
	return err
}

// Abort closes the transfer, removes its file and forgets it.
func (t *Transfer) Abort(ctx context.Context) error {
	t.close(false)
	if err := os.Remove(t.Path()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("modelsync: abort transfer: %w", err)
	}
	return t.store.clearTransfer(ctx)
}

// Stage closes the transfer's file and stages it (Store.Stage).
func (t *Transfer) Stage(ctx context.Context) (*Candidate, error) {
	if err := t.Close(); err != nil {
		return nil, fmt.Errorf("modelsync: close transfer: %w", err)
	}
	return t.store.Stage(ctx, t.Path(), t.man)
}
