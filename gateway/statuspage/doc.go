// Package statuspage serves the gateway's local status page: a small web
// app for the technician at the shelf (live weights with rolling plots,
// the event stream, the delivery pipeline, the model, sensor health) and
// the two actions a technician needs there, tare and two-point
// calibration of a bin.
//
// The page reads the gateway's own state, never /metrics, and never sits
// on the hot path:
//
//   - Tap is a gateway.Classifier appended at the end of the classifier
//     chain. It records every reading into a per-stream ring of short
//     buckets and every event into an event ring, each under its own short
//     lock, and returns nil: it derives nothing and never blocks.
//   - A hub (Server.Run) builds one update message per tick from the Tap
//     and, at most once per SnapshotEvery, one snapshot of the pipeline,
//     sensors and model, and hands the same encoded bytes to every
//     Server-Sent Events client. Each client has a small buffer; a client
//     whose buffer is full is dropped (counted) rather than waited for.
//
// Actions (POST /api/...) need the configured token, as a bearer token or
// as the password of HTTP basic auth, and pass a CSRF check: the custom
// header X-Shelfgate-Action must be present (a cross-site form cannot set
// it and the page allows no CORS), the body must be JSON, and Origin and
// Sec-Fetch-Site, when the browser sends them, must name this origin.
// Without a token every action is refused and the page is read-only.
//
// Calibration uses the same math and file as `shelfctl calibrate`
// (sensors/calibration): tare sets the offset to the median of the
// channel's recent raw codes; calibration takes the medians of the codes
// read empty and with a reference weight (calibration.FromMeasurements).
// Each is first proposed, then applied only when the proposal is
// confirmed: the calibration file is rewritten atomically (temporary
// file, fsync, rename) and then the load cell converts with the new
// values from its next code on.
package statuspage
