//go:build linux || darwin || freebsd || netbsd || openbsd

package outbox

import (
	"path/filepath"
	"syscall"
)

// availBytes returns the bytes available to unprivileged users on the
// filesystem holding path, or -1 if unknown.
func availBytes(path string) int64 {
	var fs syscall.Statfs_t
	if err := syscall.Statfs(filepath.Dir(path), &fs); err != nil {
		return -1
	}
	return int64(fs.Bavail) * int64(fs.Bsize)
}

// totalBytes returns the size of the filesystem holding path, or -1 if unknown.
func totalBytes(path string) int64 {
	var fs syscall.Statfs_t
	if err := syscall.Statfs(filepath.Dir(path), &fs); err != nil {
		return -1
	}
	return int64(fs.Blocks) * int64(fs.Bsize)
}
