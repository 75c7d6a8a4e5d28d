//go:build faults

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shelfgate/shelfgate/firmware-sim/warehouse"
	"github.com/shelfgate/shelfgate/gateway"
	"github.com/shelfgate/shelfgate/gateway/collect"
	"github.com/shelfgate/shelfgate/gateway/config"
	"github.com/shelfgate/shelfgate/gateway/faultproxy"
	"github.com/shelfgate/shelfgate/gateway/mqtttest"
	"github.com/shelfgate/shelfgate/gateway/outbox"
	"github.com/shelfgate/shelfgate/gateway/shelf"
	"github.com/shelfgate/shelfgate/gateway/uplink"
	"github.com/shelfgate/shelfgate/gateway/wire/shelfv1"
)

// Knobs of TestFaultLongOutage. The defaults are the case as run by the
// suite; the environment changes them for investigation.
const (
	// longOutageHoursEnv sets the simulated length of the outage in hours
	// (default 72).
	longOutageHoursEnv = "SHELFGATE_FAULTS_OUTAGE_HOURS"
	// longOutageMaxBytesEnv sets outbox.max_bytes (default
	// longOutageMaxBytes).
	longOutageMaxBytesEnv = "SHELFGATE_FAULTS_OUTAGE_MAX_BYTES"
	// longOutageSeedEnv fixes the warehouse seed (default random, logged).
	longOutageSeedEnv = "SHELFGATE_FAULTS_OUTAGE_SEED"

	longOutageHours = 72
	// longOutageSampleRate is the HX711's default rate (RATE pin low):
	// 10 samples/s per bin, 80 readings/s for the suite's 2 x 4 bins.
	longOutageSampleRate = 10
	// longOutageBatch is the most readings one Emit carries, as
	// sensors/loadcell batches them.
	longOutageBatch = 1024
)

