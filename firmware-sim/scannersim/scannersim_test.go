package scannersim

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

const ioTimeout = 5 * time.Second // generous: a failure, not a slow pass

func newSim(t *testing.T, o *Opts) *Sim {
	t.Helper()
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// openReader opens the device like the gateway opens /dev/ttyACM0.
func openReader(t *testing.T, path string) *os.File {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	return f
}

func readN(t *testing.T, f *os.File, n int) []byte {
	t.Helper()
	if err := f.SetReadDeadline(time.Now().Add(ioTimeout)); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(f, b); err != nil {
		t.Fatalf("read %d bytes: %v", n, err)
	}
	return b
}

// expectQuiet checks that nothing more is readable for a short while.
func expectQuiet(t *testing.T, f *os.File) {
	t.Helper()
	if err := f.SetReadDeadline(time.Now().Add(20 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 64)
	if n, err := f.Read(b); n > 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("unexpected read %q, %v", b[:n], err)
	}
}

func TestSuffixes(t *testing.T) {
	code, _ := EAN13("400638133393")
	tests := []struct {
		name   string
		opts   Opts
		suffix string
		want   string
	}{
		{"CR raw", Opts{Suffix: CR}, CR, code + "\r"},
		{"LF raw", Opts{Suffix: LF}, LF, code + "\n"},
		{"CRLF raw", Opts{Suffix: CRLF}, CRLF, code + "\r\n"},
		{"default is CR", Opts{}, CR, code + "\r"},
		// The kernel's default ICRNL turns the scanner's CR into LF.
		{"CR cooked", Opts{Suffix: CR, Cooked: true}, CR, code + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSim(t, &tt.opts)
			if s.Suffix() != tt.suffix {
				t.Fatalf("suffix %q, want %q", s.Suffix(), tt.suffix)
			}
			f := openReader(t, s.Path())
			for range 3 {
				if err := s.Scan(code); err != nil {
					t.Fatal(err)
				}
				if got := string(readN(t, f, len(tt.want))); got != tt.want {
					t.Fatalf("read %q, want %q", got, tt.want)
				}
			}
			expectQuiet(t, f)
		})
	}
}

func TestBadSuffix(t *testing.T) {
	if _, err := New(&Opts{Suffix: "\t"}); err == nil {
		t.Fatal("New with TAB suffix succeeded")
	}
}

func TestGarbage(t *testing.T) {
	code, _ := UPCA("03600029145")
	s := newSim(t, &Opts{Suffix: CRLF})
	f := openReader(t, s.Path())

	if err := s.ScanWrongCheckDigit(code); err != nil {
		t.Fatal(err)
	}
	line := string(readN(t, f, len(code)+2))
	if !strings.HasSuffix(line, CRLF) || ValidGTIN(line[:len(code)]) || line[:len(code)-1] != code[:len(code)-1] {
		t.Fatalf("wrong-check-digit scan %q", line)
	}

	if err := s.Noise(100); err != nil {
		t.Fatal(err)
	}
	noise := readN(t, f, 100)
	if bytes.Count(noise, []byte{noise[0]}) == 100 {
		t.Fatalf("noise is constant: %x", noise)
	}

	// Longer than the pty's 4 KiB input buffer: the reader must drain it
	// while the scanner writes.
	const long = 10000
	errc := make(chan error, 1)
	go func() { errc <- s.OverLong(long) }()
	got := readN(t, f, long+2)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if string(got[long:]) != CRLF || strings.Trim(string(got[:long]), "7") != "" {
		t.Fatalf("over-long line ends with %q", got[long-4:])
	}

	if err := s.Partial("01234"); err != nil {
		t.Fatal(err)
	}
	if got := string(readN(t, f, 5)); got != "01234" {
		t.Fatalf("partial %q", got)
	}
	expectQuiet(t, f)
	if err := s.Scan(code); err != nil {
		t.Fatal(err)
	}
	if got := string(readN(t, f, len(code)+2)); got != code+CRLF {
		t.Fatalf("scan after partial %q", got)
	}
}

func TestFaultStuck(t *testing.T) {
	s := newSim(t, &Opts{Suffix: LF})
	f := openReader(t, s.Path())
	if err := s.InjectFault(FaultStuck); err != nil {
		t.Fatal(err)
	}
	if err := s.Scan("111"); err != nil { // nothing sent yet: goes through
		t.Fatal(err)
	}
	if err := s.Scan("222"); err != nil {
		t.Fatal(err)
	}
	if got := string(readN(t, f, 8)); got != "111\n111\n" {
		t.Fatalf("stuck read %q", got)
	}
	if err := s.ClearFault(); err != nil {
		t.Fatal(err)
	}
	if err := s.Scan("333"); err != nil {
		t.Fatal(err)
	}
	if got := string(readN(t, f, 4)); got != "333\n" {
		t.Fatalf("after recovery %q", got)
	}
}

