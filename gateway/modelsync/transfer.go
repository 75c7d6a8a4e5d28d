package modelsync

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"sync"
)

// Transfer is the download of one model file into incoming-<version>.part
// beside the active model. Each block is written at its offset and synced
// before its index is recorded in the state database, so after a
// disconnect or a restart only blocks not recorded are requested again.
type Transfer struct {
	store *Store
	man   *Manifest
	env   []byte

	mu   sync.Mutex
	f    *os.File
	have []bool
	n    int
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
	return &Transfer{store: s, man: m, env: envelope, f: f, have: make([]bool, m.Blocks)}, nil
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
	return t, nil
}

// Manifest is the manifest of the file being transferred.
func (t *Transfer) Manifest() *Manifest { return t.man }

// Put stores a decoded block: its version, index and length must be the
// manifest's (ErrNoTransfer, ErrCorruptBlock). It reports whether the block
// was new; a block already held is ignored.
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
	if err := t.f.Sync(); err != nil {
		return false, fmt.Errorf("modelsync: sync block %d: %w", b.Index, err)
	}
	if _, err := t.store.db.ExecContext(ctx, `INSERT OR IGNORE INTO blocks(idx) VALUES(?)`, b.Index); err != nil {
		return false, fmt.Errorf("modelsync: record block %d: %w", b.Index, err)
	}
	t.have[b.Index] = true
	t.n++
	t.store.step("block-recorded")
	return true, nil
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
	if _, err := t.store.db.ExecContext(ctx, `DELETE FROM blocks`); err != nil {
		return fmt.Errorf("modelsync: reset transfer: %w", err)
	}
	clear(t.have)
	t.n = 0
	return nil
}

// Close closes the file and keeps the transfer for a later resume.
func (t *Transfer) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.f == nil {
		return nil
	}
	err := t.f.Close()
	t.f = nil
	return err
}

// Abort closes the transfer, removes its file and forgets it.
func (t *Transfer) Abort(ctx context.Context) error {
	t.Close()
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
