// Package uplink delivers the outbox to an MQTT broker with paho.mqtt.golang:
// QoS 1 batches per record class (events, telemetry and samples in separate lanes,
// so live events never wait behind a telemetry backlog; samples, the
// feedback loop's labelled windows, go slowest), many PUBLISHes in
// flight, and a row leaves the outbox only after its PUBACK. The outbox, not
// paho's store, is the source of truth: after any connection loss the lanes
// restart from the oldest unacknowledged row, so every row arrives at least
// once and duplicates carry the same id.
//
// The uplink owns its reconnect loop (jittered exponential backoff, several
// broker URLs tried in turn), publishes a retained birth status with a
// last-will "offline" on .../status, and routes downlink commands from
// .../cmd/<name> without blocking paho's router.
//
// Connect failures only an operator can fix (refused credentials, TLS
// verification; see connfail) are logged at ERROR, others at WARN, each
// with the jittered wait actually slept; batches and reconnects are logged
// at debug. A session the broker closes right after it began is counted
// as a takeover (Stats.Takeovers): repeated, it means another client uses
// the same client id, a duplicate gateway.id, logged at ERROR once per
// episode.
package uplink
