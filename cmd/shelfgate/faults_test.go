//go:build faults

// The fault-injection suite: the gateway binary on a simulated warehouse at
// a sustained rate against a real mosquitto, with `shelfctl collect`
// subscribed throughout on a persistent session, under gateway crashes,
// network faults (through gateway/faultproxy), lost PUBACKs and broker
// restarts. Every case ends with collect's audit: no gaps, no conflicts,
// duplicates only under the same id, every id the outbox assigned collected,
// and the gateway's peak RSS below 64 MB.
//
// Goroutine counts are not checked: the gateway runs as a separate process
// and exposes no goroutine count; RSS is the bound checked from outside.
//
// Run with: go test -tags faults -run '^TestFault' -timeout 20m -v ./cmd/shelfgate/
package main

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func faultRNG(t *testing.T) *rand.Rand {
	seed := uint64(time.Now().UnixNano())
	t.Logf("fault schedule seed %d", seed)
	return rand.New(rand.NewPCG(seed, 0x5eed))
}

// TestFaultGatewayKill9 SIGKILLs the gateway 20 times: half at random points
// (from mid-startup to a few seconds in), half within a millisecond of a
// PUBACK reaching it (seen by the proxy), when the ack is received but its
// DELETE is not yet committed.
func TestFaultGatewayKill9(t *testing.T) {
	r := newRig(t, rigOptions{Proxy: true})
	rng := faultRNG(t)
	afterPuback := 0
	for i := range 20 {
		r.startGateway()
		if i%2 == 1 {
			time.Sleep(jitter(rng, 300*time.Millisecond, 2*time.Second))
			seen := r.proxy.Stats().PubacksSeen
			deadline := time.Now().Add(10 * time.Second)
			for r.proxy.Stats().PubacksSeen == seen && time.Now().Before(deadline) {
				time.Sleep(200 * time.Microsecond)
			}
			if r.proxy.Stats().PubacksSeen > seen {
				afterPuback++
			}
		} else {
			time.Sleep(jitter(rng, 50*time.Millisecond, 3*time.Second))
		}
		r.killGateway()
	}
	if afterPuback < 5 {
		t.Errorf("only %d of 10 kills landed right after a PUBACK", afterPuback)
	}
	r.startGateway()
	time.Sleep(3 * time.Second)
	a := r.finish(20000)
	t.Logf("kills=20 after_puback=%d duplicates=%d", afterPuback, a.Duplicates)
}

// TestFaultNetwork cuts the link repeatedly (RST), blackholes it for a
// minute (only silence tells; reconnect attempts time out in it), then
// delays every chunk by 100ms each way for a minute (the watchdog must not
// take the slow link for a dead one).
func TestFaultNetwork(t *testing.T) {
	r := newRig(t, rigOptions{Proxy: true})
	rng := faultRNG(t)
	r.startGateway()
	r.waitDelivering("first delivery", 1000, 20*time.Second)

	for i := range 5 {
		before := r.proxy.Stats().Accepted
		r.proxy.Cut()
		start := time.Now()
		waitUntil(t, "reconnect after Cut", 15*time.Second, func() bool { return r.proxy.Stats().Accepted > before })
		t.Logf("cut %d: reconnect attempt after %s", i+1, time.Since(start).Round(time.Millisecond))
		time.Sleep(jitter(rng, time.Second, 2*time.Second))
	}
	r.waitDelivering("delivery after cuts", 1000, 20*time.Second)

	// Blackhole: nothing flows, nothing is reset. With keepalive 2s the
	// uplink's watchdog ends the session after 1.125 x keepalive of silence
	// (checked every keepalive/8); the bound is 1.5 x keepalive.
	// Then it tries a new connection after its backoff: 15s is the
	// liveness bound for that.
	ended := r.logCount("broker session ended")
	before := r.proxy.Stats().Accepted
	r.proxy.Blackhole(true)
	start := time.Now()
	waitUntil(t, "gateway to notice the blackhole", 15*time.Second, func() bool { return r.logCount("broker session ended") > ended })
	noticed := time.Since(start)
	waitUntil(t, "gateway's reconnect attempt in the blackhole", 15*time.Second, func() bool { return r.proxy.Stats().Accepted > before })
	attempt := time.Since(start)
	t.Logf("blackhole: session ended %s after it began (keepalive 2s), first reconnect attempt at %s; %s",
		noticed.Round(time.Millisecond), attempt.Round(time.Millisecond), r.lastLogLine("broker session ended"))
	if noticed > 3*time.Second {
		t.Errorf("the gateway took %s to notice a dead link with keepalive 2s (want at most 1.5 x keepalive)", noticed)
	}
	if line := r.lastLogLine("broker session ended"); !strings.Contains(line, "broker silent for") {
		t.Errorf("the session ended for another reason than the uplink's watchdog: %s", line)
	}
	time.Sleep(max(0, time.Minute-time.Since(start)))
	r.proxy.Blackhole(false)
	resumed := r.waitDelivering("delivery after the blackhole", 1000, 30*time.Second)
	t.Logf("blackhole of 1m ended after %d connection attempts in it: 1000 more records collected %s later",
		r.proxy.Stats().Accepted-before, resumed.Round(time.Millisecond))

	// Latency on every chunk in both directions, for a minute.
	silent := r.logCount("broker silent")
	r.proxy.Delay(100 * time.Millisecond)
	delayed, dstart := r.collected(), time.Now()
	r.waitDelivering("delivery with 100ms delay", 500, 20*time.Second)
	time.Sleep(max(0, time.Minute-time.Since(dstart)))
	r.proxy.Delay(0)
	t.Logf("1m with 100ms delay each way: %d records collected", r.collected()-delayed)
	if n := r.logCount("broker silent") - silent; n > 0 {
		t.Errorf("the watchdog took a slow link (100ms each way) for a dead one %d times:\n%s", n, r.lastLogLine("broker silent"))
	}

	time.Sleep(2 * time.Second)
	r.finish(10000)
	t.Logf("gateway connects: %d", strings.Count(r.gwLog.String(), "connected to broker"))
}

