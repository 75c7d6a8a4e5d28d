package sdnotify

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// listen opens a unixgram socket standing in for systemd's notify socket.
func listen(t *testing.T, name string) *net.UnixConn {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatalf("listen %s: %v", name, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// recv reads one datagram, failing the test after 5 s.
func recv(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	buf := make([]byte, 4096)
	if err := c.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("read notify socket: %v", err)
	}
	return string(buf[:n])
}

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestFromEnv(t *testing.T) {
	tests := []struct {
		name     string
		env      map[string]string
		enabled  bool
		watchdog time.Duration
		err      string
	}{
		{name: "outside systemd", env: nil},
		{name: "path socket", env: map[string]string{"NOTIFY_SOCKET": "/run/systemd/notify"}, enabled: true},
		{name: "abstract socket", env: map[string]string{"NOTIFY_SOCKET": "@/org/freedesktop/systemd1/notify"}, enabled: true},
		{name: "watchdog", env: map[string]string{"NOTIFY_SOCKET": "/run/n", "WATCHDOG_USEC": "30000000"}, enabled: true, watchdog: 30 * time.Second},
		{name: "watchdog for us", env: map[string]string{"NOTIFY_SOCKET": "/run/n", "WATCHDOG_USEC": "1000", "WATCHDOG_PID": "42"}, enabled: true, watchdog: time.Millisecond},
		{name: "watchdog for another process", env: map[string]string{"NOTIFY_SOCKET": "/run/n", "WATCHDOG_USEC": "1000", "WATCHDOG_PID": "7"}, enabled: true},
		{name: "watchdog without socket", env: map[string]string{"WATCHDOG_USEC": "1000"}},
		{name: "vsock", env: map[string]string{"NOTIFY_SOCKET": "vsock:2:1234"}, err: `NOTIFY_SOCKET="vsock:2:1234"`},
		{name: "bad usec", env: map[string]string{"NOTIFY_SOCKET": "/run/n", "WATCHDOG_USEC": "30s"}, err: `WATCHDOG_USEC="30s"`},
		{name: "zero usec", env: map[string]string{"NOTIFY_SOCKET": "/run/n", "WATCHDOG_USEC": "0"}, err: `WATCHDOG_USEC="0"`},
		{name: "bad pid", env: map[string]string{"NOTIFY_SOCKET": "/run/n", "WATCHDOG_USEC": "1", "WATCHDOG_PID": "x"}, err: `WATCHDOG_PID="x"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := FromEnv(env(tt.env), 42)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want one naming %s", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if n.Enabled() != tt.enabled || n.WatchdogInterval() != tt.watchdog {
				t.Fatalf("enabled %v watchdog %v, want %v %v", n.Enabled(), n.WatchdogInterval(), tt.enabled, tt.watchdog)
			}
		})
	}
	if _, err := FromEnv(env(map[string]string{"NOTIFY_SOCKET": "vsock:1:2"}), 1); !errors.Is(err, ErrUnsupportedSocket) {
		t.Fatalf("vsock: err = %v, want ErrUnsupportedSocket", err)
	}
}

func TestMessages(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify")
	c := listen(t, sock)
	n, err := FromEnv(env(map[string]string{"NOTIFY_SOCKET": sock}), 1)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tests := []struct {
		name string
		send func() error
		want string
	}{
		{"ready", func() error { return n.Ready(ctx) }, "READY=1"},
		{"watchdog", func() error { return n.Watchdog(ctx) }, "WATCHDOG=1"},
		{"stopping", func() error { return n.Stopping(ctx) }, "STOPPING=1"},
		{"status", func() error { return n.Status(ctx, "backlog 12 rows") }, "STATUS=backlog 12 rows"},
		{"status newline", func() error { return n.Status(ctx, "a\nREADY=1") }, "STATUS=a READY=1"},
		{"several", func() error { return n.Notify(ctx, "READY=1", "STATUS=up") }, "READY=1\nSTATUS=up"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.send(); err != nil {
				t.Fatal(err)
			}
			if got := recv(t, c); got != tt.want {
				t.Fatalf("datagram %q, want %q", got, tt.want)
			}
		})
	}
	if err := n.Notify(ctx, "READY"); err == nil {
		t.Fatal("Notify(READY) without = succeeded")
	}
}

func TestAbstractSocket(t *testing.T) {
	name := "@shelfgate-sdnotify-test-" + strings.ReplaceAll(t.Name(), "/", "-") + time.Now().Format("150405.000000000")
	c := listen(t, name)
	n, err := FromEnv(env(map[string]string{"NOTIFY_SOCKET": name}), 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Ready(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := recv(t, c); got != "READY=1" {
		t.Fatalf("datagram %q, want READY=1", got)
	}
}

func TestDisabledIsNoop(t *testing.T) {
	var nilN *Notifier
	n, err := FromEnv(env(nil), 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range []*Notifier{nilN, n, {}} {
		if x.Enabled() || x.WatchdogInterval() != 0 {
			t.Fatalf("%+v: enabled or armed", x)
		}
		if err := x.Ready(context.Background()); err != nil {
			t.Fatalf("disabled Ready: %v", err)
		}
		if err := x.RunWatchdog(context.Background(), func() bool { return true }); err != nil {
			t.Fatalf("disabled RunWatchdog: %v", err)
		}
	}
}

func TestMissingSocketIsAnError(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "gone")
	n, err := FromEnv(env(map[string]string{"NOTIFY_SOCKET": sock}), 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Ready(context.Background()); err == nil || !strings.Contains(err.Error(), sock) {
		t.Fatalf("err = %v, want one naming %s", err, sock)
	}
}

// RunWatchdog pings only after progress: with progress reported once, it
// sends exactly one WATCHDOG=1 however many ticks pass.
func TestRunWatchdogOnlyOnProgress(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify")
	c := listen(t, sock)
	n, err := FromEnv(env(map[string]string{"NOTIFY_SOCKET": sock, "WATCHDOG_USEC": "2000"}), 1)
	if err != nil {
		t.Fatal(err)
	}
	var calls, progress atomic.Int64
	progress.Store(1) // one progress report, then none
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- n.RunWatchdog(ctx, func() bool {
			calls.Add(1)
			return progress.Swap(0) == 1
		})
	}()
	if got := recv(t, c); got != "WATCHDOG=1" {
		t.Fatalf("datagram %q, want WATCHDOG=1", got)
	}
	// Let many more ticks pass without progress; none may send.
	for deadline := time.Now().Add(5 * time.Second); calls.Load() < 20; {
		if time.Now().After(deadline) {
			t.Fatalf("only %d progress checks in 5 s at a 1 ms tick", calls.Load())
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("RunWatchdog: %v", err)
	}
	buf := make([]byte, 64)
	_ = c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if k, err := c.Read(buf); err == nil {
		t.Fatalf("watchdog ping %q sent without progress", buf[:k])
	}
}

func TestRunWatchdogReportsSendError(t *testing.T) {
	dir := t.TempDir()
	n, err := FromEnv(env(map[string]string{"NOTIFY_SOCKET": filepath.Join(dir, "gone"), "WATCHDOG_USEC": "2000"}), 1)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := n.RunWatchdog(ctx, func() bool { return true }); err == nil || ctx.Err() != nil {
		t.Fatalf("RunWatchdog to a missing socket: err %v (ctx %v), want a send error before the timeout", err, ctx.Err())
	}
}
