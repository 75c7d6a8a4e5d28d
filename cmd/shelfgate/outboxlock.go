package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Errors of claimOutbox, checked with errors.Is.
var (
	errOutboxInUse        = errors.New("outbox in use by another shelfgate")
	errOutboxOtherGateway = errors.New("outbox belongs to another gateway")
)

// outboxClaim is this process's hold on an outbox: an exclusive flock on
// <outbox>.lock, held until release (or the process's death: the kernel
// drops the lock, so a crash never leaves a stale one).
type outboxClaim struct {
	lock *os.File
}

// release drops the lock.
func (c *outboxClaim) release() {
	if c != nil && c.lock != nil {
		c.lock.Close()
		c.lock = nil
	}
}

// claimOutbox makes sure only one gateway uses the outbox at path, and
// only the gateway it belongs to: it takes the exclusive lock on
// <path>.lock (failing at once with errOutboxInUse when another process
// holds it) and compares gatewayID with the id recorded in <path>.gateway,
// recording it on the first start. An outbox recorded for another id is
// refused (errOutboxOtherGateway) unless adopt; adopting records the new
// id. It runs before the outbox is opened, so a refused start touches
// nothing but the lock file.
func claimOutbox(path, gatewayID string, adopt bool) (claim *outboxClaim, adopted string, err error) {
	lockPath := path + ".lock"
	f, err := os.OpenFile(lockPath, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, "", fmt.Errorf("outbox lock %s: %w", lockPath, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(lockPath)
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			who := ""
			if pid := strings.TrimSpace(string(holder)); pid != "" {
				who = " (pid " + pid + ")"
			}
			return nil, "", fmt.Errorf("%w: %s is locked by another shelfgate process%s; one outbox serves one gateway (check for a second instance or service)", errOutboxInUse, path, who)
		}
		return nil, "", fmt.Errorf("outbox lock %s: %w", lockPath, err)
	}
	claim = &outboxClaim{lock: f}
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	idPath := path + ".gateway"
	recorded, err := os.ReadFile(idPath)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		claim.release()
		return nil, "", fmt.Errorf("outbox gateway id %s: %w", idPath, err)
	default:
		prev := strings.TrimSpace(string(recorded))
		if prev == gatewayID {
			return claim, "", nil
		}
		if !adopt {
			claim.release()
			return nil, "", fmt.Errorf("%w: %s holds the backlog of gateway %q (recorded in %s), but this is gateway %q; delivering it would publish that gateway's readings under this id. Point outbox.path elsewhere, or start once with --adopt-outbox to take it over",
				errOutboxOtherGateway, path, prev, idPath, gatewayID)
		}
		adopted = prev
	}
	if err := writeFileAtomic(idPath, []byte(gatewayID+"\n")); err != nil {
		claim.release()
		return nil, "", fmt.Errorf("record gateway id in %s: %w", idPath, err)
	}
	return claim, adopted, nil
}

// writeFileAtomic writes data to path through a synced temporary file
// renamed over it, then syncs the directory: after a crash path holds the
// old content or the new, never a part.
func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