// TestFaultFlappingLink cuts the link every 1-3s for two minutes.
func TestFaultFlappingLink(t *testing.T) {
	r := newRig(t, rigOptions{Proxy: true})
	rng := faultRNG(t)
	r.startGateway()
	r.waitDelivering("first delivery", 500, 20*time.Second)
	// Each cut is followed by the time to the gateway's next connection
	// attempt (its jittered backoff), logged, not asserted.
	var delays []time.Duration
	missed := 0
	cuts := 0
	for end := time.Now().Add(2 * time.Minute); time.Now().Before(end); {
		before := r.proxy.Stats().Accepted
		r.proxy.Cut()
		cuts++
		cut := time.Now()
		next := cut.Add(jitter(rng, time.Second, 3*time.Second))
		seen := false
		for time.Now().Before(next) {
			if !seen && r.proxy.Stats().Accepted > before {
				delays = append(delays, time.Since(cut).Round(10*time.Millisecond))
				seen = true
			}
			time.Sleep(5 * time.Millisecond)
		}
		if !seen {
			missed++
		}
	}
	t.Logf("flapping: %d cuts; reconnect attempt after each cut: %v; %d cuts with no attempt before the next cut", cuts, delays, missed)
	r.waitDelivering("delivery after flapping", 1000, 30*time.Second)
	r.finish(20000)
	t.Logf("cuts=%d gateway connects=%d", cuts, strings.Count(r.gwLog.String(), "connected to broker"))
}

// TestFaultLostPubacks drops every PUBACK for 10s: the gateway's ack timeout
// (2s) ends the session, it reconnects and resends, still without acks,
// until the PUBACKs flow again. The collector sees the resends as
// duplicates of the same ids only.
func TestFaultLostPubacks(t *testing.T) {
	r := newRig(t, rigOptions{Proxy: true, AckTimeout: 2 * time.Second})
	r.startGateway()
	r.waitDelivering("first delivery", 1000, 20*time.Second)
	before := r.proxy.Stats().Accepted
	r.proxy.DropPubacks(true)
	time.Sleep(10 * time.Second)
	r.proxy.DropPubacks(false)
	s := r.proxy.Stats()
	if s.PubacksDropped == 0 {
		t.Fatal("no PUBACK was dropped")
	}
	if s.Accepted-before < 2 {
		t.Errorf("gateway reconnected %d times in 10s without PUBACKs (ack_timeout 2s), want at least 2", s.Accepted-before)
	}
	r.waitDelivering("delivery after PUBACKs return", 1000, 30*time.Second)
	a := r.finish(10000)
	if a.Duplicates == 0 {
		t.Error("no duplicates although PUBACKs were dropped: nothing was resent")
	}
	t.Logf("pubacks_dropped=%d reconnects_while_dropping=%d duplicates=%d", s.PubacksDropped, s.Accepted-before, a.Duplicates)
}

