// Package sdnotify tells systemd about the service's state over the
// sd_notify(3) protocol: READY=1 once the service is up, WATCHDOG=1 while it
// makes progress, STATUS= for `systemctl status`, STOPPING=1 on shutdown.
//
// It is a small stdlib client: one datagram per notification, written to
// the unix datagram socket named by NOTIFY_SOCKET (a path, or an abstract
// socket written "@name"). Outside systemd, or in a unit without
// Type=notify, NOTIFY_SOCKET is unset and every method of the Notifier that
// FromEnv returns does nothing and returns nil, as sd_notify does.
package sdnotify

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// ErrUnsupportedSocket reports a NOTIFY_SOCKET this client cannot write to
// (e.g. systemd's vsock: addresses for virtual machines).
var ErrUnsupportedSocket = errors.New("sdnotify: unsupported NOTIFY_SOCKET")

// Notifier sends notifications to one systemd notify socket. The zero value
// and a nil *Notifier are disabled: their methods do nothing.
type Notifier struct {
	socket   string        // "" = disabled
	watchdog time.Duration // 0 = no watchdog for this process
}

// FromEnv reads NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID through getenv
// (os.Getenv in the daemon). pid is this process's id (os.Getpid()): when
// WATCHDOG_PID names another process the watchdog is not ours and
// WatchdogInterval is 0. A malformed WATCHDOG_USEC or WATCHDOG_PID is an
// error naming the variable and its value.
func FromEnv(getenv func(string) string, pid int) (*Notifier, error) {
	n := &Notifier{socket: getenv("NOTIFY_SOCKET")}
	if n.socket != "" && !strings.HasPrefix(n.socket, "/") && !strings.HasPrefix(n.socket, "@") {
		return nil, fmt.Errorf("%w: NOTIFY_SOCKET=%q (want a path or @abstract name)", ErrUnsupportedSocket, n.socket)
	}
	usec := getenv("WATCHDOG_USEC")
	if usec == "" {
		return n, nil
	}
	u, err := strconv.ParseUint(usec, 10, 63)
	if err != nil || u == 0 {
		return nil, fmt.Errorf("sdnotify: WATCHDOG_USEC=%q: want a positive number of microseconds", usec)
	}
	if p := getenv("WATCHDOG_PID"); p != "" {
		wp, err := strconv.Atoi(p)
		if err != nil || wp <= 0 {
			return nil, fmt.Errorf("sdnotify: WATCHDOG_PID=%q: want a process id", p)
		}
		if wp != pid {
			return n, nil
		}
	}
	n.watchdog = time.Duration(u) * time.Microsecond
	return n, nil
}

// Enabled reports whether notifications go anywhere.
func (n *Notifier) Enabled() bool { return n != nil && n.socket != "" }

// WatchdogInterval is systemd's WatchdogSec for this process, or 0 when no
// watchdog is armed. Send WATCHDOG=1 at about half this interval.
func (n *Notifier) WatchdogInterval() time.Duration {
	if !n.Enabled() {
		return 0
	}
	return n.watchdog
}

// Ready sends READY=1: startup is complete.
func (n *Notifier) Ready(ctx context.Context) error { return n.Notify(ctx, "READY=1") }

// Watchdog sends WATCHDOG=1: the service is alive and progressing.
func (n *Notifier) Watchdog(ctx context.Context) error { return n.Notify(ctx, "WATCHDOG=1") }

// Stopping sends STOPPING=1: shutdown has begun.
func (n *Notifier) Stopping(ctx context.Context) error { return n.Notify(ctx, "STOPPING=1") }

// Status sends STATUS=s, shown by `systemctl status`. A newline in s would
// start another assignment, so newlines are replaced by spaces.
func (n *Notifier) Status(ctx context.Context, s string) error {
	return n.Notify(ctx, "STATUS="+strings.ReplaceAll(s, "\n", " "))
}

// Notify sends the assignments (e.g. "READY=1", "STATUS=up") in one
// datagram, newline-separated. ctx bounds the write.
func (n *Notifier) Notify(ctx context.Context, assignments ...string) error {
	if !n.Enabled() || len(assignments) == 0 {
		return nil
	}
	for _, a := range assignments {
		if !strings.Contains(a, "=") {
			return fmt.Errorf("sdnotify: %q is not a VAR=value assignment", a)
		}
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unixgram", n.socket)
	if err != nil {
		return fmt.Errorf("sdnotify: dial %s: %w", n.socket, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		if err := conn.SetWriteDeadline(dl); err != nil {
			return fmt.Errorf("sdnotify: set deadline: %w", err)
		}
	}
	msg := strings.Join(assignments, "\n")
	if _, err := conn.Write([]byte(msg)); err != nil {
		return fmt.Errorf("sdnotify: send %q to %s: %w", msg, n.socket, err)
	}
	return nil
}

// RunWatchdog sends WATCHDOG=1 every half WatchdogInterval, but only when
// progressed reports that the pipeline moved since its previous call (e.g.
// the sources sampled and the writer committed), so systemd restarts a
// wedged service instead of one that merely stays alive. It returns nil
// when ctx is done, at once when no watchdog is armed, and the first send
// error otherwise.
func (n *Notifier) RunWatchdog(ctx context.Context, progressed func() bool) error {
	iv := n.WatchdogInterval()
	if iv <= 0 {
		return nil
	}
	t := time.NewTicker(iv / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if !progressed() {
				continue
			}
			wctx, cancel := context.WithTimeout(ctx, iv/2)
			err := n.Watchdog(wctx)
			cancel()
			if err != nil && ctx.Err() == nil {
				return err
			}
		}
	}
}
