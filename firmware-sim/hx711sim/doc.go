// Package hx711sim simulates an Avia Semiconductor HX711 24-bit load-cell ADC
// at the GPIO level, so that the unmodified periph.io hx711 driver
// (periph.io/x/devices/v3/hx711) can be exercised without hardware.
//
// # Datasheet
//
// https://cdn.sparkfun.com/datasheets/Sensors/ForceFlex/hx711_english.pdf
//
// # Wiring
//
// A Sim exposes two pins: CLK (PD_SCK, a gpio.PinOut driven by the host) and
// DOUT (a gpio.PinIn read by the host). Pass them to hx711.New(sim.CLK(),
// sim.DOUT()).
//
// # Protocol
//
// The simulated chip converts continuously at Opts.Rate (10 or 80 samples/s),
// accelerated by Opts.SpeedUp. Conversion k completes k sample periods after
// the Sim was created; k is the index passed to Signal.CodeAt. When a
// conversion has completed and has not been read yet, DOUT is low and a
// falling edge is reported to WaitForEdge. The first rising edge on CLK
// latches the newest completed conversion; pulses 1..24 shift its 24-bit two's
// complement code out MSB first (DOUT is valid while CLK is high). A total of
// 25, 26 or 27 pulses selects the gain and channel of the NEXT conversion:
// channel A gain 128, channel B gain 32, channel A gain 64. After a gain or
// channel change, and after power-up, the output settles for Opts.Settle
// conversion periods (4 in the datasheet) before DOUT goes low again.
//
// Pulses applied while no conversion is ready read DOUT high, so a read that
// is not preceded by data-ready yields 0xFFFFFF, i.e. -1. This is what the
// real part does and is the source of the spurious -1 readings seen with the
// periph driver; FaultGlitch reproduces the DOUT glitch that triggers it. The
// pulse count of such a read still selects the next gain, so hx711.Dev's
// SetInputMode works whatever the timing.
//
// The chip only learns that the gain pulses are over when the host looks at
// DOUT again. The periph driver's Read and SetInputMode clock a transaction
// right after the previous one without doing so; the simulator recognises
// the first data bit of the new transaction because the host samples DOUT
// while PD_SCK is high, which it never does during gain pulses. A read
// abandoned before the 25th pulse is forgotten once PD_SCK has stayed low
// for Opts.PowerDownAfter; the chip then signals the next conversion.
//
// # Input signal and gain
//
// A Signal gives, for sample k, the code that channel A at gain 128 would
// output, before clamping; values outside the 24-bit range saturate at
// 0x7FFFFF and 0x800000 (-8388608). The other modes are derived from the
// same differential input voltage:
//
//   - channel A, gain 64: code >> 1 (half the gain, floor division), then
//     clamped. An input that saturates at gain 128 may still be in range.
//   - channel B, gain 32: Opts.ChannelB.CodeAt(k) when set (a second bridge
//     wired to B, given directly as gain-32 codes); otherwise channel B is
//     assumed to be wired to the same bridge as A and reads code >> 2.
//
// # Power-down
//
// The datasheet powers the chip down when PD_SCK stays high longer than
// 60 µs and resets it (gain back to channel A/128, settling again) when PD_SCK
// returns low. A user-space process on a shared host is routinely descheduled
// for longer than 60 µs between two pin writes, so the threshold is
// Opts.PowerDownAfter, DatasheetPowerDown for a faithful chip, and
// DefaultOpts uses a larger value so that ordinary reads never power the
// simulated chip down by accident. While powered down DOUT stays high and
// clock pulses shift nothing; after the reset DOUT goes low again only
// after Opts.Settle conversion periods. Stats.PowerDowns, Stats.Resets and
// Stats.LastReset let a test see a host's power cycle on the bus.
//
// # Shared clock
//
// A Pi has too few GPIOs for one clock line per HX711, so the four cells
// of a shelf plate are wired to one PD_SCK output and four DOUT inputs and
// read in lockstep. NewGroup builds N chips on one clock: Group.CLK is the
// shared PD_SCK (every edge reaches every chip at the same instant) and
// Group.DOUT(i) chip i's data pin. Each chip keeps its own conversion grid
// (GroupOpts.Phases offsets it, as independent oscillators do), its own
// data-ready and its own faults, injected through Group.Chip(i). The host
// waits until every DOUT is low, then clocks 24 data bits, sampling all
// DOUTs while PD_SCK is high, then 1–3 gain pulses; since the pulses are
// shared, every chip selects the same gain and powers down together. A
// chip that is not ready when the host starts clocking (FaultNotReady, a
// glitch taken for data-ready, a late oscillator) shifts out 0xFFFFFF
// (-1) while the others deliver their conversions. FaultPinError breaks
// only that chip's DOUT: the shared clock keeps working.
//
// NewPlate feeds the four chips of a plate from a PlateSource such as
// firmware-sim/warehouse's Warehouse: conversion k of chip c outputs
// PlateCodes(plate, k)[c], paced at Rate × SpeedUp like a single Sim fed by
// Bin.
//
// # Faults
//
// InjectFault switches the simulated chip into one Fault mode until ClearFault:
// never ready, disconnected DOUT, pin errors, stuck output, noise bursts,
// slow conversions and DOUT glitches. See the Fault constants.
package hx711sim