func TestFaultNoise(t *testing.T) {
	s := newSim(t, &Opts{Suffix: LF, NoiseLen: 32})
	f := openReader(t, s.Path())
	if err := s.InjectFault(FaultNoise); err != nil {
		t.Fatal(err)
	}
	if err := s.Scan("4006381333931"); err != nil {
		t.Fatal(err)
	}
	got := readN(t, f, 32+14)
	if string(got[32:]) != "4006381333931\n" {
		t.Fatalf("noisy scan %q", got)
	}
	if err := s.ClearFault(); err != nil {
		t.Fatal(err)
	}
	if err := s.Scan("5901234123457"); err != nil {
		t.Fatal(err)
	}
	if got := string(readN(t, f, 14)); got != "5901234123457\n" {
		t.Fatalf("after recovery %q", got)
	}
}

func TestFaultSlow(t *testing.T) {
	const delay = time.Millisecond
	s := newSim(t, &Opts{Suffix: CR, ByteDelay: delay})
	f := openReader(t, s.Path())
	if err := s.InjectFault(FaultSlow); err != nil {
		t.Fatal(err)
	}
	const scan = "4006381333931\r"
	errc := make(chan time.Duration, 1)
	go func() {
		start := time.Now()
		if err := s.Scan(scan[:13]); err != nil {
			t.Error(err)
		}
		errc <- time.Since(start)
	}()
	// The reader may get the bytes in one read or many: it must cope.
	if got := string(readN(t, f, len(scan))); got != scan {
		t.Fatalf("slow scan %q", got)
	}
	// One byte per delay: only the lower bound is checked.
	if took := <-errc; took < time.Duration(len(scan)-1)*delay {
		t.Fatalf("slow scan took %v, less than %v", took, time.Duration(len(scan)-1)*delay)
	}
	if err := s.ClearFault(); err != nil {
		t.Fatal(err)
	}
	if err := s.Scan("1"); err != nil {
		t.Fatal(err)
	}
	if got := string(readN(t, f, 2)); got != "1\r" {
		t.Fatalf("after recovery %q", got)
	}
}

func TestFaultDisconnectAndReplug(t *testing.T) {
	link := filepath.Join(t.TempDir(), "ttyACM0")
	s := newSim(t, &Opts{Suffix: CR, Link: link})
	if dst, err := os.Readlink(link); err != nil || dst != s.Path() {
		t.Fatalf("link -> %q, %v; want %q", dst, err, s.Path())
	}
	f := openReader(t, link)
	if err := s.InjectFault(FaultDisconnect); err != nil {
		t.Fatal(err)
	}
	if err := f.SetReadDeadline(time.Now().Add(ioTimeout)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Read(make([]byte, 8)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read from unplugged scanner: %v, want EOF or EIO", err)
	}
	if s.Path() != "" {
		t.Fatalf("path %q while unplugged", s.Path())
	}
	if _, err := os.Lstat(link); !os.IsNotExist(err) {
		t.Fatalf("link still there while unplugged: %v", err)
	}
	if err := s.Scan("1"); !errors.Is(err, ErrDisconnected) {
		t.Fatalf("Scan while unplugged: %v", err)
	}
	if err := s.ClearFault(); err != nil {
		t.Fatal(err)
	}
	f2 := openReader(t, link)
	if err := s.Scan("4006381333931"); err != nil {
		t.Fatal(err)
	}
	if got := string(readN(t, f2, 14)); got != "4006381333931\r" {
		t.Fatalf("after replug %q", got)
	}
}

func TestReceived(t *testing.T) {
	s := newSim(t, nil)
	f := openReader(t, s.Path())
	if _, err := f.Write([]byte("\x16T\r")); err != nil { // a host trigger command
		t.Fatal(err)
	}
	deadline := time.Now().Add(ioTimeout)
	for !bytes.Equal(s.Received(), []byte("\x16T\r")) {
		if time.Now().After(deadline) {
			t.Fatalf("received %q", s.Received())
		}
		time.Sleep(time.Millisecond)
	}
}

func TestClose(t *testing.T) {
	s, err := New(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Scan("1"); !errors.Is(err, ErrClosed) {
		t.Fatalf("Scan after Close: %v", err)
	}
	if err := s.InjectFault(FaultNone); !errors.Is(err, ErrClosed) {
		t.Fatalf("InjectFault after Close: %v", err)
	}
	if FaultSlow.String() != "slow" || Fault(42).String() != "Fault(42)" {
		t.Error("Fault.String")
	}
}
