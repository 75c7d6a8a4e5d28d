package main

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shelfgate/shelfgate/gateway"
	"github.com/shelfgate/shelfgate/gateway/downlink"
	"github.com/shelfgate/shelfgate/gateway/metrics"
	"github.com/shelfgate/shelfgate/gateway/outbox"
	"github.com/shelfgate/shelfgate/gateway/uplink"
)

// newMetrics exposes the components to Prometheus, one collector each: on
// every scrape each takes one snapshot of its component (one outbox Stats,
// one uplink Stats, one Health per load cell).
func newMetrics(gw gatewayCounters, ob outboxStats, up uplinkStats, dl downlinkStats, ss *sensorSet, log *slog.Logger) *metrics.Server {
	ms := metrics.New(version, func() error {
		if !up.Stats().Connected {
			return errors.New("broker not connected")
		}
		return nil
	}, log)
	ms.Register("gateway", gatewayCollector(gw))
	ms.Register("outbox", outboxCollector(ob))
	ms.Register("uplink", uplinkCollector(up))
	ms.Register("sensors", sensorsCollector(ss))
	ms.Register("downlink", downlinkCollector(dl))
	return ms
}

// desc names a shelfgate metric.
func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("shelfgate_"+name, help, labels, nil)
}

func counter(ch chan<- prometheus.Metric, d *prometheus.Desc, v int64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
}

func gauge(ch chan<- prometheus.Metric, d *prometheus.Desc, v float64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}

var (
	gwProduced  = desc("readings_produced_total", "Readings emitted by sensors.")
	gwCommitted = desc("readings_committed_total", "Readings committed to the outbox.")
	gwEvents    = desc("events_committed_total", "Events committed to the outbox (reported by sources and derived by the classifier chain).")
	gwDiskFull  = desc("gateway_disk_full_waits_total", "Appends held because the disk was full.")
)

// gatewayCounters is what gatewayCollector needs of the Gateway.
type gatewayCounters interface{ Counters() gateway.Counters }

func gatewayCollector(gw gatewayCounters) metrics.Collector {
	return metrics.CollectorFunc(func(ch chan<- prometheus.Metric) error {
		c := gw.Counters()
		counter(ch, gwProduced, c.Produced)
		counter(ch, gwCommitted, c.Accepted)
		counter(ch, gwEvents, c.Events)
		counter(ch, gwDiskFull, c.DiskFullWait)
		return nil
	})
}

var (
	obBacklog     = desc("outbox_backlog_rows", "Rows waiting for delivery.")
	obCommits     = desc("outbox_commits_total", "Outbox transactions.")
	obFileBytes   = desc("outbox_file_bytes", "Outbox database size.")
	obUsedBytes   = desc("outbox_used_bytes", "Outbox pages in use (the budget's measure).")
	obMaxBytes    = desc("outbox_max_bytes", "The outbox's byte budget (outbox.max_bytes).")
	obOldest      = desc("outbox_oldest_unsent_seconds", "Age of the oldest row waiting for delivery.")
	obShed        = desc("outbox_shed_rows_total", "Rows deleted undelivered under the disk budget, by class (database lifetime).", "class")
	obShedNotices = desc("outbox_shed_notices_total", "Shed notices written since start (one per stream and sequence range).")
	obFullRefused = desc("outbox_full_refused_total", "Rows refused because the disk was full and nothing could be shed.")
	obQuarantined = desc("outbox_quarantined_total", "Damaged outbox databases moved aside at open (outbox.db.corrupt-<time>).")
	obRecovered   = desc("outbox_recovered_rows_total", "Rows salvaged from damaged databases into this outbox.")
	obDamaged     = desc("outbox_damaged", "1 when a check while running found the database damaged (appends fail until it is reopened).")
	obChecks      = desc("outbox_integrity_checks_total", "Periodic integrity checks run since start.")
)

// outboxStats is what outboxCollector needs of the outbox.
type outboxStats interface {
	Stats(ctx context.Context) (outbox.Stats, error)
}

