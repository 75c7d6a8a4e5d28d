// Package loadcell reads shelf-bin load cells through HX711 24-bit ADCs and
// offers them to the gateway as a gateway.Source of readings in grams.
//
// # Reading
//
// Each channel reads through an ADC, the ReadTimeout contract of
// periph.io/x/devices/v3/hx711.Dev (datasheet:
// https://cdn.sparkfun.com/datasheets/Sensors/ForceFlex/hx711_english.pdf),
// so on a Raspberry Pi the ADC is periph's driver on two GPIO pins and in
// simulation the same driver runs over firmware-sim/hx711sim. Raw codes are
// converted with the channel's calibration:
//
//	grams = (code − Offset) / CountsPerGram − zero correction
//
// where the zero correction is 0 unless auto-zero tracking is on.
//
// Channel.Mode selects the input: channel A at gain 128 (the default and the
// chip's power-up mode), channel A at gain 64 or channel B at gain 32. A mode
// other than A/128 is set through the ADC's SetInputMode (InputModeSetter)
// when Run starts; periph's driver then repeats it with every read, so after
// a power cycle of the chip (which resets it to A/128) only the first
// conversion is in the wrong mode, and the spike filter drops it unless the
// load is small. Offset and CountsPerGram are those of
// the channel's mode: the real gains differ from their nominal ratio, so each
// mode is calibrated on its own. Collect reads raw codes for
// calibration.FromMeasurements, and Calibrated fills channels from a
// calibration file, with per-mode entries under CalibrationKey.
//
// Readings are not emitted from the sampling goroutine: an outbox commit
// (an fsync on an SD card) must not make the loop miss conversions, so each
// channel hands its readings to one emitter goroutine that batches them.
// The package never logs; what it sees is counted (Stats, Health).
//
// # Glitches and spikes
//
// A code of exactly −1 is what periph's driver clocks out when it trusted a
// DOUT glitch and read before the conversion was ready; it is dropped and
// counted (Stats.Glitches).
//
// Every other code passes a per-channel spike filter. It keeps the last
// Options.SpikeWindow (default 5) accepted codes. A code further from their
// median than the threshold — the larger of Options.SpikeGrams (default
// 250 g) and 8 robust standard deviations (1.4826 × the median absolute
// deviation) of the window — is held back. If the next code is back within
// the threshold, the held one was a spike: it is dropped and counted
// (Stats.Spikes). If the next code is out to the same side, the load really
// changed: both are emitted, each with its own time, and the window restarts
// from them. A real step is thus emitted one sample late, never smeared or
// lost; only a departure that lasts a single sample is removed. The filter
// does not allocate.
//
// # Auto-zero tracking
//
// Off by default (Options.AutoZeroRate 0). When on, the package corrects slow
// drift of a cell's zero (temperature, creep) while, and only while, the
// channel is settled:
//
//   - settled means the last SpikeWindow accepted codes lie within
//     Options.AutoZeroBand (default 2 g) of each other;
//   - the level of the median when the channel settles becomes the
//     reference; while it stays settled and its median stays within the band
//     of the reference, the zero correction moves the median back towards
//     the reference by at most AutoZeroRate grams per minute of reading time;
//   - any reading outside the band unsettles the channel (a pick or put, a
//     hand on the shelf), and the next settled level is a new reference:
//     load changes are never absorbed, and neither is drift accumulated
//     while unsettled;
//   - the total correction never exceeds Options.AutoZeroLimit (default
//     50 g), and readings that are stale, or held as spikes, do not take part.
//
// This holds any settled level, not just the empty bin's. A real load change
// slower than AutoZeroRate and smaller than the band per window (a leak,
// evaporation) is indistinguishable from drift and is absorbed up to
// AutoZeroLimit, so keep the rate below the slowest real change you care
// about. The correction in force is ChannelHealth.ZeroGrams.
//
// # Health and fault events
//
// Each channel follows four faults (see Fault), each entered and left on its
// own:
//
//   - timeout: Options.FaultAfter (3) consecutive reads without data-ready;
//   - pin_error: FaultAfter consecutive other ADC errors. periph's ReadTimeout
//     cannot report GPIO errors (a dead pin looks like a chip that is never
//     ready); they show up when selecting the mode;
//   - stuck: Options.StuckAfter (12) consecutive identical codes in range. The
//     lowest bits of a working HX711 always carry noise, so this means a
//     frozen chip or a floating DOUT (which reads 0 without ever waiting);
//   - saturated: FaultAfter consecutive codes at either end of the 24-bit
//     range (overload, or a broken signal or excitation wire).
//
// A fault is left after Options.RecoverAfter (3) consecutive good reads: any
// successful read for timeout and pin_error, changed codes for stuck,
// in-range codes for saturated. On entering a fault the channel emits one
// gateway.Event{Kind: gateway.EventSensorFault, Stream: <channel stream>,
// Detail: "timeout" | "pin_error" | "stuck" | "saturated"}, and on leaving it
// one with Detail "recovered:<fault>", through the Emitter given to Run.
// Events follow the readings sampled before
// them. A faulty channel keeps being read (after an error or while stuck,
// with Options.Backoff between reads) so it recovers by itself.
//
// Saturated codes are emitted with gateway.QualitySaturated; codes of a stuck
// run, from the StuckAfter-th identical one on, with gateway.QualityStale and
// bypassing the filter. Source.Health returns each channel's faults, counters
// and zero correction for metrics and diagnostics.
//
// # Reboot
//
// Source.Reboot resets the chips while Run runs: each channel's sampling
// goroutine, between two reads, holds PD_SCK high for Options.PowerDownHold
// (default 100 µs; the HX711 powers down after 60 µs) and then low
// (PowerCycler: NewHX711 wraps periph's driver with its clock pin; a
// Group's channels reset their shared clock once for all). The chip comes
// back in channel A, gain 128 and settles for about four conversions before
// it signals data-ready; a channel in another mode selects it again before
// its next code, as a Group does before its next lockstep read. Codes read
// before the reset are processed as usual, the filter, calibration and
// auto-zero carry on, and the fault monitor's runs start afresh: an active
// fault stays until RecoverAfter good reads end it with its recovered
// event. Stats.PowerCycles and ChannelHealth.PowerCycles count the resets.
package loadcell
