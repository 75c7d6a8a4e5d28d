// Package shelfv1 is Shelfgate's v1 MQTT wire protocol, everything the cloud
// sees and sends: the topic layout, the JSON batch format of telemetry and
// events (optionally as zstd frames), the retained birth / last-will /
// offline status, consumer acknowledgements, and downlink commands with
// their replies. docs/protocol.md describes it for consumer writers; the
// golden files in testdata/ are its reference payloads (go test -update
// rewrites them).
//
// Codec adapts the package to the uplink's lanes (gateway/uplink.Codec).
// Encoders append to a caller's buffer and allocate nothing else on the
// delivery path; decoders are strict (unknown fields, bad values and
// oversized payloads are errors that name the field) and fuzzed.
package shelfv1
