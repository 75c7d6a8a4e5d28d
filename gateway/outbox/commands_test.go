package outbox

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shelfgate/shelfgate/gateway"
)

func reply(id string) []gateway.Record {
	return []gateway.Record{{Stream: "events/reply", Class: gateway.ClassEvent, Time: time.Now(), Body: []byte(`{"id":"` + id + `"}`)}}
}

func TestRecordCommandRunsOnceAcrossReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "outbox.db")
	o, err := Open(path, DefaultOptions)
	if err != nil {
		t.Fatal(err)
	}
	recs := reply("c1")
	prev, dup, err := o.RecordCommand(ctx, "c1", []byte("first"), recs)
	if err != nil || dup || prev != nil {
		t.Fatalf("first RecordCommand: prev %q dup %v err %v", prev, dup, err)
	}
	if recs[0].ID == 0 || recs[0].Seq != 1 {
		t.Fatalf("reply got id %d seq %d", recs[0].ID, recs[0].Seq)
	}
	again := reply("c1")
	prev, dup, err = o.RecordCommand(ctx, "c1", []byte("second"), again)
	if err != nil || !dup || string(prev) != "first" {
		t.Fatalf("repeated RecordCommand: prev %q dup %v err %v", prev, dup, err)
	}
	if again[0].ID != 0 {
		t.Fatalf("a duplicate's reply was given id %d", again[0].ID)
	}
	if got := len(readAll(t, o, gateway.ClassEvent)); got != 1 {
		t.Fatalf("%d reply events, want 1", got)
	}
	if res, ok, err := o.CommandResult(ctx, "c1"); err != nil || !ok || string(res) != "first" {
		t.Fatalf("CommandResult(c1) = %q, %v, %v", res, ok, err)
	}
	if res, ok, err := o.CommandResult(ctx, "nope"); err != nil || ok || res != nil {
		t.Fatalf("CommandResult(nope) = %q, %v, %v", res, ok, err)
	}
	if _, _, err := o.RecordCommand(ctx, "", nil, nil); err == nil {
		t.Fatal("RecordCommand with an empty id succeeded")
	}
	// A command without reply records is recorded all the same.
	if _, dup, err := o.RecordCommand(ctx, "c2", nil, nil); err != nil || dup {
		t.Fatalf("RecordCommand(c2) dup %v err %v", dup, err)
	}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}

	o, err = Open(path, DefaultOptions)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	for _, c := range []struct{ id, want string }{{"c1", "first"}, {"c2", ""}} {
		prev, dup, err := o.RecordCommand(ctx, c.id, []byte("after reopen"), reply(c.id))
		if err != nil || !dup || string(prev) != c.want {
			t.Fatalf("RecordCommand(%s) after reopen: prev %q dup %v err %v", c.id, prev, dup, err)
		}
	}
	if got := o.Backlog(); got != 1 {
		t.Fatalf("backlog %d after replays, want 1", got)
	}
}

func TestRecordCommandConcurrentDuplicatesRunOnce(t *testing.T) {
	o, _ := openTemp(t)
	ctx := context.Background()
	const callers = 16
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		fresh int
		prevs []string
	)
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			prev, dup, err := o.RecordCommand(ctx, "same", []byte(fmt.Sprint("result-", i)), reply("same"))
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if !dup {
				fresh++
			} else {
				prevs = append(prevs, string(prev))
			}
		}()
	}
	wg.Wait()
	if fresh != 1 {
		t.Fatalf("%d callers ran the command, want 1", fresh)
	}
	first, _, _ := o.CommandResult(ctx, "same")
	for _, p := range prevs {
		if p != string(first) {
			t.Fatalf("duplicate got %q, recorded %q", p, first)
		}
	}
	if got := len(readAll(t, o, gateway.ClassEvent)); got != 1 {
		t.Fatalf("%d reply events, want 1", got)
	}
}

func TestRecordCommandTableIsBounded(t *testing.T) {
	o, path := openTemp(t)
	ctx := context.Background()
	// One command older than commandsMaxAge.
	db := rawDB(t, path)
	if _, err := db.Exec(`INSERT INTO commands(id, at, result) VALUES ('ancient', ?, x'00')`, time.Now().Add(-commandsMaxAge-time.Hour).UnixMicro()); err != nil {
		t.Fatal(err)
	}
	db.Close()
	const n = commandsKept + 50
	var wg sync.WaitGroup
	ids := make(chan int)
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range ids {
				if _, dup, err := o.RecordCommand(ctx, fmt.Sprint("k", i), []byte("r"), nil); err != nil || dup {
					t.Errorf("command %d: dup %v err %v", i, dup, err)
				}
			}
		}()
	}
	for i := range n {
		ids <- i
	}
	close(ids)
	wg.Wait()
	var count int64
	if err := o.rdb.QueryRow(`SELECT count(*) FROM commands`).Scan(&count); err != nil {
		t.Fatal(err)
	}
	if count > commandsKept {
		t.Fatalf("%d commands kept, bound %d", count, commandsKept)
	}
	if _, ok, _ := o.CommandResult(ctx, "ancient"); ok {
		t.Fatal("a command older than commandsMaxAge was kept")
	}
	// The newest are kept: a command just recorded is a duplicate.
	last := fmt.Sprint("k", n-1)
	if _, ok, _ := o.CommandResult(ctx, last); !ok {
		t.Fatalf("the newest command %s was pruned", last)
	}
}

