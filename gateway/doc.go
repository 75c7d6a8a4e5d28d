// Package gateway holds Shelfgate's domain types (Reading, Event, Record,
// Batch), the interfaces the gateway consumes (Source, Emitter, Outbox,
// Classifier), the MQTT topic layout and batch wire format, and the Gateway
// service that moves readings and events from sources through the ordered
// classifier chain into the durable outbox.
//
// Every source emits through one Emitter (readings with Emit, the events it
// reports itself with EmitEvents); both pass the classifier chain, which is
// run per stream under that stream's lock, so a slow classifier on one
// stream never delays another stream's commit and a stream's events keep
// their order.
//
// It imports only the standard library; concrete implementations live in
// subpackages (gateway/outbox, gateway/uplink, gateway/shelf, ...) and are
// wired together by cmd/shelfgate.
package gateway
