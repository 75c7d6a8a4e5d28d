package scanner

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shelfgate/shelfgate/firmware-sim/scannersim"
	"github.com/shelfgate/shelfgate/gateway"
)

// chanSink is a gateway.Emitter that hands the scan events it is given to
// the test as Scans.
type chanSink struct {
	ch  chan Scan
	err error
}

var _ gateway.Emitter = (*chanSink)(nil)

func newSink() *chanSink { return &chanSink{ch: make(chan Scan, 20000)} }

func (s *chanSink) Emit(context.Context, []gateway.Reading) error {
	return errors.New("a scanner emitted readings")
}

func (s *chanSink) EmitEvents(_ context.Context, evs []gateway.Event) error {
	if s.err != nil {
		return s.err
	}
	for _, ev := range evs {
		if ev.Kind != gateway.EventScan {
			return fmt.Errorf("event kind %q", ev.Kind)
		}
		// The event carries the code; its symbology follows from it.
		sym, _ := Validate([]byte(ev.Detail))
		s.ch <- Scan{Stream: ev.Stream, Time: ev.Time, Code: ev.Detail, Symbology: sym}
	}
	return nil
}

// next returns the next scan, failing the test if none comes: the limit
// only stops a broken test from hanging, it measures nothing.
func (s *chanSink) next(t *testing.T) Scan {
	t.Helper()
	select {
	case sc := <-s.ch:
		return sc
	case <-time.After(10 * time.Second):
		t.Fatal("no scan arrived")
		return Scan{}
	}
}

func (s *chanSink) none(t *testing.T) {
	t.Helper()
	select {
	case sc := <-s.ch:
		t.Fatalf("unexpected scan %+v", sc)
	default:
	}
}

// running starts a Source over sim's device link and stops it at cleanup.
func running(t *testing.T, sim *scannersim.Sim, link string, opts Options) (*Source, *chanSink) {
	t.Helper()
	sink := newSink()
	if opts.Retry == 0 {
		opts.Retry = 10 * time.Millisecond
	}
	src, err := New("dock-1", Serial(link, 115200), opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, sink) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return src, sink
}

