package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"reflect"
	"sync/atomic"
	"time"

	"github.com/shelfgate/shelfgate/gateway"
	"github.com/shelfgate/shelfgate/gateway/config"
	"github.com/shelfgate/shelfgate/gateway/sdnotify"
)

// newLogger returns the daemon's logger in the configured format, at a
// level that a reload may change (the LevelVar). Durations are written as
// strings ("1.5s"), not nanoseconds, in JSON too.
func newLogger(cfg *config.Config, w io.Writer) (*slog.Logger, *slog.LevelVar) {
	level := new(slog.LevelVar)
	level.Set(parseLevel(cfg.Log.Level))
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: durationsAsStrings}
	if cfg.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts)), level
	}
	return slog.New(slog.NewTextHandler(w, opts)), level
}

func parseLevel(s string) slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return slog.LevelInfo
	}
	return l
}

// durationsAsStrings is a slog ReplaceAttr writing durations as
// time.Duration.String does.
func durationsAsStrings(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		a.Value = slog.StringValue(a.Value.Duration().String())
	}
	return a
}

// fatal logs err, the reason run stops, at ERROR in the configured format
// and marks it logged so Main does not print it again as plain text.
func fatal(log *slog.Logger, err error) error {
	if err == nil {
		return nil
	}
	var logged loggedError
	if errors.As(err, &logged) {
		return err
	}
	log.Error("fatal", "err", err)
	return loggedError{err}
}

// reloader applies a new configuration file on SIGHUP: what is safe to
// change while running is applied, what needs a restart is logged, and a
// file with errors is refused and logged while the running configuration
// stays.
type reloader struct {
	path  string
	host  hostCheck
	level *slog.LevelVar
	log   *slog.Logger

	cur *config.Config
	// reloads and refused count the SIGHUPs handled.
	reloads, refused atomic.Int64
}

// run handles a reload for each receive on hup until ctx is done.
func (r *reloader) run(ctx context.Context, hup <-chan struct{}) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			r.reload()
		}
	}
}

// reload reads the file again and applies it.
func (r *reloader) reload() {
	r.log.Info("SIGHUP: reloading the configuration", "path", r.path)
	next, err := loadConfigWith(r.path, r.host)
	if err != nil {
		r.refused.Add(1)
		var es config.Errors
		if errors.As(err, &es) {
			msgs := make([]string, len(es))
			for i, e := range es {
				msgs[i] = e.Error()
			}
			r.log.Error("reload refused: the new configuration has errors; still running the previous one", "path", r.path, "errors", msgs)
		} else {
			r.log.Error("reload refused; still running the previous configuration", "path", r.path, "err", err)
		}
		return
	}
	r.reloads.Add(1)
	applied, restart := diffConfig(r.cur, next)
	if r.cur.Log.Level != next.Log.Level {
		r.level.Set(parseLevel(next.Log.Level))
	}
	r.cur = next
	if len(applied) == 0 && len(restart) == 0 {
		r.log.Info("reload: the configuration is unchanged")
		return
	}
	if len(applied) > 0 {
		r.log.Info("reload: applied", "fields", applied)
	}
	if len(restart) > 0 {
		r.log.Warn("reload: these changes take effect only after a restart (systemctl restart shelfgate)", "fields", restart)
	}
}

// diffConfig lists the fields that differ between a and b: applied live
// (the log level) or needing a restart (everything else: the sensors,
// outbox and connection are built once at start).
func diffConfig(a, b *config.Config) (applied, restart []string) {
	if a.Log.Level != b.Log.Level {
		applied = append(applied, "log.level")
	}
	same := func(x, y any) bool { return reflect.DeepEqual(x, y) }
	for _, f := range []struct {
		name string
		same bool
	}{
		{"gateway", same(a.Gateway, b.Gateway)},
		{"broker", same(a.Broker, b.Broker)},
		{"outbox", same(a.Outbox, b.Outbox)},
		{"uplink", same(a.Uplink, b.Uplink)},
		{"sensors", sameSensors(a, b)},
		{"calibration_file", a.CalibrationFile == b.CalibrationFile},
		{"simulation", sameSimulation(a, b)},
		{"metrics", same(a.Metrics, b.Metrics)},
		{"log.format", a.Log.Format == b.Log.Format},
	} {
		if !f.same {
			restart = append(restart, f.name)
		}
	}
	return applied, restart
}

// sameSensors compares the sensors as their kinds decode them.
func sameSensors(a, b *config.Config) bool {
	sa, _ := decodeSensors(a, sensorKinds())
	sb, _ := decodeSensors(b, sensorKinds())
	if len(sa) != len(sb) {
		return false
	}
	for i := range sa {
		if sa[i].name != sb[i].name || sa[i].typ != sb[i].typ || !reflect.DeepEqual(sa[i].conf, sb[i].conf) {
			return false
		}
	}
	return true
}

func sameSimulation(a, b *config.Config) bool {
	sa, _ := decodeSimulation(a)
	sb, _ := decodeSimulation(b)
	return reflect.DeepEqual(sa, sb)
}

// eventDriven are the kinds that emit only when something happens (a
// scan, a tag); the others sample on a clock.
var eventDriven = map[string]bool{"scanner": true, "mfrc522": true}

// sampling reports whether any of the sensors samples on a clock, so a
// gateway that runs commits readings all the time.
func (ss *sensorSet) sampling() bool {
	if len(ss.extra) > 0 {
		return true // a simulation
	}
	for _, s := range ss.sensors {
		if !eventDriven[s.kind] {
			return true
		}
	}
	return false
}

// notifySystemd tells systemd the gateway is ready once the first reading
// is committed (or at once when no sensor samples on a clock) and pings
// the watchdog only while the pipeline progresses, until ctx is done. It
// returns when ctx is done.
func notifySystemd(ctx context.Context, n *sdnotify.Notifier, gw *gateway.Gateway, sampling bool, log *slog.Logger) {
	if !n.Enabled() {
		return
	}
	committed := func() int64 { c := gw.Counters(); return c.Accepted + c.Events }
	if sampling {
		t := time.NewTicker(20 * time.Millisecond)
		for committed() == 0 {
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		t.Stop()
	}
	if err := n.Ready(ctx); err != nil {
		log.Warn("systemd notify READY=1", "err", err)
	} else {
		log.Debug("systemd: READY=1 sent", "committed", committed(), "watchdog", n.WatchdogInterval())
	}
	if n.WatchdogInterval() <= 0 {
		return // no WatchdogSec in the unit
	}
	progressed := progress(gw.Counters, sampling, log)
	// A failed ping is logged and the pings go on: one lost datagram must
	// not stop the watchdog for good.
	for ctx.Err() == nil {
		if err := n.RunWatchdog(ctx, progressed); err != nil {
			log.Error("systemd watchdog ping failed", "err", err)
		}
	}
}

// progress returns the watchdog's test of the pipeline: true when it
// committed since the previous call or, for a gateway of event-driven
// sensors only, when it is idle with nothing waiting to be committed.
// A sampling gateway that commits nothing is wedged: no ping, and systemd
// restarts it after WatchdogSec.
func progress(counters func() gateway.Counters, sampling bool, log *slog.Logger) func() bool {
	last := counters()
	return func() bool {
		c := counters()
		moved := c.Accepted+c.Events > last.Accepted+last.Events
		idle := !sampling && c.Produced == last.Produced && c.Accepted == c.Produced
		if !moved && !idle {
			log.Warn("pipeline made no progress since the last watchdog ping; not pinging systemd", "produced", c.Produced, "committed", c.Accepted)
		}
		last = c
		return moved || idle
	}
}
