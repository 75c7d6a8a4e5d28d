// Package gateway holds Shelfgate's domain types (Reading, Event, Record,
// BatchRef), the interfaces the gateway consumes (Source, Emitter, Outbox,
// Classifier), the rule for site and gateway ids (ValidTopicLevel), and the
// Gateway service that moves readings and events from sources through the
// ordered classifier chain into the durable outbox. Wire formats live in
// gateway/wire/... (v1: shelfv1).
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
