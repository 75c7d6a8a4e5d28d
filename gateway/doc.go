// Package gateway holds Shelfgate's domain types (Reading, Event, Record,
// Batch), the interfaces the gateway consumes (Source, Outbox, Publisher,
// Classifier), the MQTT topic layout and batch wire format, and the Gateway
// service that moves readings from sources through the durable outbox.
//
// It imports only the standard library; concrete implementations live in
// subpackages (gateway/outbox, gateway/uplink, gateway/shelf, ...) and are
// wired together by cmd/shelfgate.
package gateway
