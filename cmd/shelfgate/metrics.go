package main

import (
	"context"
	"errors"
	"log/slog"

	"github.com/shelfgate/shelfgate/gateway"
	"github.com/shelfgate/shelfgate/gateway/downlink"
	"github.com/shelfgate/shelfgate/gateway/metrics"
	"github.com/shelfgate/shelfgate/gateway/outbox"
	"github.com/shelfgate/shelfgate/gateway/uplink"
	"github.com/shelfgate/shelfgate/sensors/loadcell"
)

// newMetrics exposes the components' counters to Prometheus.
func newMetrics(gw *gateway.Gateway, ob *outbox.Outbox, up *uplink.Uplink, dl *downlink.Router, sources []gateway.Source, log *slog.Logger) *metrics.Server {
	ms := metrics.New(func() error {
		if !up.Stats().Connected {
			return errors.New("broker not connected")
		}
		return nil
	}, log)
	f := func(v int64) float64 { return float64(v) }
	ms.Counter("readings_produced_total", "Readings emitted by sensors.", func() float64 { return f(gw.Counters().Produced) })
	ms.Counter("readings_committed_total", "Readings committed to the outbox.", func() float64 { return f(gw.Counters().Accepted) })
	ms.Counter("events_committed_total", "Events committed to the outbox.", func() float64 { return f(gw.Counters().Events) })
	ms.Gauge("outbox_backlog_rows", "Rows waiting for delivery.", func() float64 { return f(ob.Backlog()) })
	ms.Counter("outbox_commits_total", "Outbox transactions.", func() float64 {
		st, _ := ob.Stats(context.Background())
		return f(st.Commits)
	})
	ms.Gauge("outbox_file_bytes", "Outbox database size.", func() float64 {
		st, _ := ob.Stats(context.Background())
		return f(st.FileBytes)
	})
	stat := func(get func(outbox.Stats) int64) func() float64 {
		return func() float64 {
			st, _ := ob.Stats(context.Background())
			return f(get(st))
		}
	}
	ms.Counter("outbox_shed_telemetry_total", "Telemetry rows deleted undelivered under the disk budget (database lifetime).", stat(func(s outbox.Stats) int64 { return s.ShedTelemetry }))
	ms.Counter("outbox_shed_events_total", "Event rows deleted undelivered (database lifetime).", stat(func(s outbox.Stats) int64 { return s.ShedEvents }))
	ms.Counter("outbox_full_refused_total", "Rows refused because the disk was full and nothing could be shed.", stat(func(s outbox.Stats) int64 { return s.FullRefused }))
	ms.Gauge("outbox_used_bytes", "Outbox pages in use (the budget's measure).", stat(func(s outbox.Stats) int64 { return s.UsedBytes }))
	ms.Gauge("outbox_oldest_unsent_seconds", "Age of the oldest row waiting for delivery.", func() float64 {
		st, _ := ob.Stats(context.Background())
		return st.OldestAge.Seconds()
	})
	ms.Counter("gateway_disk_full_waits_total", "Appends held because the disk was full.", func() float64 { return f(gw.Counters().DiskFullWait) })
	ms.Counter("uplink_confirmed_total", "Consumer acks applied (ack_mode consumer).", func() float64 { return f(up.Stats().Confirmed) })
	ms.Counter("uplink_rewinds_total", "Lanes rewound to re-send rows the consumer did not confirm.", func() float64 { return f(up.Stats().Rewinds) })
	ms.Gauge("uplink_connected", "1 while connected to a broker.", func() float64 {
		if up.Stats().Connected {
			return 1
		}
		return 0
	})
	ms.Counter("uplink_connects_total", "Successful broker connections.", func() float64 { return f(up.Stats().Connects) })
	ms.Counter("uplink_messages_total", "MQTT messages acknowledged by the broker.", func() float64 { return f(up.Stats().Messages) })
	ms.Counter("uplink_records_delivered_total", "Records acknowledged by the broker (re-sends included).", func() float64 { return f(up.Stats().Delivered) })
	ms.Counter("uplink_records_resent_total", "Records sent again after a connection loss.", func() float64 { return f(up.Stats().Resent) })
	ms.Gauge("uplink_inflight_messages", "Messages awaiting PUBACK.", func() float64 { return f(up.Stats().InFlight) })
	// Until the labelled collectors land: one pair per downlink handler
	// (commands, acks), rejections summed over reasons.
	for _, h := range dl.Stats() {
		handler := func() downlink.HandlerStats {
			for _, s := range dl.Stats() {
				if s.Filter == h.Filter {
					return s
				}
			}
			return downlink.HandlerStats{}
		}
		ms.Counter("downlink_"+h.Name+"_received_total", "Downlink messages for the "+h.Name+" handler.", func() float64 { return f(handler().Received) })
		ms.Counter("downlink_"+h.Name+"_rejected_total", "Downlink messages the "+h.Name+" handler rejected (oversize, queue full, malformed, forged, ...; by reason in the log).", func() float64 {
			var n int64
			for _, v := range handler().Rejected {
				n += v
			}
			return f(n)
		})
	}
	for _, s := range sources {
		if lc, ok := s.(*loadcell.Source); ok {
			ms.Counter("loadcell_timeouts_total", "HX711 conversions not ready in time.", func() float64 { return f(lc.Stats().Timeouts) })
			ms.Counter("loadcell_glitches_total", "Spurious all-ones HX711 codes rejected.", func() float64 { return f(lc.Stats().Glitches) })
			ms.Counter("loadcell_errors_total", "HX711 read errors.", func() float64 { return f(lc.Stats().Errors) })
			ms.Counter("loadcell_saturated_total", "Readings at the end of the HX711 range.", func() float64 { return f(lc.Stats().Saturated) })
			ms.Counter("loadcell_spikes_total", "Single-sample outliers rejected by the spike filter.", func() float64 { return f(lc.Stats().Spikes) })
			ms.Counter("loadcell_stale_total", "Readings flagged stale (stuck ADC).", func() float64 { return f(lc.Stats().Stale) })
			ms.Counter("loadcell_faults_total", "Load-cell fault episodes entered.", func() float64 { return f(lc.Stats().Faults) })
			ms.Gauge("loadcell_channels_faulty", "Load-cell channels in a fault state now.", func() float64 {
				n := 0
				for _, h := range lc.Health() {
					if h.Faults != 0 {
						n++
					}
				}
				return float64(n)
			})
		}
	}
	return ms
}
