package calibration_test

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/shelfgate/shelfgate/sensors/calibration"
)

func ExampleFromMeasurements() {
	// Codes read from bin-03's HX711 empty, then with a 500 g reference weight.
	empty := []int32{-81230, -81241, -81236, -81229, -81250}
	loaded := []int32{125040, 125021, 125044, 125030, 125036}
	c, err := calibration.FromMeasurements(empty, loaded, 500)
	if err != nil {
		fmt.Println(err)
		return
	}
	c.Bin = "shelf-01/bin-03"
	c.Measured = time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC)
	if err := calibration.Write(os.Stdout, calibration.File{Channels: []calibration.Calibration{c}}); err != nil {
		fmt.Println(err)
	}
	fmt.Printf("%.1f g\n", c.Grams(-81236+412*250))
	// Output:
	// shelfgate-calibration v1
	// bin=shelf-01/bin-03 offset=-81236 counts_per_gram=412.544 measured=2026-11-29
	// 249.7 g
}

func ExampleParse() {
	_, err := calibration.Parse(strings.NewReader("shelfgate-calibration v1\nbin=b1 offset=12 counts_per_gram=zero measured=2026-11-29\n"))
	fmt.Println(err)
	// Output: calibration: line 2: field counts_per_gram: "zero": invalid syntax
}
