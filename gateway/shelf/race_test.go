//go:build race

package shelf_test

// raceEnabled shortens the accuracy simulation under the race detector,
// which slows the sample loop some thirtyfold; accuracy is measured in
// full by the ordinary test run.
const raceEnabled = true
