// Package scanner reads handheld barcode scanners and offers their scans to
// the gateway.
//
// Two kinds of scanner are supported, both as a byte stream from an Opener:
// USB-CDC (serial emulation) scanners through go.bug.st/serial (Serial), and
// HID keyboard-wedge scanners through the Linux evdev interface (Evdev),
// whose input_event records KeyDecoder turns back into the typed text.
//
// # Frames
//
// A Framer splits the stream at the scanner's suffix (CR, LF or CRLF) and
// Validate checks every line before it becomes a Scan:
//
//   - printable ASCII (0x20..0x7E) only, 1 to MaxLen bytes; a longer line is
//     never buffered: it is counted once and skipped up to the next suffix;
//   - a line of digits only must be a GS1 key — EAN-8, UPC-A (GTIN-12),
//     EAN-13, GTIN-14 or SSCC (18) — with a correct mod-10 check digit;
//   - a line starting with '(' must be a GS1 element string in human-readable
//     form, e.g. "(01)09501101530003(17)251231(10)AB12", with known AIs, the
//     right lengths and charsets, and check digits where the AI has one.
//     Element strings sent raw with FNC1 as GS (0x1D) are rejected as
//     non-printable: configure the scanner to transmit the HRI form;
//   - anything else printable (Code 128, Code 39, QR text) is SymText.
//
// Bytes left without a suffix when the device closes are a partial frame.
// Every rejected frame is counted by Reason in Stats; none stops the reader.
//
// References: GS1 General Specifications (check digit, section 7.9.1;
// application identifiers, section 3),
// https://www.gs1.org/standards/barcodes-epcrfid-id-keys/gs1-general-specifications;
// the check digit calculator, https://www.gs1.org/services/how-calculate-check-digit-manually;
// Linux input events, https://www.kernel.org/doc/html/latest/input/input.html.
//
// # Scans and the gateway
//
// A gateway.Reading carries a float Value, which cannot hold a code such as
// "(01)09501101530003(10)AB12" (and a 14-digit GTIN would lose its leading
// zeros). So a Source emits each accepted scan as a gateway.EventScan event
// (stream "scanner/<name>", the code in Detail) through the Emitter given to
// Run, where it passes the gateway's classifier chain like every event.
//
// The package never logs; problems are counted (see Stats).
package scanner
