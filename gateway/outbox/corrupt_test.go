package outbox

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shelfgate/shelfgate/gateway"
)

// source is an outbox written for a damage test: every row it still holds.
type source struct {
	path  string
	rows  map[int64]gateway.Record // backlog by id
	maxID int64
	seqs  map[gateway.StreamID]uint64
}

// writeSource writes an outbox at dir/outbox.db: telemetry on two streams,
// events, the oldest telemetry acked. If keepOpen, the database and WAL
// are copied while the outbox is open (the WAL then holds the newest
// commits) and the copies are returned; else it is closed cleanly.
func writeSource(t *testing.T, dir string, keepOpen bool) *source {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(dir, "outbox.db")
	o, err := Open(path, Options{ReserveBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	s := &source{path: path, rows: map[int64]gateway.Record{}, seqs: map[gateway.StreamID]uint64{}}
	for i := range 12 {
		recs := append(readings("loadcell/a", 250, float64(i*1000)), readings("loadcell/b", 250, float64(i*1000+500))...)
		recs = append(recs, gateway.Record{Stream: "events/bin", Class: gateway.ClassEvent, Time: time.UnixMicro(int64(i + 1)), Body: []byte(`{"kind":"pick","n":` + string(rune('a'+i)) + `}`)})
		if err := o.Append(ctx, recs); err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			s.rows[r.ID] = r
			s.maxID = max(s.maxID, r.ID)
			s.seqs[r.Stream] = max(s.seqs[r.Stream], r.Seq)
		}
	}
	if _, _, err := o.RecordCommand(ctx, "cmd-before-damage", []byte("done"), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := o.Secret(ctx); err != nil {
		t.Fatal(err)
	}
	if err := o.Ack(ctx, gateway.ClassTelemetry, 1, 400); err != nil {
		t.Fatal(err)
	}
	// An append after the ack makes the writer commit it.
	more := readings("loadcell/a", 10, 99999)
	if err := o.Append(ctx, more); err != nil {
		t.Fatal(err)
	}
	for _, r := range more {
		s.rows[r.ID] = r
		s.maxID = max(s.maxID, r.ID)
		s.seqs[r.Stream] = max(s.seqs[r.Stream], r.Seq)
	}
	for id, r := range s.rows {
		if r.Class == gateway.ClassTelemetry && id <= 400 {
			delete(s.rows, id)
		}
	}
	if keepOpen {
		copyDir := filepath.Join(dir, "snap")
		os.Mkdir(copyDir, 0o755)
		for _, sfx := range []string{"", "-wal", "-hwm"} {
			b, err := os.ReadFile(path + sfx)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(copyDir, "outbox.db"+sfx), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		o.Close()
		s.path = filepath.Join(copyDir, "outbox.db")
		return s
	}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	return s
}

// logCapture collects log lines as text.
type logCapture struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logCapture) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logCapture) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logCapture) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func (l *logCapture) count(msg string) int { return strings.Count(l.String(), `msg="`+msg) }