// TestFaultLongOutage is fault case 6: the equivalent of 72 hours offline at
// the production rate (the suite's 2 shelves x 4 bins at the HX711's
// default 10 samples/s per bin: 80 readings/s, 20,736,000 readings) against
// a small outbox budget, compressed in time.
//
// The bus-level simulators cannot run thousands of times faster than real
// time, so the readings come straight from the seeded warehouse model (the
// raw HX711 code of every bin at every sample, CodeAt, converted to grams
// with the bin's calibration as sensors/loadcell does), stamped with their
// simulated times. From there on everything is the gateway's own code, wired
// as run.go wires it from the suite's configuration: gateway.Gateway.Emit
// with the gateway/shelf detector as its classifier, the SQLite outbox on a
// real file with outbox.max_bytes, and the uplink running throughout but
// pointed at a faultproxy that refuses every connection. Readings go in as
// fast as the outbox takes them. Then the proxy lets the uplink through to a
// real mosquitto and an in-process gateway/collect subscriber takes
// everything until the backlog has drained.
//
// It requires: the database file stays within max_page_count (max_bytes
// plus the outbox's documented headroom) and the WAL within half the
// reserve plus one commit, sampled after every commit of the outage; no
// event is shed and every event id the outbox assigned (detector events and
// shed notices) is collected; telemetry collected + telemetry shed (the
// outbox's count, the sum of its shed notices, and collect's audit) equals
// the readings produced exactly; the audit has no gaps and no conflicts;
// and the test process's goroutines, live heap and resident set do not grow
// with the readings.
//
// The outbox's writer sets the pace: measured on two cores, ~160,000
// readings/s at first, falling to ~80,000 by the end as events pile up
// (each shed scans past every event older than the oldest telemetry), so
// the 72 h take three to four minutes; shedding, its gaps-and-islands
// query above all, is close to half the writer's time.
// SHELFGATE_FAULTS_OUTAGE_HOURS, SHELFGATE_FAULTS_OUTAGE_MAX_BYTES and
// SHELFGATE_FAULTS_OUTAGE_SEED change the length, the budget and the
// warehouse (see longOutageMaxBytes for why the budget is 64 MiB and what
// 8 MiB does).
func TestFaultLongOutage(t *testing.T) {
	hours := float64(longOutageHours)
	if s := os.Getenv(longOutageHoursEnv); s != "" {
		h, err := strconv.ParseFloat(s, 64)
		if err != nil || h <= 0 {
			t.Fatalf("%s=%q: want a positive number of hours", longOutageHoursEnv, s)
		}
		hours = h
		t.Logf("%s=%s: simulating %g h instead of %d h", longOutageHoursEnv, s, h, longOutageHours)
	}
	maxBytesText := longOutageMaxBytes
	if s := os.Getenv(longOutageMaxBytesEnv); s != "" {
		maxBytesText = s
	}
	goroutinesBefore := runtime.NumGoroutine()

	dir := t.TempDir()
	dbPath := filepath.Join(dir, "outbox.db")
	broker := mqtttest.StartMosquitto(t)
	proxy, err := faultproxy.New(broker.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	proxy.Refuse(true) // the outage: every connection attempt is reset

	// The suite's gateway configuration, at the production sample rate.
	seed := rand.IntN(1 << 20)
	if s := os.Getenv(longOutageSeedEnv); s != "" {
		if seed, err = strconv.Atoi(s); err != nil {
			t.Fatalf("%s=%q: %v", longOutageSeedEnv, s, err)
		}
	}
	cfg, err := config.Parse(strings.NewReader(fmt.Sprintf(faultConfig, proxy.URL(), dbPath, maxBytesText, 500, 20*time.Second, "broker", seed, 1.0)))
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(checkSensors, checkSimulation); err != nil {
		t.Fatal(err)
	}
	sc, err := decodeSimulation(cfg)
	if err != nil {
		t.Fatal(err)
	}
	sc.Warehouse.SampleRate = longOutageSampleRate
	wh, err := warehouse.New(sc.Warehouse)
	if err != nil {
		t.Fatal(err)
	}
	perBin := int64(hours * 3600 * longOutageSampleRate)
	nBins := len(wh.Bins())
	want := perBin * int64(nBins)
	maxBytes := int64(cfg.Outbox.MaxBytes)
	t.Logf("warehouse seed %d: %d bins at %d samples/s, %g simulated hours = %d readings; outbox.max_bytes %s",
		seed, nBins, longOutageSampleRate, hours, want, maxBytesText)

	// Wiring as in run.go.
	var logBuf lockedBuffer
	log := slog.New(slog.NewTextHandler(&logBuf, &slog.HandlerOptions{Level: slog.LevelInfo})).With("gateway", cfg.Gateway.ID)
	ob, err := outbox.Open(cfg.Outbox.Path, outbox.Options{MaxBatchRows: cfg.Outbox.CommitRows, MaxDelay: cfg.Outbox.CommitInterval, MaxBytes: maxBytes})
	if err != nil {
		t.Fatal(err)
	}
	obClosed := false
	t.Cleanup(func() {
		if !obClosed {
			ob.Close()
		}
	})
	topics := shelfv1.Topics{Site: cfg.Gateway.Site, Gateway: cfg.Gateway.ID}
	up, err := uplink.New(ob, uplink.Options{
		Brokers: cfg.Broker.URLs, Topics: topics,
		KeepAlive: cfg.Broker.KeepAlive, AckTimeout: cfg.Uplink.AckTimeout,
		BatchRecords: cfg.Uplink.BatchRecords, Window: cfg.Uplink.Window, ReplayRate: cfg.Uplink.ReplayRate, Compress: cfg.Uplink.Compress,
		ConsumerAcks: cfg.Uplink.AckMode == "consumer", ConsumerAckTimeout: cfg.Uplink.ConsumerAckTimeout,
		Birth:  birthStatus(ob, cfg.Uplink.AckMode), // the status run.go gives the uplink
		Logger: log.With("component", "uplink"),
	})
	if err != nil {
		t.Fatal(err)
	}
	var bins []shelf.Bin
	for _, b := range wh.Bins() {
		bins = append(bins, shelf.Bin{Stream: gateway.StreamID("loadcell/" + b.ID), ID: b.ID, SKU: b.SKU, UnitGrams: b.UnitGrams, LowStockUnits: max(1, b.Capacity/10), InitialUnits: b.InitialUnits})
	}
	det, err := shelf.New(shelf.Config{Bins: bins, WindowSamples: detectorWindow(sc.Warehouse.SampleRate)})
	if err != nil {
		t.Fatal(err)
	}
	rec := &recordingOutbox{ob: ob, db: dbPath}
	start := time.Now().Truncate(time.Second).Add(-time.Duration(hours * float64(time.Hour)))
	feed := &warehouseFeed{wh: wh, start: start, perBin: perBin, done: make(chan struct{})}
	gw := &gateway.Gateway{Logger: log, FlushTimeout: cfg.Uplink.FlushTimeout,
		Sources: []gateway.Source{feed}, Outbox: rec, Uplink: up, Classifiers: []gateway.Classifier{det}}

	// The collector: subscribed (persistent session) before the outage.
	col := collect.New()
	var counts collectCounts
	subscribed := make(chan struct{}, 1)
	colCtx, stopCol := context.WithCancel(context.Background())
	colDone := make(chan error, 1)
	go func() {
		colDone <- collect.Subscribe(colCtx, col, collect.SubscribeOptions{
			Broker: broker.URL, ClientID: "longoutage-collector", Persistent: true,
			Site: cfg.Gateway.Site, Gateway: cfg.Gateway.ID,
			OnBatch:      counts.add,
			OnSubscribed: func() { subscribed <- struct{}{} },
		})
	}()
	colStopped := false
	stopCollector := func() {
		if !colStopped {
			colStopped = true
			stopCol()
			if err := <-colDone; err != nil {
				t.Errorf("collector: %v", err)
			}
		}
	}
	t.Cleanup(stopCollector)
	select {
	case <-subscribed:
	case err := <-colDone:
		t.Fatalf("collector ended before subscribing: %v", err)
	case <-time.After(15 * time.Second):
		t.Fatal("collector not subscribed within 15s")
	}

	// The outage: the gateway runs, the uplink keeps failing to connect.
	sampler := newDiskSampler(dbPath)
	rec.sampler = sampler
	gwCtx, stopGW := context.WithCancel(context.Background())
	// A test that gives up early does not wait out the flush timeout.
	flushCtx, cutFlush := context.WithCancel(context.Background())
	t.Cleanup(cutFlush)
	gwDone := make(chan error, 1)
	outageStart := time.Now()
	go func() { gwDone <- gw.RunWithFlush(gwCtx, flushCtx) }()
	gwStopped := false
	t.Cleanup(func() {
		if !gwStopped {
			cutFlush()
			stopGW()
			<-gwDone
		}
	})
	stopTicker := sampler.tick(20 * time.Millisecond)

	var early memPoint
	earlyAt := want / 8
	nextLog := want / 6
	progress := time.NewTicker(100 * time.Millisecond)
outage:
	for {
		select {
		case <-feed.done:
			break outage
		case err := <-gwDone:
			gwStopped = true
			t.Fatalf("gateway stopped during the outage: %v\n%s", err, tailText(logBuf.String(), 30))
		case <-progress.C:
		}
		n := feed.produced.Load()
		if early.at == 0 && n >= earlyAt {
			early = takeMemPoint(n)
		}
		if n >= nextLog {
			st, _ := ob.Stats(context.Background())
			el := time.Since(outageStart)
			t.Logf("outage: %5.1f of %g simulated hours after %s (%.0f readings/s): backlog %d rows, used %.2f MiB, file %.2f MiB, WAL %.2f MiB, shed %d telemetry / %d events in %d notices",
				float64(n)/float64(want)*hours, hours, el.Round(time.Second), float64(n)/el.Seconds(), st.Backlog,
				mib(st.UsedBytes), mib(st.FileBytes), mib(st.WALBytes), st.ShedTelemetry, st.ShedEvents, st.ShedNotices)
			nextLog += want / 6
		}
	}
	progress.Stop()
	outageWall := time.Since(outageStart)
	if err := feed.err(); err != nil {
		t.Fatalf("feeding the gateway: %v\n%s", err, tailText(logBuf.String(), 30))
	}
	late := takeMemPoint(feed.produced.Load())
	stopTicker()
	stAfter, err := ob.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	c := gw.Counters()
	eventIDs := rec.eventIDs()
	peak := sampler.peaks()
	t.Logf("OUTAGE %g simulated hours in %s wall (%.0f readings/s, %.0fx real time): readings produced %d, accepted %d, detector events %d; outbox: shed telemetry %d, shed events %d, shed notices %d, backlog %d rows (%d events); peak database %.2f MiB, peak WAL %.2f MiB, reserve %.2f MiB, peak of the three together %.2f MiB, %d size samples; uplink connects %d",
		hours, outageWall.Round(time.Millisecond), float64(c.Produced)/outageWall.Seconds(), hours*3600/outageWall.Seconds(),
		c.Produced, c.Accepted, c.Events, stAfter.ShedTelemetry, stAfter.ShedEvents, stAfter.ShedNotices, stAfter.Backlog, stAfter.Events,
		mib(peak.db), mib(peak.wal), mib(peak.reserve), mib(peak.total), peak.samples, up.Stats().Connects)
	t.Logf("test process during the outage: live heap %.1f MiB at %d readings, %.1f MiB at %d; goroutines %d and %d; RSS %.1f and %.1f MiB",
		mib(int64(early.heap)), early.at, mib(int64(late.heap)), late.at, early.goroutines, late.goroutines, mib(early.rss), mib(late.rss))

	if c.Produced != want || c.Accepted != want {
		t.Fatalf("gateway produced %d and accepted %d readings, the feed made %d", c.Produced, c.Accepted, want)
	}
	if n := up.Stats().Connects; n != 0 {
		t.Errorf("the uplink connected %d times through a proxy refusing every connection: the outage was not one", n)
	}
	if stAfter.ShedTelemetry == 0 {
		t.Fatalf("nothing was shed: %d readings fit in max_bytes %s, so this case tested nothing", want, maxBytesText)
	}

	// Disk: the database file may not pass max_page_count (max_bytes plus
	// headroom, docs/architecture.md "Bounded disk"); the WAL is
	// checkpointed once it passes half the reserve (wal_autocheckpoint), so
	// it may exceed that by what one commit writes before the checkpoint.
	dbLimit := maxBytes + outboxHeadroom(maxBytes)
	walLimit := int64(longOutageReserve/2 + longOutageCommitSlack)
	if peak.db > dbLimit {
		t.Errorf("database file reached %d bytes (%.2f MiB) during the outage, above max_bytes plus headroom, %d bytes (%.2f MiB)", peak.db, mib(peak.db), dbLimit, mib(dbLimit))
	}
	if peak.wal > walLimit {
		t.Errorf("WAL reached %d bytes (%.2f MiB) during the outage, above half the reserve plus one commit, %d bytes (%.2f MiB)", peak.wal, mib(peak.wal), walLimit, mib(walLimit))
	}
	if peak.reserve > longOutageReserve {
		t.Errorf("reserve file reached %d bytes, want at most %d", peak.reserve, longOutageReserve)
	}
	if stAfter.ShedEvents != 0 {
		t.Errorf("the outbox shed %d events during the outage (with %d telemetry rows shed): the events of %g hours at this rate, %d detector events and %d shed notices, do not fit in max_bytes %s",
			stAfter.ShedEvents, stAfter.ShedTelemetry, hours, len(eventIDs), stAfter.ShedNotices, maxBytesText)
	}

	// Memory: nothing in the process may grow with the readings. Between an
	// eighth of the outage and its end the live heap may grow only by the
	// test's own record of event ids and the outbox's in-memory tails.
	if grow := int64(late.heap) - int64(early.heap); grow > longOutageHeapGrowth {
		t.Errorf("live heap grew by %.1f MiB between %d and %d readings (want at most %.0f MiB): memory grows with the readings",
			mib(grow), early.at, late.at, mib(longOutageHeapGrowth))
	}
	if grow := late.rss - early.rss; grow > longOutageRSSGrowth {
		t.Errorf("resident set grew by %.1f MiB between %d and %d readings (want at most %.0f MiB)", mib(grow), early.at, late.at, mib(longOutageRSSGrowth))
	}
	if late.goroutines > early.goroutines+longOutageGoroutineSlack {
		t.Errorf("goroutines grew from %d to %d during the outage", early.goroutines, late.goroutines)
	}

	// Reconnect and drain.
	drainStart := time.Now()
	proxy.Refuse(false)
	waitUntil(t, "the uplink to connect after the outage", 30*time.Second, func() bool { return up.Stats().Connects > 0 })
	connected := time.Since(drainStart)
	if !eventually(5*time.Minute, func() bool { return ob.Backlog() == 0 }) {
		t.Errorf("the backlog did not drain within 5 minutes: %d rows left", ob.Backlog())
	}
	drained := time.Since(drainStart)
	left := stAfter.LastID - stAfter.ShedTelemetry - stAfter.ShedEvents
	if !eventually(60*time.Second, func() bool { return counts.total() >= left }) {
		t.Errorf("the collector took %d of the %d records not shed within 60s of the drain", counts.total(), left)
	}
	collectedAt := time.Since(drainStart)
	stopGW()
	if err := <-gwDone; err != nil {
		t.Errorf("gateway: %v\n%s", err, tailText(logBuf.String(), 30))
	}
	gwStopped = true
	// The offline status (backlog 0, last_seq per stream) follows the
	// last records; give the collector a moment for it.
	time.Sleep(500 * time.Millisecond)
	stopCollector()
	final, err := ob.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	lastSeqs, err := ob.LastSeqs(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	us := up.Stats()
	if err := ob.Close(); err != nil {
		t.Errorf("closing the outbox: %v", err)
	}
	obClosed = true
	proxy.Close()

	a := col.Audit(false)
	var audit strings.Builder
	a.Write(&audit)
	got := counts.snapshot()
	t.Logf("DRAIN uplink connected %s after the outage ended, backlog drained in %s, everything collected after %s: uplink delivered %d records in %d messages (%d resent); final database %.2f MiB, WAL %.2f MiB, %d pages vacuumed",
		connected.Round(time.Millisecond), drained.Round(time.Millisecond), collectedAt.Round(time.Millisecond),
		us.Delivered, us.Messages, us.Resent, mib(final.FileBytes), mib(final.WALBytes), final.VacuumedPages)
	t.Logf("RESULT simulated_hours=%g readings=%d detector_events=%d shed_telemetry=%d shed_notices=%d collected_telemetry=%d collected_events=%d collected_notices=%d notice_qty=%d audit_shed=%d audit_missing=%d audit_conflicts=%d duplicates=%d outage_wall=%s drain_wall=%s peak_db=%.2fMiB peak_wal=%.2fMiB",
		hours, want, len(eventIDs), final.ShedTelemetry, final.ShedNotices, got.telemetry, len(got.eventIDs), got.notices, got.noticeQty,
		a.Shed, a.Missing, a.Conflicts, a.Duplicates, outageWall.Round(time.Millisecond), collectedAt.Round(time.Millisecond), mib(peak.db), mib(peak.wal))

	// Telemetry: delivered + shed = produced, exactly, by every count.
	if got.telemetry+final.ShedTelemetry != want {
		t.Errorf("telemetry collected %d + shed %d = %d, readings produced %d", got.telemetry, final.ShedTelemetry, got.telemetry+final.ShedTelemetry, want)
	}
	if got.noticeQty != final.ShedTelemetry+final.ShedEvents {
		t.Errorf("shed notices collected report %d rows shed, the outbox counts %d telemetry + %d events", got.noticeQty, final.ShedTelemetry, final.ShedEvents)
	}
	if got.notices != final.ShedNotices {
		t.Errorf("collected %d shed notices, the outbox wrote %d", got.notices, final.ShedNotices)
	}
	var auditTelemetryShed, auditTelemetry uint64
	for _, s := range a.Streams {
		if strings.HasPrefix(s.Stream, "loadcell/") {
			auditTelemetryShed += s.Shed
			auditTelemetry += uint64(s.Received)
		}
	}
	if int64(auditTelemetryShed) != final.ShedTelemetry || int64(auditTelemetry) != got.telemetry {
		t.Errorf("collect's audit of the load-cell streams: received %d, shed %d; counted %d collected, outbox shed %d", auditTelemetry, auditTelemetryShed, got.telemetry, final.ShedTelemetry)
	}
	if a.Missing != 0 || a.Conflicts != 0 || a.Rejected != 0 || !a.OK() {
		t.Errorf("audit not clean:\n%s", audit.String())
	}
	for name, seq := range lastSeqs {
		var last uint64
		for _, s := range a.Streams {
			if s.Stream == string(name) {
				last = s.Last
			}
		}
		if last != seq {
			t.Errorf("stream %s: outbox last_seq %d, collector's last %d", name, seq, last)
		}
	}
	if final.Backlog != 0 || final.ShedEvents != 0 {
		t.Errorf("after the drain the outbox holds %d rows and has shed %d events", final.Backlog, final.ShedEvents)
	}
	// Events: every id the outbox assigned to a detector event collected.
	if missing := missingIDs(eventIDs, got.eventIDs); len(missing) > 0 {
		t.Errorf("%d of %d detector events never collected (ids %v...)", len(missing), len(eventIDs), missing[:min(len(missing), 10)])
	}
	if len(got.eventIDs) != len(eventIDs) {
		t.Errorf("collected %d detector events, the outbox committed %d", len(got.eventIDs), len(eventIDs))
	}
	// Every id ever assigned: collected once, or shed.
	if total := got.telemetry + int64(len(got.eventIDs)) + got.notices + final.ShedTelemetry; total != final.LastID {
		t.Errorf("collected %d + shed %d = %d ids, the outbox assigned %d", total-final.ShedTelemetry, final.ShedTelemetry, total, final.LastID)
	}
	visits := visitCount(wh, time.Duration(perBin)*time.Second/longOutageSampleRate)
	t.Logf("the model had %d picker visits; the detector made %d events (picks, puts and low_stock)", visits, len(eventIDs))
	if len(eventIDs) < visits*9/10 {
		t.Errorf("the detector made %d events from %d picker visits in the model: it is not seeing the visits", len(eventIDs), visits)
	}
	if t.Failed() {
		t.Logf("audit:\n%s\ngateway log (tail):\n%s", audit.String(), tailText(logBuf.String(), 30))
	}

	// Nothing left running in the test process.
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > goroutinesBefore+longOutageGoroutineSlack && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > goroutinesBefore+longOutageGoroutineSlack {
		buf := make([]byte, 1<<20)
		t.Errorf("%d goroutines after everything stopped, %d before the test:\n%s", n, goroutinesBefore, buf[:runtime.Stack(buf, true)])
	}
	t.Logf("goroutines: %d before, %d after; peak RSS of the test process (VmHWM) %.1f MiB", goroutinesBefore, runtime.NumGoroutine(), mib(procStatusBytes("VmHWM")))
}

// Bounds of TestFaultLongOutage.
const (
	// longOutageMaxBytes is the outbox's byte budget. It must hold every
	// event of the outage, which is never shed while telemetry is left: at
	// the suite's 200 picker visits per bin and hour the detector makes
	// about 1,830 events an hour, ~131,000 in 72 h, and an event row takes
	// ~300 bytes, so ~37 MiB of events plus ~1.5 MiB of shed notices.
	// With 8 MiB (SHELFGATE_FAULTS_OUTAGE_MAX_BYTES=8MiB) the events fill
	// the budget within 12 h; from then on every commit sheds all the
	// telemetry it brings and writes a notice per stream, the notices are
	// shed in turn (so collect counts the telemetry they reported as
	// missing: 19.5 M in one run), and ingest slows to ~35,000 readings/s.
	// 64 MiB is still less than a tenth of the ~700 MiB the 72 h of
	// telemetry would take.
	longOutageMaxBytes = "64MiB"
	// longOutageReserve is the outbox's default reserve file
	// (outbox.Options.ReserveBytes 0 on a large filesystem): the WAL is
	// checkpointed once it passes half of it.
	longOutageReserve = 8 << 20
	// longOutageCommitSlack is what one commit may add to the WAL before
	// the checkpoint that follows it: 8192 rows and a shed.
	longOutageCommitSlack = 4 << 20
	// longOutageHeapGrowth bounds the live heap's growth over the outage:
	// the event ids this test records (8 bytes each) and the outbox's
	// tails filling up; longOutageRSSGrowth the resident set's, which adds
	// SQLite's page caches.
	longOutageHeapGrowth     = 16 << 20
	longOutageRSSGrowth      = 32 << 20
	longOutageGoroutineSlack = 5
)

// outboxHeadroom is gateway/outbox's headroom (budget.go): what
// max_page_count allows above max_bytes.
func outboxHeadroom(maxBytes int64) int64 {
	return min(max(maxBytes/8, 1<<20), 256<<20)
}

// warehouseFeed is a gateway.Source that emits perBin samples of every bin
// of the warehouse model as fast as the gateway accepts them, in batches of
// up to longOutageBatch readings, sample-major like the load-cell source,
// each stamped start + SampleTime(k).
type warehouseFeed struct {
	wh       *warehouse.Warehouse
	start    time.Time
	perBin   int64
	produced atomic.Int64
	done     chan struct{}
	mu       sync.Mutex
	fail     error
}

func (f *warehouseFeed) Name() string { return "warehouse-feed" }

func (f *warehouseFeed) err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fail
}

func (f *warehouseFeed) Run(ctx context.Context, emit gateway.Emitter) (err error) {
	defer func() {
		f.mu.Lock()
		f.fail = err
		f.mu.Unlock()
		close(f.done)
	}()
	type cal struct {
		stream gateway.StreamID
		offset float64
		cpg    float64
	}
	var cals []cal
	for _, b := range f.wh.Bins() {
		cals = append(cals, cal{gateway.StreamID("loadcell/" + b.ID), float64(b.OffsetCounts), b.CountsPerGram})
	}
	batch := make([]gateway.Reading, 0, longOutageBatch)
	per := longOutageBatch / len(cals)
	for k := int64(0); k < f.perBin; k++ {
		at := f.start.Add(f.wh.SampleTime(k))
		for i, c := range cals {
			code := f.wh.CodeAt(i, k)
			batch = append(batch, gateway.Reading{Stream: c.stream, Time: at, Value: (float64(code) - c.offset) / c.cpg, Unit: "g"})
		}
		if len(batch) >= per*len(cals) || k == f.perBin-1 {
			if err := emit.Emit(ctx, batch); err != nil {
				return err
			}
			f.produced.Add(int64(len(batch)))
			batch = batch[:0]
		}
	}
	return nil
}

// recordingOutbox is the real outbox seen by the gateway, recording the ids
// of the events committed and sampling the files' sizes after each commit.
type recordingOutbox struct {
	ob      *outbox.Outbox
	db      string
	sampler *diskSampler
	mu      sync.Mutex
	events  []int64
}

func (r *recordingOutbox) Append(ctx context.Context, recs []gateway.Record) error {
	if err := r.ob.Append(ctx, recs); err != nil {
		return err
	}
	r.mu.Lock()
	for i := range recs {
		if recs[i].Class == gateway.ClassEvent {
			r.events = append(r.events, recs[i].ID)
		}
	}
	r.mu.Unlock()
	if r.sampler != nil {
		r.sampler.sample()
	}
	return nil
}

func (r *recordingOutbox) Backlog() int64 { return r.ob.Backlog() }

func (r *recordingOutbox) eventIDs() []int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// diskSampler keeps the largest sizes seen of the database, its WAL and its
// reserve file.
type diskSampler struct {
	path                         string
	db, wal, reserve, total, num atomic.Int64
}

// diskPeaks are the largest sizes seen; total is the largest sum of the
// three seen at once.
type diskPeaks struct{ db, wal, reserve, total, samples int64 }

func newDiskSampler(path string) *diskSampler { return &diskSampler{path: path} }

func (s *diskSampler) sample() {
	db, wal, reserve := fileSize(s.path), fileSize(s.path+"-wal"), fileSize(s.path+"-reserve")
	for _, f := range []struct {
		v *atomic.Int64
		n int64
	}{{&s.db, db}, {&s.wal, wal}, {&s.reserve, reserve}, {&s.total, db + wal + reserve}} {
		for {
			old := f.v.Load()
			if f.n <= old || f.v.CompareAndSwap(old, f.n) {
				break
			}
		}
	}
	s.num.Add(1)
}

// tick samples every d until the returned stop is called.
func (s *diskSampler) tick(d time.Duration) (stop func()) {
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
				s.sample()
			}
		}
	}()
	return func() { close(quit); <-done }
}

