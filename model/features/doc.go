// Package features is what a Shelfgate classifier sees of a shelf: the
// fixed window cut from load-cell samples around a weight change, the
// standard scaler fitted on the training windows and stored with the model,
// and the labelled dataset of windows that training reads (type Dataset and
// its file formats).
//
// Training (model/train, fed by the dataset builder in firmware-sim/dataset)
// and serving (the gateway's shelf classifier) call the same Window.Extract,
// so a model sees at run time exactly the features it was trained on.
//
// # Window
//
// A Window has Cells load cells read in lockstep (1 for a bin, 4 for a
// plate), Samples samples per cell, Pre of them before the anchor, at Rate
// samples per second. The anchor is the index of the sample of the change:
// in training the last sample taken at or before the instant the hand
// enters (k = ⌊Start·Rate⌋ for a label's Start, in integer nanoseconds),
// in serving the sample at which the change detector saw the load start to
// move.
//
// The window covers samples first = anchor−Pre … first+Samples−1. Inputs are
// loads in grams per cell (calibrated: (code − offset)/counts per gram,
// noise and drift included). Feature j = c·Samples + i (cell-major, then
// time) is
//
//	x[c·Samples+i] = float32((g[c][first+i] − g[c][first]) / scale)
//
// computed in float64 and rounded once to float32: each cell's load relative
// to its own first window sample, divided by scale (grams per feature unit:
// the bin's unit weight for one-SKU bins, so one class means the same change
// of units on every bin; 1 for plain grams). Samples outside the given
// sequence are padded with the nearest edge sample (the first sample before
// the start, the last after the end), so a window at the start of a stream
// or one still filling is defined; x[c·Samples] is always 0.
//
// Feature names are "s<i>" for one cell and "c<c>_s<i>" for several.
//
// # Serving
//
// A Ring keeps the last samples of a stream's cells; the classifier pushes
// every lockstep sample, remembers the anchor its change detector reports,
// and once Ring.Ready(anchor) (Samples−Pre samples after it) calls
// Ring.Extract, which equals Window.Extract on the retained samples, then
// standardizes with the model's Scaler (its input Mean and Std).
// Window.CheckNames refuses a model whose feature names belong to another
// window. Neither Push nor Extract allocates.
//
// # Scaler
//
// Scaler is sklearn's StandardScaler: per feature the mean and the population
// standard deviation (divisor n) over the training rows, computed in float64
// and stored as float32; a constant feature gets std 1. Transform computes
// (x − mean)/std in float32. The parameters are the Mean and Std that
// model/train keeps in its float MLP and model/quantize writes into the model
// file's input section.
//
// This package imports only the standard library; it must not import
// firmware-sim or gateway.
package features
