// Package gateway holds Shelfgate's domain types (Reading, Event, Record,
// BatchRef), the interfaces the gateway consumes (Source, Outbox, Publisher,
// Classifier), the rule for site and gateway ids (ValidTopicLevel), and the
// Gateway service that moves readings from sources through the durable
// outbox. Wire formats live in gateway/wire/... (v1: shelfv1).
//
// It imports only the standard library; concrete implementations live in
// subpackages (gateway/outbox, gateway/uplink, gateway/shelf, ...) and are
// wired together by cmd/shelfgate.
package gateway