// outboxCollector takes one Stats snapshot per scrape.
func outboxCollector(ob outboxStats) metrics.Collector {
	return metrics.CollectorFunc(func(ch chan<- prometheus.Metric) error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		st, err := ob.Stats(ctx)
		if err != nil {
			return err
		}
		gauge(ch, obBacklog, float64(st.Backlog))
		counter(ch, obCommits, st.Commits)
		gauge(ch, obFileBytes, float64(st.FileBytes))
		gauge(ch, obUsedBytes, float64(st.UsedBytes))
		gauge(ch, obMaxBytes, float64(st.MaxBytes))
		gauge(ch, obOldest, st.OldestAge.Seconds())
		counter(ch, obShed, st.ShedTelemetry, gateway.ClassTelemetry.String())
		counter(ch, obShed, st.ShedEvents, gateway.ClassEvent.String())
		counter(ch, obShed, st.ShedSamples, gateway.ClassSamples.String())
		counter(ch, obShedNotices, st.ShedNotices)
		counter(ch, obFullRefused, st.FullRefused)
		counter(ch, obQuarantined, st.Quarantined)
		counter(ch, obRecovered, st.Recovered)
		damaged := 0.0
		if st.Damaged {
			damaged = 1
		}
		gauge(ch, obDamaged, damaged)
		counter(ch, obChecks, st.IntegrityChecks)
		return nil
	})
}

var (
	upConnected = desc("uplink_connected", "1 while connected to a broker.")
	upConnects  = desc("uplink_connects_total", "Successful broker connections.")
	upMessages  = desc("uplink_messages_total", "MQTT messages acknowledged by the broker.")
	upDelivered = desc("uplink_records_delivered_total", "Records acknowledged by the broker (re-sends included).")
	upResent    = desc("uplink_records_resent_total", "Records sent again after a connection loss.")
	upInFlight  = desc("uplink_inflight_messages", "Messages awaiting PUBACK.")
	upConfirmed = desc("uplink_confirmed_total", "Consumer acks applied (ack_mode consumer).")
	upRewinds   = desc("uplink_rewinds_total", "Lanes rewound to re-send rows the consumer did not confirm.")
	upTakeovers = desc("uplink_takeovers_total", "Sessions the broker closed within 10 s of connecting (three in a minute: likely a duplicate gateway.id).")
)

// uplinkStats is what uplinkCollector needs of the uplink.
type uplinkStats interface{ Stats() uplink.Stats }

// uplinkCollector takes one Stats snapshot per scrape.
func uplinkCollector(up uplinkStats) metrics.Collector {
	return metrics.CollectorFunc(func(ch chan<- prometheus.Metric) error {
		st := up.Stats()
		connected := 0.0
		if st.Connected {
			connected = 1
		}
		gauge(ch, upConnected, connected)
		counter(ch, upConnects, st.Connects)
		counter(ch, upMessages, st.Messages)
		counter(ch, upDelivered, st.Delivered)
		counter(ch, upResent, st.Resent)
		gauge(ch, upInFlight, float64(st.InFlight))
		counter(ch, upConfirmed, st.Confirmed)
		counter(ch, upRewinds, st.Rewinds)
		counter(ch, upTakeovers, st.Takeovers)
		return nil
	})
}

// sensorsCollector sends every sensor's own metrics (see the kind_*.go
// files), each labelled with its sensor (and bin).
func sensorsCollector(ss *sensorSet) metrics.Collector {
	return metrics.CollectorFunc(func(ch chan<- prometheus.Metric) error {
		for _, s := range ss.sensors {
			if s.collect != nil {
				s.collect(ch)
			}
		}
		return nil
	})
}

// downlinkStats is what downlinkCollector needs of the downlink router.
type downlinkStats interface {
	Stats() []downlink.HandlerStats
}

var (
	dlReceived = desc("downlink_messages_total", "Downlink messages received, by handler.", "handler")
	dlRejected = desc("downlink_rejected_total", "Downlink messages rejected, by handler and reason.", "handler", "reason")
)

// downlinkCollector exports the downlink router's per-handler counts:
// messages received and rejections by reason (oversize, queue_full,
// malformed, forged, replayed, ...).
func downlinkCollector(r downlinkStats) metrics.Collector {
	return metrics.CollectorFunc(func(ch chan<- prometheus.Metric) error {
		for _, h := range r.Stats() {
			counter(ch, dlReceived, h.Received, h.Name)
			for reason, n := range h.Rejected {
				counter(ch, dlRejected, n, h.Name, reason)
			}
		}
		return nil
	})
}
