//go:build !race

package shelf_test

const raceEnabled = false