// TestFaultBrokerRestart restarts mosquitto 10 times while the gateway and
// the collector run.
//
// With SIGTERM mosquitto saves its state and nothing may be lost.
//
// With SIGKILL and uplink.ack_mode broker (opt-in:
// SHELFGATE_FAULTS_BROKER_KILL=1), messages mosquitto PUBACKed to the
// gateway but had neither saved (autosave_interval 1) nor delivered to the
// collector are lost: the gateway deleted them at the PUBACK. With the
// collector keeping up that window is milliseconds; "sigkill-behind" pauses
// the collector (SIGSTOP) for 1.5s before each kill, as a consumer a little
// behind would be, and then the audit shows gaps: the known limit of
// acknowledging at the broker (docs/architecture.md, Known gaps).
//
// With uplink.ack_mode consumer (collect --ack), rows stay in the outbox
// until the collector confirms them, so the same SIGKILLs with the
// collector behind must cost re-sends only.
func TestFaultBrokerRestart(t *testing.T) {
	const optIn = "SHELFGATE_FAULTS_BROKER_KILL"
	for _, tc := range []struct {
		name     string
		signal   syscall.Signal
		behind   bool // pause the collector 1.5s before each restart
		consumer bool // uplink.ack_mode consumer, collect --ack
		optIn    bool
	}{
		{"sigterm", syscall.SIGTERM, true, false, false},
		{"sigkill-consumer-ack-behind", syscall.SIGKILL, true, true, false},
		{"sigkill", syscall.SIGKILL, false, false, true},
		{"sigkill-behind", syscall.SIGKILL, true, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.optIn && os.Getenv(optIn) != "1" {
				t.Skipf("opt-in: set %s=1 (with ack_mode broker, mosquitto PUBACKs before it persists and a SIGKILL loses what it held)", optIn)
			}
			r := newRig(t, rigOptions{ConsumerAcks: tc.consumer})
			rng := faultRNG(t)
			r.startGateway()
			r.waitDelivering("first delivery", 1000, 20*time.Second)
			for range 10 {
				time.Sleep(jitter(rng, 1500*time.Millisecond, 3*time.Second))
				if tc.behind {
					r.collector.Process.Signal(syscall.SIGSTOP)
					time.Sleep(1500 * time.Millisecond)
				}
				if tc.signal == syscall.SIGKILL {
					r.broker.Kill()
				} else {
					r.broker.Stop()
				}
				if tc.behind {
					r.collector.Process.Signal(syscall.SIGCONT)
				}
				time.Sleep(jitter(rng, 0, 1500*time.Millisecond))
				r.broker.Start()
			}
			t.Logf("broker restarts=10 (%s), collector paused before each: %v", tc.name, tc.behind)
			r.waitDelivering("delivery after the restarts", 1000, 30*time.Second)
			r.finish(10000)
		})
	}
}

// TestFaultSlowConsumerOverflow runs mosquitto with its default
// max_queued_messages (1000) and stops the collector (SIGSTOP) for 12s while
// the gateway publishes small batches fast: the broker drops what exceeds
// the collector's queue.
//
// With uplink.ack_mode broker the gateway delivered everything (its outbox
// is empty), so the records are gone; collect must report the gaps (exit 1,
// missing > 0) rather than hide them. With ack_mode consumer the collector
// never confirms what the broker dropped, so the gateway re-sends it and
// nothing is lost.
func TestFaultSlowConsumerOverflow(t *testing.T) {
	for _, tc := range []struct {
		name     string
		consumer bool
	}{
		{"broker-ack", false},
		{"consumer-ack", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, rigOptions{BatchRecords: 5, ConsumerAcks: tc.consumer, BrokerConf: "persistence true\nautosave_interval 1\n"})
			r.startGateway()
			r.waitDelivering("first delivery", 500, 20*time.Second)
			if err := r.collector.Process.Signal(syscall.SIGSTOP); err != nil {
				t.Fatal(err)
			}
			time.Sleep(12 * time.Second)
			if err := r.collector.Process.Signal(syscall.SIGCONT); err != nil {
				t.Fatal(err)
			}
			r.waitDelivering("collector catching up", 500, 30*time.Second)
			time.Sleep(2 * time.Second)
			if tc.consumer {
				r.finish(10000)
				return
			}
			r.stopGateway()
			r.stopSampling()
			total, backlog := outboxTotals(t, r.dbPath)
			if backlog != 0 {
				t.Errorf("gateway left %d rows undelivered", backlog)
			}
			// Give the collector time to take what the broker still queues.
			time.Sleep(3 * time.Second)
			a := r.stopCollector(0)
			collected := countLines(t, r.out)
			t.Logf("RESULT produced=%d collected=%d received=%d duplicates=%d missing=%d conflicts=%d", total, collected, a.Received, a.Duplicates, a.Missing, a.Conflicts)
			if collected >= total {
				t.Fatalf("collected %d of %d: the broker dropped nothing, so this case tested nothing (raise the rate or the pause)", collected, total)
			}
			if a.ExitErr == nil || a.Missing == 0 || a.Result == "OK" {
				t.Fatalf("the broker dropped %d records but collect did not report them (exit %v):\n%s", total-collected, a.ExitErr, a.Text)
			}
			// Loss at a stream's tail (or of a whole stream) is invisible to
			// sequence gaps; the gateway's final status (backlog 0, last_seq
			// per stream) lets the audit count it too.
			t.Run("every lost record reported", func(t *testing.T) {
				if int64(total-collected) != a.Missing {
					tail, detail := unreportedTails(t, r.dbPath, a.Text)
					t.Errorf("%d ids never collected, audit reports %d missing (%d lost after streams' last received sequence number):\n%s",
						total-collected, a.Missing, tail, strings.Join(detail, "\n"))
				}
			})
		})
	}
}