func newSim(t *testing.T, suffix string) (*scannersim.Sim, string) {
	t.Helper()
	link := filepath.Join(t.TempDir(), "ttyACM0")
	opts := scannersim.DefaultOpts
	opts.Suffix = suffix
	opts.Link = link
	sim, err := scannersim.New(&opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	return sim, link
}

// waitStats polls the counters until ok holds (or gives up after 10 s).
func waitStats(t *testing.T, src *Source, what string, ok func(Stats) bool) Stats {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := src.Stats()
		if ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: stats %+v", what, st)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestSerialValidScans(t *testing.T) {
	codes := []struct {
		code string
		sym  Symbology
	}{
		{"4006381333931", SymEAN13},
		{"036000291452", SymUPCA},
		{"96385074", SymEAN8},
		{"(01)09501101530003(17)251231(10)AB12", SymGS1},
		{"TOTE-0042", SymText},
		{"4006381333931", SymEAN13}, // the same item twice is two scans
	}
	for _, sfx := range []struct {
		name string
		s    string
		opt  Suffix
	}{{"CR", scannersim.CR, SuffixCR}, {"LF", scannersim.LF, SuffixLF}, {"CRLF", scannersim.CRLF, SuffixCRLF}} {
		t.Run(sfx.name, func(t *testing.T) {
			sim, link := newSim(t, sfx.s)
			src, sink := running(t, sim, link, Options{Suffix: sfx.opt})
			for _, c := range codes {
				if err := sim.Scan(c.code); err != nil {
					t.Fatal(err)
				}
			}
			for i, c := range codes {
				sc := sink.next(t)
				if sc.Code != c.code || sc.Symbology != c.sym || sc.Stream != "scanner/dock-1" || sc.Time.IsZero() {
					t.Errorf("scan %d = %+v; want %q (%v) on scanner/dock-1", i, sc, c.code, c.sym)
				}
			}
			sink.none(t)
			st := src.Stats()
			if st.Scans != int64(len(codes)) || st.RejectedTotal() != 0 || st.Opens != 1 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

func TestSerialRejects(t *testing.T) {
	const sentinel = "96385074"
	tests := []struct {
		name   string
		send   func(*scannersim.Sim) error
		reason Reason
	}{
		{"wrong check digit", func(s *scannersim.Sim) error { return s.ScanWrongCheckDigit("4006381333931") }, ReasonCheckDigit},
		{"wrong check digit upca", func(s *scannersim.Sim) error { return s.ScanWrongCheckDigit("036000291452") }, ReasonCheckDigit},
		{"binary noise", func(s *scannersim.Sim) error {
			// Noise without suffix bytes, so it is exactly one frame.
			return s.Write([]byte("\x00\x9f\x1b[2J\xfe\xff" + scannersim.CR))
		}, ReasonNonPrintable},
		{"over-long line", func(s *scannersim.Sim) error { return s.OverLong(DefaultMaxLen + 1) }, ReasonTooLong},
		{"very long line", func(s *scannersim.Sim) error { return s.OverLong(1 << 16) }, ReasonTooLong},
		{"numeric length", func(s *scannersim.Sim) error { return s.Scan("1234567") }, ReasonNumericLength},
		{"gs1", func(s *scannersim.Sim) error { return s.Scan("(01)123") }, ReasonGS1},
		{"empty", func(s *scannersim.Sim) error { return s.Write([]byte(scannersim.CR)) }, ReasonEmpty},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim, link := newSim(t, scannersim.CR)
			src, sink := running(t, sim, link, Options{})
			if err := tt.send(sim); err != nil {
				t.Fatal(err)
			}
			if err := sim.Scan(sentinel); err != nil {
				t.Fatal(err)
			}
			// The sentinel comes after the bad frame, so once it has
			// arrived the bad frame has been counted.
			if sc := sink.next(t); sc.Code != sentinel {
				t.Fatalf("first scan %q; want the sentinel %q", sc.Code, sentinel)
			}
			st := src.Stats()
			var want Stats
			want.Rejected[tt.reason] = 1
			if st.Rejected != want.Rejected || st.Scans != 1 {
				t.Errorf("stats %+v; want rejected %v", st, want.Rejected)
			}
		})
	}
}

func TestSerialNoiseBurst(t *testing.T) {
	sim, link := newSim(t, scannersim.CR)
	src, sink := running(t, sim, link, Options{})
	if err := sim.Noise(256); err != nil { // may hold CRs: several frames
		t.Fatal(err)
	}
	if err := sim.Write([]byte(scannersim.CR)); err != nil {
		t.Fatal(err)
	}
	if err := sim.Scan("96385074"); err != nil {
		t.Fatal(err)
	}
	for {
		sc := sink.next(t)
		if sc.Code == "96385074" {
			break
		}
		// A run of printable noise bytes between two CRs is
		// indistinguishable from a Code 128 scan; it must at least be valid.
		if _, r := Validate([]byte(sc.Code)); r != ReasonOK || sc.Symbology != SymText {
			t.Fatalf("noise accepted as %+v", sc)
		}
	}
	if st := src.Stats(); st.Rejected[ReasonNonPrintable] == 0 {
		t.Errorf("noise not counted: %+v", st)
	}
}

func TestSerialPartialAtClose(t *testing.T) {
	sim, link := newSim(t, scannersim.CR)
	src, sink := running(t, sim, link, Options{})
	if err := sim.Scan("96385074"); err != nil {
		t.Fatal(err)
	}
	sink.next(t)
	if err := sim.Partial("40063813"); err != nil {
		t.Fatal(err)
	}
	// The kernel drops unread input when the pty hangs up: unplug only
	// once the reader has the partial line.
	waitStats(t, src, "partial bytes read", func(s Stats) bool { return s.Bytes == 9+8 })
	if err := sim.Close(); err != nil {
		t.Fatal(err)
	}
	st := waitStats(t, src, "partial and read error", func(s Stats) bool {
		return s.ReadErrors >= 1 && s.OpenErrors >= 1
	})
	if st.Rejected[ReasonPartial] != 1 || st.RejectedTotal() != 1 || st.Scans != 1 {
		t.Errorf("stats %+v; want one partial", st)
	}
	sink.none(t)
}

func TestSerialReconnect(t *testing.T) {
	sim, link := newSim(t, scannersim.CR)
	src, sink := running(t, sim, link, Options{})
	if err := sim.Scan("96385074"); err != nil {
		t.Fatal(err)
	}
	sink.next(t)
	if err := sim.InjectFault(scannersim.FaultDisconnect); err != nil {
		t.Fatal(err)
	}
	waitStats(t, src, "read error", func(s Stats) bool { return s.ReadErrors >= 1 })
	if err := sim.ClearFault(); err != nil {
		t.Fatal(err)
	}
	waitStats(t, src, "reopen", func(s Stats) bool { return s.Opens >= 2 })
	if err := sim.Scan("4006381333931"); err != nil {
		t.Fatal(err)
	}
	if sc := sink.next(t); sc.Code != "4006381333931" {
		t.Fatalf("after reconnect: %+v", sc)
	}
	if st := src.Stats(); st.Scans != 2 || st.RejectedTotal() != 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestSerialFlood sends 10,000 garbage lines with 100 valid scans mixed in
// and checks every valid scan arrives, once, in order, and every garbage
// line is counted.
func TestSerialFlood(t *testing.T) {
	sim, link := newSim(t, scannersim.CR)
	src, sink := running(t, sim, link, Options{})
	const garbage, every = 10000, 100
	var valid []string
	var chunk bytes.Buffer
	kinds := [NumReasons]int64{}
	for i := range garbage {
		switch i % 4 {
		case 0:
			chunk.WriteString("4006381333932") // wrong check digit
			kinds[ReasonCheckDigit]++
		case 1:
			chunk.Write([]byte{0, 1, byte(i) | 0x80, 0xff}) // no CR in it
			kinds[ReasonNonPrintable]++
		case 2:
			chunk.WriteString(strings.Repeat("7", DefaultMaxLen+1+i%50))
			kinds[ReasonTooLong]++
		case 3:
			chunk.WriteString("(01)0950110153000") // short GTIN in an element string
			kinds[ReasonGS1]++
		}
		chunk.WriteString(scannersim.CR)
		if i%every == every-1 {
			code, err := scannersim.EAN13(fmt.Sprintf("%012d", 400638133000+i))
			if err != nil {
				t.Fatal(err)
			}
			valid = append(valid, code)
			chunk.WriteString(code + scannersim.CR)
			if err := sim.Write(chunk.Bytes()); err != nil {
				t.Fatal(err)
			}
			chunk.Reset()
		}
	}
	for i, code := range valid {
		if sc := sink.next(t); sc.Code != code {
			t.Fatalf("valid scan %d = %q; want %q", i, sc.Code, code)
		}
	}
	// The last valid scan follows the last garbage line, so all is counted.
	st := src.Stats()
	if st.Scans != int64(len(valid)) || st.Rejected != kinds || st.RejectedTotal() != garbage {
		t.Errorf("stats %+v; want %d scans, rejected %v", st, len(valid), kinds)
	}
	sink.none(t)
}

func TestSinkErrorStopsRun(t *testing.T) {
	sim, link := newSim(t, scannersim.CR)
	sink := newSink()
	sink.err = errors.New("outbox full")
	src, err := New("dock-1", Serial(link, 9600), Options{})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- src.Run(context.Background(), sink) }()
	if err := sim.Scan("96385074"); err != nil {
		t.Fatal(err)
	}
	err = <-done
	if !errors.Is(err, sink.err) || !strings.HasPrefix(err.Error(), "scanner: dock-1:") {
		t.Fatalf("Run = %v; want the sink's error, prefixed", err)
	}
}

// onceOpener yields data once, then fails like an unplugged device.
type onceOpener struct {
	mu   sync.Mutex
	data []byte
}

func (o *onceOpener) open(context.Context) (io.ReadCloser, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.data == nil {
		return nil, os.ErrNotExist
	}
	r := io.NopCloser(bytes.NewReader(o.data))
	o.data = nil
	return r, nil
}

func TestEvdevSource(t *testing.T) {
	path := filepath.Join("testdata", "wedge64.events")
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	kr, err := NewKeyReader(f, EventSize64)
	if err != nil {
		t.Fatal(err)
	}
	text, err := io.ReadAll(kr)
	if err != nil {
		t.Fatal(err)
	}
	// Also exercise the real Opener on the recording (a regular file).
	if _, err := Evdev(path, 0, false)(context.Background()); err != nil {
		t.Fatal(err)
	}
	sink := newSink()
	o := &onceOpener{data: text}
	src, err := New("wedge", o.open, Options{Retry: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, sink) }()
	for _, want := range []string{"4006381333931", "TOTE-42", "(01)09501101530003(10)AB12", "96385074"} {
		if sc := sink.next(t); sc.Code != want || sc.Stream != "scanner/wedge" {
			t.Fatalf("scan %+v; want %q", sc, want)
		}
	}
	st := waitStats(t, src, "partial", func(s Stats) bool { return s.Rejected[ReasonPartial] == 1 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if st.Rejected[ReasonNonPrintable] != 1 || st.RejectedTotal() != 2 {
		t.Errorf("stats %+v", st)
	}
}

func TestNewErrors(t *testing.T) {
	open := Serial("/dev/null", 9600)
	for _, tt := range []struct {
		name string
		f    func() (*Source, error)
	}{
		{"empty name", func() (*Source, error) { return New("", open, Options{}) }},
		{"no opener", func() (*Source, error) { return New("a", nil, Options{}) }},
		{"bad suffix", func() (*Source, error) { return New("a", open, Options{Suffix: 7}) }},
	} {
		if _, err := tt.f(); err == nil || !strings.HasPrefix(err.Error(), "scanner: ") {
			t.Errorf("%s: err %v", tt.name, err)
		}
	}
}

// TestSerialSlowScanner has the scanner send one byte at a time, so every
// code arrives over many reads.
func TestSerialSlowScanner(t *testing.T) {
	link := filepath.Join(t.TempDir(), "ttyACM0")
	opts := scannersim.DefaultOpts
	opts.Suffix = scannersim.CRLF
	opts.Link = link
	opts.ByteDelay = 100 * time.Microsecond
	sim, err := scannersim.New(&opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	src, sink := running(t, sim, link, Options{Suffix: SuffixCRLF})
	if err := sim.InjectFault(scannersim.FaultSlow); err != nil {
		t.Fatal(err)
	}
	codes := []string{"4006381333931", "(00)106141411234567897", "96385074"}
	for _, c := range codes {
		if err := sim.Scan(c); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range codes {
		if sc := sink.next(t); sc.Code != c {
			t.Fatalf("scan %q; want %q", sc.Code, c)
		}
	}
	if st := src.Stats(); st.RejectedTotal() != 0 || st.Scans != 3 {
		t.Errorf("stats %+v", st)
	}
}

// TestRetriesReported: a device that fails to open is retried, each retry
// counted and reported through Retrying with its error and attempt number,
// and the recovery through Recovered; the package itself logs nothing.
func TestRetriesReported(t *testing.T) {
	var opens atomic.Int64
	pr, pw := io.Pipe()
	defer pw.Close()
	open := func(context.Context) (io.ReadCloser, error) {
		if opens.Add(1) <= 3 {
			return nil, fmt.Errorf("open /dev/ttyACM0: %w", os.ErrNotExist)
		}
		return pr, nil
	}
	type retry struct {
		attempt int64
		err     error
	}
	retries := make(chan retry, 10)
	recovered := make(chan int64, 1)
	src, err := New("s", open, Options{Retry: time.Millisecond,
		Retrying:  func(err error, attempt int64, _ time.Duration) { retries <- retry{attempt, err} },
		Recovered: func(n int64) { recovered <- n },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- src.Run(ctx, newSink()) }()
	for want := int64(1); want <= 3; want++ {
		r := <-retries
		if r.attempt != want || !errors.Is(r.err, os.ErrNotExist) {
			t.Fatalf("retry %d: %+v", want, r)
		}
	}
	if n := <-recovered; n != 3 {
		t.Fatalf("recovered after %d retries, want 3", n)
	}
	st := src.Stats()
	if st.Retries != 3 || st.OpenErrors != 3 || st.Opens != 1 || !errors.Is(src.LastError(), os.ErrNotExist) {
		t.Fatalf("stats %+v, last error %v", st, src.LastError())
	}
	cancel()
	pw.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