func (s *diskSampler) peaks() diskPeaks {
	return diskPeaks{s.db.Load(), s.wal.Load(), s.reserve.Load(), s.total.Load(), s.num.Load()}
}

// collectCounts counts what the collector took for the first time.
type collectCounts struct {
	mu        sync.Mutex
	telemetry int64
	eventIDs  []int64 // detector events
	notices   int64   // shed notices
	noticeQty int64   // rows they report shed
}

func (c *collectCounts) add(b *shelfv1.Batch, fresh []shelfv1.WireRecord) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if b.Class == gateway.ClassTelemetry.String() {
		c.telemetry += int64(len(fresh))
		return
	}
	for _, r := range fresh {
		if r.Stream == string(outbox.ShedStream) {
			var ev gateway.Event
			if json.Unmarshal(r.Event, &ev) == nil {
				c.noticeQty += int64(ev.Quantity)
			}
			c.notices++
			continue
		}
		c.eventIDs = append(c.eventIDs, r.ID)
	}
}

func (c *collectCounts) total() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.telemetry + int64(len(c.eventIDs)) + c.notices
}

func (c *collectCounts) snapshot() collectCounts {
	c.mu.Lock()
	defer c.mu.Unlock()
	return collectCounts{telemetry: c.telemetry, eventIDs: slices.Clone(c.eventIDs), notices: c.notices, noticeQty: c.noticeQty}
}

