// Package mqtttest starts real MQTT brokers for tests: a mosquitto process on
// a free loopback port (with the project's configs/mosquitto-test.conf), or
// the embedded broker in-process.
//
// When the mosquitto binary is missing the test is skipped with a message
// naming it, unless REQUIRE_MOSQUITTO=1 is set (as CI does), in which case
// the test fails.
package mqtttest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shelfgate/shelfgate/gateway/broker"
)

// Mosquitto is a mosquitto process owned by a test.
type Mosquitto struct {
	URL  string // tcp://127.0.0.1:PORT
	Addr string
	Port int

	t    testing.TB
	bin  string
	conf string
	dir  string
	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// FindMosquitto returns the path of the mosquitto binary, or skips (or fails
// under REQUIRE_MOSQUITTO=1) when there is none.
func FindMosquitto(t testing.TB) string {
	t.Helper()
	for _, p := range []string{"mosquitto", "/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	msg := "mosquitto binary not found (apt-get install mosquitto)"
	if os.Getenv("REQUIRE_MOSQUITTO") == "1" {
		t.Fatal(msg + " and REQUIRE_MOSQUITTO=1")
	}
	t.Skip(msg)
	return ""
}

// ModuleRoot finds the directory holding go.mod, from the working directory up.
func ModuleRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("mqtttest: go.mod not found above the working directory")
		}
		dir = parent
	}
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// StartMosquitto starts mosquitto with persistence on a free port and stops
// it when the test ends.
func StartMosquitto(t testing.TB) *Mosquitto {
	t.Helper()
	return StartMosquittoWith(t, "")
}

// StartMosquittoWith is StartMosquitto with extra configuration lines
// appended to the test configuration (later lines win), e.g.
// "allow_anonymous false\npassword_file ...\nacl_file ...".
func StartMosquittoWith(t testing.TB, extra string) *Mosquitto {
	t.Helper()
	m := &Mosquitto{t: t, bin: FindMosquitto(t), dir: t.TempDir(), Port: FreePort(t)}
	m.Addr = "127.0.0.1:" + strconv.Itoa(m.Port)
	m.URL = "tcp://" + m.Addr
	base, err := os.ReadFile(filepath.Join(ModuleRoot(t), "configs", "mosquitto-test.conf"))
	if err != nil {
		t.Fatal(err)
	}
	m.conf = filepath.Join(m.dir, "mosquitto.conf")
	conf := fmt.Sprintf("%s\nlistener %d 127.0.0.1\npersistence_location %s/\n%s\n", base, m.Port, m.dir, extra)
	if os.Geteuid() == 0 {
		// As root mosquitto would switch to the mosquitto user, which cannot
		// write into the test's private temporary directory.
		conf += "user root\n"
	}
	if err := os.WriteFile(m.conf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	m.Start()
	t.Cleanup(m.Stop)
	return m
}

// Start (re)starts the process and waits until it accepts connections.
func (m *Mosquitto) Start() {
	m.t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd != nil {
		return
	}
	cmd := exec.Command(m.bin, "-c", m.conf)
	cmd.Stdout = os.Stderr
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		m.t.Fatalf("start mosquitto: %v", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	m.cmd, m.done = cmd, done
	if err := WaitListening(m.Addr, 10*time.Second); err != nil {
		m.t.Fatalf("mosquitto: %v", err)
	}
}

// Kill SIGKILLs the process, as a crash or power cut would.
func (m *Mosquitto) Kill() { m.signal(syscall.SIGKILL) }

// Stop terminates the process cleanly (it saves its persistence file).
func (m *Mosquitto) Stop() { m.signal(syscall.SIGTERM) }

func (m *Mosquitto) signal(sig syscall.Signal) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil {
		return
	}
	m.cmd.Process.Signal(sig)
	select {
	case <-m.done:
	case <-time.After(10 * time.Second):
		m.cmd.Process.Kill()
		<-m.done
	}
	m.cmd = nil
}

// WaitListening polls addr until a TCP connection succeeds.
func WaitListening(addr string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not listening after %s: %w", addr, d, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// StartEmbedded runs the embedded broker on a free port and returns its URL.
//
// The broker is left running until the test binary exits: mochi v2.7.9's
// Server.Close races (under the race detector) with a connection being
// established at that moment, which paho clients retrying in the
// background make likely. Tests stop their own clients.
func StartEmbedded(t testing.TB) string {
	t.Helper()
	b, err := broker.New("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	go b.Run(context.Background())
	if err := WaitListening(b.Addr(), 10*time.Second); err != nil {
		t.Fatal(err)
	}
	return b.URL()
}