// TestRecordCommandExactlyOnceAcrossKill9 runs a child that records
// commands cmd-1, cmd-2, ... (each with one reply event) and prints each id
// once recorded, SIGKILLs it, and checks that every printed command and
// every reply event in the database go together, and that replaying every
// command after the restart runs none of those recorded again.
func TestRecordCommandExactlyOnceAcrossKill9(t *testing.T) {
	if p := os.Getenv("OUTBOX_CMD_CHILD"); p != "" {
		commandChild(p)
		return
	}
	path := filepath.Join(t.TempDir(), "outbox.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestRecordCommandExactlyOnceAcrossKill9$")
	cmd.Env = append(os.Environ(), "OUTBOX_CMD_CHILD="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	printed := map[string]bool{}
	for sc.Scan() && len(printed) < 300 {
		if id, ok := strings.CutPrefix(sc.Text(), "ok "); ok {
			printed[id] = true
		}
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	if len(printed) == 0 {
		t.Fatal("child recorded nothing")
	}
	ctx := context.Background()
	o, err := Open(path, DefaultOptions)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	replies := map[string]int{}
	for _, r := range readAll(t, o, gateway.ClassEvent) {
		replies[string(r.Body)]++
	}
	recorded := 0
	for i := 1; i <= len(printed)+200; i++ {
		id := fmt.Sprint("cmd-", i)
		body := `{"id":"` + id + `"}`
		res, ok, err := o.CommandResult(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if printed[id] && !ok {
			t.Fatalf("%s was acknowledged to the child but is not recorded", id)
		}
		if ok != (replies[body] == 1) || replies[body] > 1 {
			t.Fatalf("%s: recorded %v with %d reply events", id, ok, replies[body])
		}
		if ok {
			recorded++
			if string(res) != "result "+id {
				t.Fatalf("%s: result %q", id, res)
			}
		}
		prev, dup, err := o.RecordCommand(ctx, id, []byte("replayed"), reply(id))
		if err != nil {
			t.Fatal(err)
		}
		if dup != ok || (ok && !bytes.Equal(prev, res)) {
			t.Fatalf("replay of %s: dup %v prev %q, recorded %v %q", id, dup, prev, ok, res)
		}
	}
	t.Logf("child acknowledged %d commands, %d recorded before SIGKILL", len(printed), recorded)
}

func commandChild(path string) {
	o, err := Open(path, Options{MaxBatchRows: 512, MaxDelay: time.Millisecond})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	w := bufio.NewWriter(os.Stdout)
	for i := 1; ; i++ {
		id := fmt.Sprint("cmd-", i)
		if _, dup, err := o.RecordCommand(context.Background(), id, []byte("result "+id), reply(id)); err != nil || dup {
			fmt.Fprintln(os.Stderr, id, dup, err)
			os.Exit(1)
		}
		fmt.Fprintln(w, "ok", id)
		w.Flush()
	}
}

func TestSecretIsStableAcrossReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "outbox.db")
	o, err := Open(path, DefaultOptions)
	if err != nil {
		t.Fatal(err)
	}
	s1, err := o.Secret(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(s1) != secretBytes || bytes.Equal(s1, make([]byte, secretBytes)) {
		t.Fatalf("secret %x", s1)
	}
	s1[0] ^= 0xff // the caller's copy
	s2, _ := o.Secret(ctx)
	s1[0] ^= 0xff
	if !bytes.Equal(s1, s2) {
		t.Fatal("Secret changed within one Open (or returned its own buffer)")
	}
	o.Close()
	o, err = Open(path, DefaultOptions)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	s3, err := o.Secret(ctx)
	if err != nil || !bytes.Equal(s1, s3) {
		t.Fatalf("secret after reopen %x (err %v), before %x", s3, err, s1)
	}
	other, _ := openTemp(t)
	s4, err := other.Secret(ctx)
	if err != nil || bytes.Equal(s4, s1) {
		t.Fatalf("another outbox's secret %x (err %v) equals %x", s4, err, s1)
	}
}

// rawDB opens the database at path beside a running outbox.
func rawDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?_busy_timeout=10000")
	if err != nil {
		t.Fatal(err)
	}
	return db
}
