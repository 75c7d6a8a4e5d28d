package outbox

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestOpenErrorMissingDirectory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope", "outbox.db")
	_, err := Open(path, Options{})
	if err == nil || !strings.Contains(err.Error(), "does not exist") || !strings.Contains(err.Error(), path) {
		t.Fatalf("err = %v", err)
	}
}

func TestOpenErrorPermissionDenied(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root may write anywhere: permissions cannot be denied here")
	}
	dir := filepath.Join(t.TempDir(), "locked")
	os.Mkdir(dir, 0o555)
	path := filepath.Join(dir, "outbox.db")
	_, err := Open(path, Options{})
	if err == nil || !strings.Contains(err.Error(), "permission denied: user") || !strings.Contains(err.Error(), "dr-xr-xr-x") {
		t.Fatalf("err = %v", err)
	}
}

func TestOpenErrorReadOnlyFilesystem(t *testing.T) {
	dir := onTinyFilesystem(t, 1<<20)
	if dir == "" {
		return
	}
	path := filepath.Join(dir, "outbox.db")
	o, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	o.Close()
	if out, err := exec.Command("mount", "-o", "remount,ro", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot remount read-only: %v %s", err, out)
	}
	_, err = Open(path, Options{})
	if err == nil || !strings.Contains(err.Error(), "read-only filesystem") || !strings.Contains(err.Error(), path) {
		t.Fatalf("err = %v", err)
	}
}

func TestOpenErrorNoSpace(t *testing.T) {
	dir := onTinyFilesystem(t, 1<<20)
	if dir == "" {
		return
	}
	// Fill the filesystem.
	f, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			break
		}
	}
	f.Close()
	path := filepath.Join(dir, "outbox.db")
	_, err = Open(path, Options{})
	if err == nil || !strings.Contains(err.Error(), "no space") || !strings.Contains(err.Error(), path) {
		t.Fatalf("err = %v", err)
	}
}

// TestPermissionErrorNamesUserAndMode checks the wording of a permission
// error where the test cannot provoke one (as root).
func TestPermissionErrorNamesUserAndMode(t *testing.T) {
	dir := t.TempDir()
	os.Chmod(dir, 0o555)
	defer os.Chmod(dir, 0o755)
	err := explainErrno(dir, &os.PathError{Op: "open", Path: dir, Err: syscall.EACCES})
	msg := err.Error()
	if !strings.Contains(msg, "permission denied: user ") || !strings.Contains(msg, "dr-xr-xr-x") || !strings.Contains(msg, "owner uid") {
		t.Fatalf("message %q", msg)
	}
}