func TestDamagedOutboxIsMovedAsideAndRecordingGoesOn(t *testing.T) {
	cases := []struct {
		name     string
		keepOpen bool
		damage   func(t *testing.T, s *source)
		// salvages: every row of the source is recovered or named missing;
		// some rows must be recovered.
		salvages bool
	}{
		{"flipped bytes in a b-tree page", false, func(t *testing.T, s *source) {
			f, _ := os.OpenFile(s.path, os.O_RDWR, 0)
			defer f.Close()
			fi, _ := f.Stat()
			pages := fi.Size() / 4096
			// A page in the middle: a leaf of the outbox table.
			junk := bytes.Repeat([]byte{0xa5}, 64)
			f.WriteAt(junk, (pages/2)*4096)
		}, true},
		{"truncated file", false, func(t *testing.T, s *source) {
			fi, _ := os.Stat(s.path)
			os.Truncate(s.path, fi.Size()/2)
		}, true},
		{"truncated WAL", true, func(t *testing.T, s *source) {
			fi, _ := os.Stat(s.path + "-wal")
			os.Truncate(s.path+"-wal", fi.Size()/2)
		}, true},
		{"garbage file", false, func(t *testing.T, s *source) {
			b := make([]byte, 256<<10)
			rng := rand.New(rand.NewPCG(1, 2))
			for i := range b {
				b[i] = byte(rng.Uint32())
			}
			os.WriteFile(s.path, b, 0o600)
		}, false},
		{"zero-length file", false, func(t *testing.T, s *source) {
			os.WriteFile(s.path, nil, 0o600)
		}, false},
		{"file of another application", false, func(t *testing.T, s *source) {
			os.Remove(s.path)
			db, err := sql.Open("sqlite3", s.path)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if _, err := db.Exec(`CREATE TABLE customers(id INTEGER PRIMARY KEY, name TEXT); INSERT INTO customers(name) VALUES ('x')`); err != nil {
				t.Fatal(err)
			}
		}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := writeSource(t, t.TempDir(), c.keepOpen)
			c.damage(t, s)
			var logs logCapture
			start := time.Now()
			o, err := Open(s.path, Options{ReserveBytes: -1, Logger: logs.logger()})
			if err != nil {
				t.Fatalf("Open after damage: %v", err)
			}
			defer o.Close()
			ctx := context.Background()
			recs := readings("loadcell/a", 5, 0)
			if err := o.Append(ctx, recs); err != nil {
				t.Fatal(err)
			}
			t.Logf("recording again %v after Open began", time.Since(start))
			st, err := o.Stats(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if st.Quarantined != 1 || st.QuarantinePath == "" {
				t.Fatalf("stats %+v: no quarantine counted", st)
			}
			if !fileExists(st.QuarantinePath) {
				t.Fatalf("the damaged file was not kept aside at %s", st.QuarantinePath)
			}
			if recs[0].ID <= s.maxID {
				t.Fatalf("new id %d not above the damaged outbox's %d", recs[0].ID, s.maxID)
			}
			if logs.count("outbox database damaged") != 1 || logs.count("outbox recording again") != 1 {
				t.Errorf("log:\n%s", logs.String())
			}
			// The event names the quarantine.
			var ev *gateway.Event
			got := map[int64]gateway.Record{}
			for _, r := range readAll(t, o, gateway.ClassEvent) {
				if r.Stream == QuarantineStream {
					ev = &gateway.Event{}
					json.Unmarshal(r.Body, ev)
					if r.ID <= s.maxID {
						t.Errorf("quarantine event id %d not above %d", r.ID, s.maxID)
					}
					continue
				}
				got[r.ID] = r
			}
			if ev == nil || ev.Kind != EventQuarantined || !strings.Contains(ev.Detail, filepath.Base(st.QuarantinePath)) {
				t.Fatalf("quarantine event %+v", ev)
			}
			for _, r := range readAll(t, o, gateway.ClassTelemetry) {
				got[r.ID] = r
			}
			if !c.salvages {
				return
			}
			sv, err := Salvage(st.QuarantinePath)
			if err != nil {
				t.Fatal(err)
			}
			recovered, named := 0, 0
			for id, want := range s.rows {
				g, ok := got[id]
				if !ok {
					if !inRanges(sv.Missing, id) && !(c.keepOpen && id > sv.HighWater) {
						t.Fatalf("row %d (%s seq %d) neither recovered nor named missing (missing %v)", id, want.Stream, want.Seq, sv.Missing)
					}
					named++
					continue
				}
				if g.Stream != want.Stream || g.Seq != want.Seq || g.Value != want.Value || !bytes.Equal(g.Body, want.Body) {
					t.Fatalf("row %d recovered as %+v, was %+v", id, g, want)
				}
				recovered++
			}
			if recovered == 0 {
				t.Fatal("nothing recovered")
			}
			// More may be recovered than the source held: rows whose ack was
			// lost with the damage are delivered again, under their ids.
			if st.Recovered < int64(recovered) {
				t.Errorf("Stats.Recovered %d, rows recovered %d", st.Recovered, recovered)
			}
			if c.keepOpen && !strings.Contains(ev.Detail, fmt.Sprintf("%d-%d", sv.HighWater+1, s.maxID)) {
				t.Errorf("the event does not name the ids lost with the WAL (%d-%d): %s", sv.HighWater+1, s.maxID, ev.Detail)
			}
			// Sequences continue above what the damaged file shows.
			if recs[0].Seq <= sv.MaxSeq()["loadcell/a"] {
				t.Errorf("new seq %d not above %d", recs[0].Seq, sv.MaxSeq()["loadcell/a"])
			}
			t.Logf("%d rows recovered, %d named missing (%s), event: %s", recovered, named, rangesString(sv.Missing), ev.Detail)
		})
	}
}

func inRanges(rs []IDRange, id int64) bool {
	for _, r := range rs {
		if id >= r.Lo && id <= r.Hi {
			return true
		}
	}
	return false
}

