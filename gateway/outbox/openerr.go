package outbox

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
)

// diagnoseOpen checks, before SQLite is asked, that the outbox at path can
// be opened for writing, and says what is wrong if not: a missing
// directory, a read-only filesystem, permissions (with the user and the
// mode), or no space. SQLite itself reports all of these as "unable to
// open database file".
func diagnoseOpen(path string) error {
	dir := filepath.Dir(path)
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("outbox: open %s: directory %s does not exist", path, dir)
	case err != nil:
		return fmt.Errorf("outbox: open %s: %w", path, explainErrno(dir, err))
	case !fi.IsDir():
		return fmt.Errorf("outbox: open %s: %s is not a directory", path, dir)
	}
	// The WAL and shared-memory files are created beside the database.
	if err := syscall.Access(dir, 2 /* W_OK */); err != nil {
		return fmt.Errorf("outbox: open %s: cannot create files in %s: %w", path, dir, explainErrno(dir, err))
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err == nil {
		f.Close()
		return nil
	}
	if errors.Is(err, fs.ErrNotExist) {
		return nil // created by SQLite
	}
	return fmt.Errorf("outbox: open %s: %w", path, explainErrno(path, err))
}

// explainErrno turns an errno from opening p into words, with the user and
// p's mode and owner for permission errors.
func explainErrno(p string, err error) error {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return err
	}
	switch errno {
	case syscall.EROFS:
		return fmt.Errorf("read-only filesystem (%w)", err)
	case syscall.EACCES, syscall.EPERM:
		who := strconv.Itoa(os.Geteuid())
		if u, uerr := user.Current(); uerr == nil {
			who = u.Username + " (uid " + who + ")"
		}
		mode := "unknown mode"
		if fi, serr := os.Stat(p); serr == nil {
			mode = fi.Mode().String()
			if st, ok := fi.Sys().(*syscall.Stat_t); ok {
				mode += fmt.Sprintf(", owner uid %d gid %d", st.Uid, st.Gid)
			}
		}
		return fmt.Errorf("permission denied: user %s may not write %s (%s) (%w)", who, p, mode, err)
	case syscall.ENOSPC:
		return fmt.Errorf("no space left on the filesystem (%w)", err)
	}
	return err
}

// explainOpen wraps an error SQLite gave while opening or first writing
// the outbox with the path and, for a full filesystem, the space left.
func explainOpen(path string, err error) error {
	if IsFull(err) || errors.Is(err, syscall.ENOSPC) {
		return fmt.Errorf("outbox: open %s: no space left on the filesystem (%d bytes available): %w", path, max(availBytes(path), 0), err)
	}
	if isDamageErr(err) {
		return fmt.Errorf("outbox: open %s: %w: %v", path, ErrCorrupt, err)
	}
	return fmt.Errorf("outbox: open %s: %w", path, err)
}
