package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// broker is a mosquitto the fleet run starts for itself on a free loopback
// port, with persistence on, so that a restart keeps the collectors'
// persistent sessions (and their shared subscriptions) and the messages
// queued for them.
type broker struct {
	bin, dir, conf, addr string
	cmd                  *exec.Cmd
	exited               chan error
}

func findMosquitto() (string, error) {
	if p, err := exec.LookPath("mosquitto"); err == nil {
		return p, nil
	}
	if _, err := os.Stat("/usr/sbin/mosquitto"); err == nil {
		return "/usr/sbin/mosquitto", nil
	}
	return "", fmt.Errorf("mosquitto not found (apt-get install mosquitto, or give --broker URL)")
}

func startBroker(dir string) (*broker, error) {
	bin, err := findMosquitto()
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("find a free port: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	b := &broker{bin: bin, dir: dir, conf: filepath.Join(dir, "mosquitto.conf"), addr: fmt.Sprintf("127.0.0.1:%d", port)}
	c := fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\nmax_queued_messages 0\nmax_inflight_messages 0\n"+
		"persistence true\npersistence_location %s/\nautosave_interval 0\nlog_dest none\n", port, dir)
	if os.Geteuid() == 0 {
		c += "user root\n"
	}
	if err := os.WriteFile(b.conf, []byte(c), 0o644); err != nil {
		return nil, fmt.Errorf("write mosquitto config: %w", err)
	}
	return b, b.start()
}

func (b *broker) url() string { return "tcp://" + b.addr }

func (b *broker) start() error {
	cmd := exec.Command(b.bin, "-c", b.conf)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start mosquitto: %w", err)
	}
	b.cmd = cmd
	b.exited = make(chan error, 1)
	go func() { b.exited <- cmd.Wait() }()
	if err := waitListening(b.addr, 10*time.Second); err != nil {
		b.kill()
		return err
	}
	return nil
}

// alive reports whether the broker process is still running.
func (b *broker) alive() bool {
	select {
	case err := <-b.exited:
		b.exited <- err
		return false
	default:
		return true
	}
}

// stop ends the broker with SIGTERM (it saves its persistence file) and
// waits for it.
func (b *broker) stop() {
	if b.cmd == nil {
		return
	}
	b.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-b.exited:
	case <-time.After(10 * time.Second):
		b.cmd.Process.Kill()
		<-b.exited
	}
	b.cmd = nil
}

func (b *broker) kill() {
	if b.cmd != nil {
		b.cmd.Process.Kill()
		<-b.exited
		b.cmd = nil
	}
}

func waitListening(addr string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("broker did not listen on %s within %s", addr, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
