package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"sync/atomic"
	"time"

	"github.com/shelfgate/shelfgate/gateway"
	"github.com/shelfgate/shelfgate/gateway/config"
	"github.com/shelfgate/shelfgate/gateway/sdnotify"
	"github.com/shelfgate/shelfgate/gateway/wire/shelfv1"
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

// reloader applies a new configuration file on SIGHUP through the
// gateway's configApplier (the path desired configurations take too): what
// is safe to change while running is applied, what needs a restart is
// logged, and a file with errors is refused and logged while the running
// configuration stays. Each outcome is also a config event (source
// "sighup"). The file's live settings replace a desired configuration's:
// the status's config_version goes back to 0.
type reloader struct {
	path  string
	host  hostCheck
	apply *configApplier
	rep   *configReporter // nil: no events
	state *desiredState   // nil: no desired configuration
	log   *slog.Logger

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
			r.reload(ctx)
		}
	}
}

// reload reads the file again and applies it.
func (r *reloader) reload(ctx context.Context) {
	r.log.Info("SIGHUP: reloading the configuration", "path", r.path)
	o := shelfv1.ConfigOutcome{Kind: shelfv1.EventConfigRejected, Source: shelfv1.ConfigSourceSIGHUP, Time: time.Now()}
	next, err := loadConfigWith(r.path, r.host)
	var applied, restart []string
	if err == nil {
		applied, restart, err = r.apply.apply(next)
		o.Reason = reasonApplyFailed
	} else {
		o.Reason = reasonInvalidConfig
	}
	if err != nil {
		r.refused.Add(1)
		o.Error = err.Error()
		var es config.Errors
		if errors.As(err, &es) {
			for _, e := range es {
				o.Errors = append(o.Errors, e.Error())
			}
			o.Error = fmt.Sprintf("%s fails validation: %d error(s)", r.path, len(es))
			r.log.Error("reload refused: the new configuration has errors; still running the previous one", "path", r.path, "errors", o.Errors)
		} else {
			r.log.Error("reload refused; still running the previous configuration", "path", r.path, "err", err)
		}
		r.report(ctx, o)
		return
	}
	r.reloads.Add(1)
	if r.state != nil {
		r.state.applied.Store(0)
	}
	o.Kind, o.Reason, o.Applied, o.Restart = shelfv1.EventConfigApplied, "", applied, restart
	r.report(ctx, o)
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

func (r *reloader) report(ctx context.Context, o shelfv1.ConfigOutcome) {
	if r.rep != nil {
		r.rep.report(ctx, o)
	}
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