func TestSalvageReadsACleanFileCompletely(t *testing.T) {
	for _, keepOpen := range []bool{false, true} {
		s := writeSource(t, t.TempDir(), keepOpen)
		sv, err := Salvage(s.path)
		if err != nil {
			t.Fatal(err)
		}
		if len(sv.Rows) != len(s.rows) || len(sv.Missing) != 0 || !sv.Schema {
			t.Fatalf("WAL %v: salvaged %d rows of %d, missing %v", keepOpen, len(sv.Rows), len(s.rows), sv.Missing)
		}
		for _, r := range sv.Rows {
			w := s.rows[r.ID]
			if r.Stream != w.Stream || r.Seq != w.Seq || r.Value != w.Value || r.Class != w.Class || !r.Time.Equal(w.Time) || !bytes.Equal(r.Body, w.Body) || r.Unit != w.Unit {
				t.Fatalf("row %d: %+v, want %+v", r.ID, r, w)
			}
		}
		if sv.HighWater != s.maxID {
			t.Fatalf("high-water %d, want %d", sv.HighWater, s.maxID)
		}
	}
}

func TestSalvageIntoRequeuesOnce(t *testing.T) {
	s := writeSource(t, t.TempDir(), false)
	dst := filepath.Join(t.TempDir(), "outbox.db")
	// The destination has ids of its own, above the damaged file's.
	o, err := Open(dst, Options{ReserveBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	o.Close()
	ctx := context.Background()
	sv, n, err := SalvageInto(ctx, dst, s.path)
	if err != nil || n != int64(len(s.rows)) {
		t.Fatalf("SalvageInto: %d rows, err %v (want %d)", n, err, len(s.rows))
	}
	if _, _, err := SalvageInto(ctx, dst, s.path); !errors.Is(err, ErrAlreadySalvaged) {
		t.Fatalf("second SalvageInto: %v", err)
	}
	o, err = Open(dst, Options{ReserveBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if _, dup, err := o.RecordCommand(ctx, "cmd-before-damage", []byte("again"), nil); err != nil || !dup {
		t.Fatalf("a command recorded before the damage ran again after salvage (dup %v, err %v)", dup, err)
	}
	all := append(readAll(t, o, gateway.ClassTelemetry), readAll(t, o, gateway.ClassEvent)...)
	if len(all) != len(s.rows) {
		t.Fatalf("%d rows after salvage, want %d", len(all), len(s.rows))
	}
	for _, r := range all {
		w := s.rows[r.ID]
		if r.Stream != w.Stream || r.Seq != w.Seq || r.Value != w.Value {
			t.Fatalf("row %d: %+v, want %+v", r.ID, r, w)
		}
	}
	recs := readings("loadcell/b", 1, 0)
	if err := o.Append(ctx, recs); err != nil {
		t.Fatal(err)
	}
	if recs[0].ID <= sv.HighWater || recs[0].Seq <= s.seqs["loadcell/b"] {
		t.Fatalf("new row id %d seq %d, salvaged high-water %d seq %d", recs[0].ID, recs[0].Seq, sv.HighWater, s.seqs["loadcell/b"])
	}
}

func TestSalvageToleratesAnyBytes(t *testing.T) {
	// Seeded corruption of a real file: Salvage never panics, and whatever
	// it returns has the outbox's shape.
	s := writeSource(t, t.TempDir(), false)
	orig, _ := os.ReadFile(s.path)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 30 {
		b := append([]byte(nil), orig...)
		for range 1 + i%20 {
			b[rng.IntN(len(b))] ^= byte(1 + rng.IntN(255))
		}
		sv, err := salvageBytes(b, nil)
		if err != nil {
			continue
		}
		for j, r := range sv.Rows {
			if r.ID <= 0 || r.Class > gateway.ClassEvent || (j > 0 && r.ID <= sv.Rows[j-1].ID) {
				t.Fatalf("iteration %d: row %+v", i, r)
			}
		}
	}
}

func FuzzSalvage(f *testing.F) {
	f.Add([]byte("SQLite format 3\x00"), []byte{})
	f.Add(make([]byte, 4096), []byte{0x37, 0x7f, 0x06, 0x82})
	f.Fuzz(func(t *testing.T, main, wal []byte) {
		salvageBytes(main, wal)
	})
}

// TestQuarantineResumesAfterCrash stops a quarantine at each point a
// SIGKILL could (the steps are replayed by hand up to that point) and
// opens the outbox again: one usable outbox, every salvageable row once,
// the damaged file kept aside, new ids above every old one.
func TestQuarantineResumesAfterCrash(t *testing.T) {
	for _, stop := range []string{"intent written", "WAL moved", "file moved", "fresh built", "fresh in place"} {
		t.Run(stop, func(t *testing.T) {
			s := writeSource(t, t.TempDir(), true) // rows in the WAL too
			mark, hasMark, err := readMark(s.path)
			if err != nil || !hasMark {
				t.Fatalf("mark %v %v", hasMark, err)
			}
			target := s.path + ".corrupt-20260101T000000.000000000Z"
			if err := writeAtomic(intentPath(s.path), []byte(target+"\n")); err != nil {
				t.Fatal(err)
			}
			switch stop {
			case "WAL moved":
				os.Rename(s.path+"-wal", target+"-wal")
			case "file moved":
				moveAside(s.path, target)
			case "fresh built", "fresh in place":
				moveAside(s.path, target)
				q := &quarantine{reason: "test", path: target}
				q.salv, _ = Salvage(target)
				inst, start, err := buildFresh(freshPath(s.path), q, mark, hasMark)
				if err != nil {
					t.Fatal(err)
				}
				if stop == "fresh in place" {
					// As recoverInto: the sidecar names the fresh outbox
					// before the rename.
					h, err := openMark(s.path, hwMark{instance: inst, committed: start, reserved: start, gen: mark.gen})
					if err != nil {
						t.Fatal(err)
					}
					h.close()
					os.Rename(freshPath(s.path), s.path)
				}
			}
			o, err := Open(s.path, Options{ReserveBytes: -1})
			if err != nil {
				t.Fatalf("Open after a crash at %q: %v", stop, err)
			}
			defer o.Close()
			if !fileExists(target) || fileExists(intentPath(s.path)) || fileExists(freshPath(s.path)) {
				t.Fatalf("after %q: damaged file kept %v, intent left %v, fresh left %v", stop, fileExists(target), fileExists(intentPath(s.path)), fileExists(freshPath(s.path)))
			}
			seen := map[int64]bool{}
			quarantineEvents := 0
			for _, c := range []gateway.Class{gateway.ClassTelemetry, gateway.ClassEvent} {
				for _, r := range readAll(t, o, c) {
					if seen[r.ID] {
						t.Fatalf("id %d twice", r.ID)
					}
					seen[r.ID] = true
					if r.Stream == QuarantineStream {
						quarantineEvents++
						continue
					}
					if w, ok := s.rows[r.ID]; !ok || w.Seq != r.Seq || w.Stream != r.Stream {
						t.Fatalf("row %d %s/%d not the source's", r.ID, r.Stream, r.Seq)
					}
				}
			}
			if quarantineEvents != 1 {
				t.Fatalf("%d quarantine events", quarantineEvents)
			}
			for id := range s.rows {
				if !seen[id] {
					t.Fatalf("row %d (readable in the WAL snapshot) lost", id)
				}
			}
			recs := readings("loadcell/a", 1, 0)
			if err := o.Append(context.Background(), recs); err != nil || recs[0].ID <= s.maxID {
				t.Fatalf("append after resume: id %d (old max %d), err %v", recs[0].ID, s.maxID, err)
			}
		})
	}
}

// TestCheckWhileRunningStopsAppendsUntilReopened damages the file under a
// running outbox: the integrity check finds it, Appends fail with
// ErrCorrupt (logged once), and the next Open moves the file aside.
func TestCheckWhileRunningStopsAppendsUntilReopened(t *testing.T) {
	s := writeSource(t, t.TempDir(), false)
	var logs logCapture
	o, err := Open(s.path, Options{ReserveBytes: -1, Logger: logs.logger(), CheckEvery: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	f, _ := os.OpenFile(s.path, os.O_RDWR, 0)
	fi, _ := f.Stat()
	f.WriteAt(bytes.Repeat([]byte{0xa5}, 64), (fi.Size()/4096/2)*4096)
	f.Close()
	deadline := time.Now().Add(5 * time.Second)
	for !stats(t, o).Damaged && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if err := o.Append(context.Background(), readings("loadcell/a", 1, 0)); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Append on a damaged outbox: %v (stats %+v)", err, stats(t, o))
	}
	time.Sleep(200 * time.Millisecond) // more checks run
	if n := logs.count("outbox database damaged while running"); n != 1 {
		t.Fatalf("logged %d times:\n%s", n, logs.String())
	}
	o.Close()
	o, err = Open(s.path, Options{ReserveBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if st := stats(t, o); st.Quarantined != 1 {
		t.Fatalf("reopen did not move the damaged file aside: %+v", st)
	}
}