// TestFaultOutageDiskBudget cuts the gateway off the broker (the proxy
// refuses connections) for 30s of a sustained warehouse, many times what the
// outbox may hold, as a long outage would: with a 2 MiB outbox.max_bytes,
// and on a small filesystem with a budget far larger than the disk: a 32 MiB
// tmpfs with 8 MiB free (room for the outbox's reserve, an eighth of the
// filesystem, and about 4 MiB of database and WAL),
// and 3 MiB (less than the default 8 MiB reserve, which is scaled down to
// 384 KiB there, and less than one WAL of a busy gateway). The
// oldest telemetry is shed and reported; after the outage the audit must
// account for every id as received or reported shed (missing=0), the
// database must stay near its bound, and the gateway's RSS below 64 MB.
func TestFaultOutageDiskBudget(t *testing.T) {
	for _, tc := range []struct {
		name     string
		maxBytes string
		budget   int64 // bytes the database file may reach (loose: budget plus headroom)
		tmpfs    int64 // size of the outbox's filesystem; 0 = the test's temp dir
		fill     int64 // bytes of that filesystem taken by another file first
	}{
		{"max_bytes", "2MiB", 4 << 20, 0, 0},
		{"full_filesystem", "1GiB", 12 << 20, 32 << 20, 24 << 20},
		{"full_filesystem_below_reserve", "1GiB", 3 << 20, 3 << 20, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var dir string
			if tc.tmpfs > 0 {
				dir = mountTmpfs(t, tc.tmpfs)
				if tc.fill > 0 {
					if err := os.WriteFile(filepath.Join(dir, "filler"), make([]byte, tc.fill), 0o600); err != nil {
						t.Fatal(err)
					}
				}
			}
			r := newRig(t, rigOptions{Proxy: true, MaxBytes: tc.maxBytes, OutboxDir: dir, AllowShed: true})
			r.startGateway()
			r.waitDelivering("first delivery", 1000, 20*time.Second)

			r.proxy.Refuse(true)
			r.proxy.Cut()
			var peakDB, peakWAL, peakReserve int64
			for end := time.Now().Add(30 * time.Second); time.Now().Before(end); {
				peakDB = max(peakDB, fileSize(r.dbPath))
				peakWAL = max(peakWAL, fileSize(r.dbPath+"-wal"))
				peakReserve = max(peakReserve, fileSize(r.dbPath+"-reserve"))
				time.Sleep(100 * time.Millisecond)
			}
			total, backlog := outboxTotals(t, r.dbPath)
			t.Logf("after a 30s outage: %d ids assigned, %d rows held, database peak %.2f MB, WAL peak %.2f MB, reserve file peak %.2f MB (max_bytes %s)",
				total, backlog, float64(peakDB)/(1<<20), float64(peakWAL)/(1<<20), float64(peakReserve)/(1<<20), tc.maxBytes)
			if peakDB > tc.budget {
				t.Errorf("database file reached %d bytes, bound %d", peakDB, tc.budget)
			}
			r.proxy.Refuse(false)
			resumed := r.waitDelivering("delivery after the outage", 1000, 30*time.Second)
			t.Logf("outage ended: 1000 more records collected %s later", resumed.Round(time.Millisecond))
			time.Sleep(3 * time.Second)
			// With the link back, acks free the outbox: the gateway must
			// accept readings again and drain what it held.
			after, held := outboxTotals(t, r.dbPath)
			if after <= total {
				t.Errorf("no reading accepted in the %s after the outage ended (ids assigned stayed at %d, %d rows still held): the gateway did not recover from the full outbox", (resumed + 3*time.Second).Round(time.Second), after, held)
			}
			a := r.finish(10000)
			t.Logf("shed=%d missing=%d", a.Shed, a.Missing)
		})
	}
}
