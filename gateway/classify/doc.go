// Package classify identifies what moved on shelf plates and catches
// mis-picks; its types are links of the gateway's classifier chain.
//
// PlateDetector assembles each plate's lockstep samples from its four cell
// streams (under a lock of that plate only), waits for the plate's total
// load to settle and, for each settled change, asks an Identifier which
// facing's units moved: Analytic (nearest facing to the centre of mass of
// the change, unit weight dividing |Δ| into whole units) or ModelID (the
// int8 model, held in a Holder's atomic.Pointer so an update swaps it
// between two changes without stopping readings). In shadow mode the
// second identifier's answer is recorded in the event beside the first.
// Events carry a gateway.Inference.
//
// MisPick fuses scans with the plates' picks: a pick whose SKU differs
// from the picker's last scanned SKU, or whose quantity differs from the
// scanned pick-list line, raises a mispick event in the same commit as the
// pick.
//
// Package classify does not log; counts are in Stats and MisPick.Stats.
package classify
