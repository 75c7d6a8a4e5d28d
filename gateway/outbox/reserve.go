package outbox

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"
)

// defaultReserveBytes is the reserve kept when Options.ReserveBytes is 0.
const defaultReserveBytes = 8 << 20

// reserveRetry is how often the writer tries to take its reserve back after
// giving it up.
const reserveRetry = time.Second

// The reserve is a file of zeros beside the database. When the filesystem
// fills up, the writer deletes it: the space lets the WAL be checkpointed
// into the database file, and the WAL regrow to its usual size, while the
// database stays within the pages it has (see onFull), so acks, shedding
// and the retried commit still go through. From then on the WAL cannot
// count on growing: a commit that finds it full restarts it from its start
// (onFull), and acks are applied in transactions small enough for it
// (applyAcks). The WAL is
// checkpointed before it reaches half the reserve's size
// (wal_autocheckpoint), so that one checkpoint fits. Once there is room
// again the writer writes the reserve back.

// reservePath is the reserve file of the database at path.
func reservePath(path string) string { return path + "-reserve" }

// makeReserve writes the reserve file if it is missing or short, and
// reports whether it is in place. On a full filesystem it leaves no partial
// file behind.
func (o *Outbox) makeReserve() (bool, error) {
	if o.reserveBytes <= 0 {
		return false, nil
	}
	p := reservePath(o.path)
	if fi, err := os.Stat(p); err == nil && fi.Size() >= o.reserveBytes {
		return true, nil
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		return false, fmt.Errorf("outbox: create reserve %s: %w", p, err)
	}
	zeros := make([]byte, 64<<10)
	var werr error
	for off := int64(0); off < o.reserveBytes && werr == nil; off += int64(len(zeros)) {
		_, werr = f.WriteAt(zeros[:min(int64(len(zeros)), o.reserveBytes-off)], off)
	}
	// No fsync: the filesystem accounts for the blocks when they are
	// written (a full one fails the write), which is all the reserve is for.
	if err := errors.Join(werr, f.Close()); err != nil {
		os.Remove(p)
		return false, fmt.Errorf("outbox: write reserve %s: %w", p, err)
	}
	return true, nil
}

// onFull is the writer's response to a commit that found the database or
// the filesystem full, before it retries. On a full filesystem, the first
// time, it gives the reserve's space back to the filesystem, checkpoints the
// WAL into the database file and truncates it, and then caps the database at
// the pages it has (max_page_count): from then on rows go into pages freed
// by acks and shedding, and no commit needs more room from the filesystem
// than the WAL file already has, until the reserve could be written again
// (restoreReserve). The WAL file cannot grow then, so every later time (and
// on a full filesystem without a reserve) it checkpoints with RESTART,
// waiting for readers to leave the WAL: the retry then writes the WAL from
// its start, into blocks the file already has, rather than after frames a
// reader kept from being checkpointed. Without that, nothing would commit
// again, so no automatic checkpoint would ever run again either. It reports
// whether it made room in the WAL (false: the budget's max_page_count is
// what is full, not the filesystem).
func (o *Outbox) onFull() (walRoom bool) {
	if !o.capped {
		avail := availBytes(o.path)
		if avail >= 0 && avail >= max(o.reserveBytes, 1<<20) {
			return false // the budget's own max_page_count, not the filesystem
		}
		o.fullFilesystem(avail)
		if o.reserved.Load() {
			if err := os.Remove(reservePath(o.path)); err == nil || errors.Is(err, fs.ErrNotExist) {
				o.reserved.Store(false)
				o.reserveReleases.Add(1)
				o.log.Warn("outbox reserve given up to the full filesystem", "reserve_bytes", o.reserveBytes,
					"available_bytes", availBytes(o.path), "releases", o.reserveReleases.Load())
			}
		}
		if o.reserveBytes > 0 && !o.reserved.Load() {
			o.checkpoint(checkpointTruncate)
			var pages int64
			if err := o.wdb.QueryRow(`PRAGMA page_count`).Scan(&pages); err == nil {
				if _, err := o.wdb.Exec(fmt.Sprintf(`PRAGMA max_page_count = %d`, pages)); err == nil {
					o.capped = true
					o.reserveTry = time.Now()
					return true
				}
			}
		}
	}
	o.checkpoint(checkpointRestart)
	return true
}

// restoreReserve writes the reserve back, at most every reserveRetry, once
// it is missing; when that succeeds there is room again, and the cap set by
// onFull is lifted. The room may be held by the WAL file, which is not
// truncated while the reserve is missing (maintain) and may be larger than
// it needs to be: after one large transaction, or after readers kept it
// from being restarted. It is truncated first when the room it gives back
// holds the reserve and still leaves the WAL twice its usual size (the
// automatic checkpoint runs after the commit that crossed it).
func (o *Outbox) restoreReserve() {
	if o.reserveBytes <= 0 || o.reserved.Load() || time.Since(o.reserveTry) < reserveRetry {
		return
	}
	o.reserveTry = time.Now()
	// Room for the reserve and then some, so that writing it never leaves
	// the next commit without room for its WAL.
	need := o.reserveBytes + 2*o.walUsual
	if avail := availBytes(o.path); avail >= 0 && avail < need {
		fi, err := os.Stat(o.path + "-wal")
		if err != nil || avail+fi.Size() < need+o.walUsual {
			return // it would not fit: spare the disk the writes
		}
		o.checkpoint(checkpointTruncate)
		if avail = availBytes(o.path); avail >= 0 && avail < need {
			return
		}
	}
	ok, _ := o.makeReserve()
	if !ok {
		return
	}
	o.reserved.Store(true)
	o.log.Info("outbox reserve re-created", "reserve_bytes", o.reserveBytes, "available_bytes", availBytes(o.path))
	o.spaceReturned(availBytes(o.path))
	if o.capped {
		if _, err := o.wdb.Exec(fmt.Sprintf(`PRAGMA max_page_count = %d`, o.maxPages)); err == nil {
			o.capped = false
		}
	}
}