// eventually polls cond every 50ms for up to d and reports whether it held.
func eventually(d time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(d); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			return false
		}
	}
	return true
}

// missingIDs returns the ids of want not in got.
func missingIDs(want, got []int64) []int64 {
	have := make(map[int64]bool, len(got))
	for _, id := range got {
		have[id] = true
	}
	var missing []int64
	for _, id := range want {
		if !have[id] {
			missing = append(missing, id)
		}
	}
	return missing
}

// visitCount is the number of picker visits of the model settled by until.
func visitCount(wh *warehouse.Warehouse, until time.Duration) int {
	n := 0
	for i := range wh.Bins() {
		n += len(wh.Labels(i, until))
	}
	return n
}

// memPoint is the test process's live heap (after a GC), goroutines and
// RSS when at readings had been produced.
type memPoint struct {
	at         int64
	heap       uint64
	goroutines int
	rss        int64
}

func takeMemPoint(at int64) memPoint {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return memPoint{at: at, heap: ms.HeapAlloc, goroutines: runtime.NumGoroutine(), rss: procStatusBytes("VmRSS")}
}

// procStatusBytes reads a kB field of /proc/self/status, in bytes.
func procStatusBytes(field string) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			if fs := strings.Fields(rest); len(fs) > 0 {
				kb, _ := strconv.ParseInt(fs[0], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

// tailText returns the last n lines of s.
func tailText(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
