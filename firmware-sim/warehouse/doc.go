// Package warehouse is a seeded, deterministic warehouse scenario engine:
// shelves of bins standing on HX711 load cells, a catalogue of SKUs with
// EAN-13 barcodes, pickers whose visits pick or restock units, hand
// disturbances, per-sample noise and slow zero drift, and the ground-truth
// labels of every visit.
//
// Everything is a pure function of Config and the sample index k:
// CodeAt(bin, k) draws its noise from a hash of (seed, bin, k) rather than a
// shared random sequence, and each bin's visits are generated lazily, in
// order, from the bin's own seeded stream. Any goroutine may therefore ask
// for any sample in any order and get the same answer; two engines built
// from the same Config agree bit for bit.
//
// A Reader paces one bin's samples in wall-clock time (optionally
// accelerated by Config.Speed) behind the same ReadTimeout contract as
// periph.io/x/devices/v3/hx711.Dev, so the gateway's load-cell source can
// use either.
//
// Physical model, per bin: the cell carries TareGrams (the empty bin) plus
// units×UnitGrams. The raw HX711 code (channel A, gain 128) is
//
//	OffsetCounts + CountsPerGram·(GramsAt + drift) + noise
//
// clamped to the 24-bit two's-complement range. CountsPerGram follows from
// a ratiometric cell of ~0.85–0.98 mV/V rated for 5, 10 or 20 kg
// (2^23 counts span ±AVDD/256, so the rated load gives
// 2^31·sensitivity counts regardless of the excitation voltage).
//
// Plates (Config.Plates, none by default): a rigid plate of WidthMM ×
// DepthMM on four HX711 cells at its corners (front-left, front-right,
// back-left, back-right), carrying Facings SKU lanes at known positions
// (Facing.XMM, YMM). A load at (x, y) splits over the cells by the bilinear
// shares of Plate.Share, so the tare, every facing's stock and every unit
// taken or placed at its facing load each corner by position. Each unit
// has its own weight within ±UnitSpread of the facing's nominal; a share of
// facings hold 10–30 g items. Visits press with the hand along the lane,
// sometimes lean on the front edge, and sometimes coincide with a visit on
// the neighbouring plate; forklift bursts (Bursts) shake every plate; each
// cell sees its share of the plate's temperature cycle plus a slow zero
// drift. PlateLabels is the ground truth per visit: plate, facing, SKU,
// action, units, grams, position, start and settle times. Plates are
// generated in one-minute epochs from their own seeded streams, each visit
// settling inside its epoch, with stock checkpoints, so any sample of any
// cell is a pure function of Config and k like a bin's, and bins are the
// same with or without plates (TestBinsUnchangedByPlates pins them).
//
// Plates.SKUs replaces the generated facing products with a catalogue (a
// plate of similar unit weights, a plate of light items), and
// Plates.Faults breaks single cells for a while: stuck, saturated, dead,
// noisy or drifting codes, while the labels and PlateGramsAt stay the
// truth.
//
// Scenario files (ParseScenario, LoadScenario) are YAML with one
// "warehouse" section holding Config's fields; the shipped ones are under
// configs/scenarios, with separate training and evaluation sets in train/
// and eval/ (configs/scenarios/README.md).
//
// This package must not import gateway or sensors: firmware-sim replaces
// the hardware and never depends on the code under test.
package warehouse
