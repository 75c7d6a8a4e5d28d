//go:build !(linux || darwin || freebsd || netbsd || openbsd)

package outbox

// availBytes returns -1: the free space is unknown on this system.
func availBytes(string) int64 { return -1 }

// totalBytes returns -1: the filesystem's size is unknown on this system.
func totalBytes(string) int64 { return -1 }
