package modelsync

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"testing"
)

// The crash tests re-execute the test binary as a gateway that SIGKILLs
// itself at an install step named by these variables.
const (
	envCrashPoint = "SHELFGATE_MODELSYNC_CRASH"    // step name
	envCrashAt    = "SHELFGATE_MODELSYNC_CRASH_AT" // the nth time the step is reached (1 if unset)
	envCrashDir   = "SHELFGATE_MODELSYNC_DIR"      // model directory
	envCrashOp    = "SHELFGATE_MODELSYNC_OP"       // "transfer" (offer version 2 and deliver it) or "rollback"
)

func TestMain(m *testing.M) {
	if point := os.Getenv(envCrashPoint); point != "" {
		os.Exit(crashChild(point))
	}
	os.Exit(m.Run())
}

// crashChild runs an install in the directory the parent prepared and is
// killed at point; it returns (exit status 3) if the point is never reached.
func crashChild(point string) int {
	at, _ := strconv.Atoi(os.Getenv(envCrashAt))
	at = max(at, 1)
	seen := 0
	t := &testing.T{} // only for the fixtures' signatures; failures exit below
	r := &rig{t: t, dir: os.Getenv(envCrashDir), now: testNow}
	r.pub, r.priv = testKey(1)
	r.cfg, r.sopts = rigConfig(r)
	r.sopts.crash = func(p string) {
		if p == point {
			if seen++; seen == at {
				syscall.Kill(os.Getpid(), syscall.SIGKILL)
			}
		}
	}
	s, err := OpenStore(context.Background(), r.dir, r.sopts)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	r.store, r.req = s, &fakeRequester{}
	r.sync = New(s, r.req, r.cfg)
	ctx := context.Background()
	switch os.Getenv(envCrashOp) {
	case "rollback":
		if _, err := s.Rollback(ctx); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
	default:
		data, err := os.ReadFile(filepath.Join(r.dir, "..", "v2.sgm"))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		payload, m := r.offer(data, 2, nil)
		if err := r.sync.Offer(ctx, payload); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		r.serve(SplitBlocks(m, data), -1, nil)
	}
	fmt.Fprintf(os.Stderr, "crash point %s #%d not reached (status %+v)\n", point, at, r.sync.Status())
	return 3
}

// A gateway SIGKILLed at every step of staging, installing and rolling
// back comes back with version 1 or 2 active, never none, no staging file
// or link left, and a kept transfer that finishes on resume.
func TestSIGKILLDuringStagingAndRename(t *testing.T) {
	if testing.Short() {
		t.Skip("re-executes the test binary")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// The reference model is five 1 KiB blocks, committed two at a time
	// (rigConfig) in the background while the next blocks are written, the
	// last ones by Stage; kept are the numbers of blocks the restarted
	// store may hold recorded (-1: no transfer is left).
	cases := []struct {
		op, point string
		at        int
		want      []uint64 // acceptable active versions after restart
		kept      []int
	}{
		{"transfer", "block-written", 3, []uint64{1}, []int{0, 2}}, // blocks 0-1 committing or recorded, 2 written
		{"transfer", "blocks-synced", 1, []uint64{1}, []int{0}},    // blocks 0-1 synced, not recorded
		{"transfer", "block-recorded", 1, []uint64{1}, []int{2}},   // blocks 0-1 recorded
		{"transfer", "blocks-synced", 2, []uint64{1}, []int{2}},    // the next batch synced, not recorded
		{"transfer", "block-recorded", 2, []uint64{1}, []int{4, 5}},
		{"transfer", "stage-start", 1, []uint64{1}, []int{5}},
		{"transfer", "stage-hashed", 1, []uint64{1}, []int{5}},
		{"transfer", "promote-start", 1, []uint64{1}, []int{5}},
		{"transfer", "previous-linked", 1, []uint64{1}, []int{5}},
		{"transfer", "previous-renamed", 1, []uint64{1}, []int{5}},
		{"transfer", "active-renamed", 1, []uint64{2}, []int{-1}},
		{"transfer", "dir-synced", 1, []uint64{2}, []int{-1}},
		{"transfer", "committed", 1, []uint64{2}, []int{-1}},
		{"rollback", "rollback-start", 1, []uint64{2}, []int{-1}},
		{"rollback", "rollback-renamed", 1, []uint64{1}, []int{-1}},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s/%s#%d", tc.op, tc.point, tc.at), func(t *testing.T) {
			r := newRig(t, nil)
			r.install(1)
			if tc.op == "rollback" {
				r.install(2)
			}
			v2 := modelFile(t, 2, r.priv, nil)
			if err := os.WriteFile(filepath.Join(r.dir, "..", "v2.sgm"), v2, 0o644); err != nil {
				t.Fatal(err)
			}
			r.store.Close()
			cmd := exec.Command(exe)
			cmd.Env = append(os.Environ(), envCrashPoint+"="+tc.point, envCrashAt+"="+strconv.Itoa(tc.at),
				envCrashDir+"="+r.dir, envCrashOp+"="+tc.op)
			out, err := cmd.CombinedOutput()
			ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
			if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
				t.Fatalf("child was not killed at %s: %v\n%s", tc.point, err, out)
			}
			r.store = nil
			r.open() // restart
			m, v := r.store.Active()
			if m == nil {
				t.Fatalf("no active model after a kill at %s (recovered %v)", tc.point, r.store.Recovered())
			}
			okv := false
			for _, w := range tc.want {
				okv = okv || v == w
			}
			if !okv {
				t.Errorf("active version %d after a kill at %s, want one of %v", v, tc.point, tc.want)
			}
			left := leftovers(t, r.dir)
			for _, f := range left {
				if f != "incoming-2.part" {
					t.Errorf("file %s left after a kill at %s", f, tc.point)
				}
			}
			t.Logf("kill at %s #%d: active %d, recovered %v, kept %v", tc.point, tc.at, v, r.store.Recovered(), left)
			if tc.op == "rollback" {
				return
			}
			tr, err := r.store.ResumeTransfer(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			kept := -1
			if tr != nil {
				kept = tr.Received()
				tr.Close()
			}
			if !slices.Contains(tc.kept, kept) {
				t.Errorf("%d blocks recorded after a kill at %s #%d, want one of %v", kept, tc.point, tc.at, tc.kept)
			}
			// The kept transfer (if any) finishes; version 2 ends up active.
			if err := r.sync.Resume(context.Background()); err != nil {
				t.Fatal(err)
			}
			payload, man := r.offer(v2, 2, nil)
			if v == 1 {
				if r.sync.Status().State != StatePromoted {
					if err := r.sync.Offer(context.Background(), payload); err != nil {
						t.Fatal(err)
					}
				}
				r.serve(SplitBlocks(man, v2), -1, nil)
			}
			if _, v := r.store.Active(); v != 2 {
				t.Fatalf("after resume active %d, status %+v", v, r.sync.Status())
			}
			if l := leftovers(t, r.dir); len(l) != 0 {
				t.Errorf("files left after the install finished: %v", l)
			}
		})
	}
}
