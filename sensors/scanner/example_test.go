package scanner_test

import (
	"fmt"

	"github.com/shelfgate/shelfgate/sensors/scanner"
)

func ExampleParseFrames() {
	capture := []byte("4006381333931\r4006381333932\r\x00\xff\r(01)09501101530003(10)AB12\r9638")
	for _, f := range scanner.ParseFrames(capture, scanner.SuffixCR, 0) {
		if f.Reject != scanner.ReasonOK {
			fmt.Println("rejected:", f.Reject)
			continue
		}
		fmt.Println(f.Symbology, f.Code)
	}
	// Output:
	// ean13 4006381333931
	// rejected: check_digit
	// rejected: non_printable
	// gs1 (01)09501101530003(10)AB12
	// rejected: partial
}

func ExampleNew() {
	src, err := scanner.New("dock-1", scanner.Serial("/dev/ttyACM0", 9600), scanner.Options{Suffix: scanner.SuffixCR})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(src.Name(), src.Stream())
	// src.Run(ctx, gw) would now read the scanner until ctx ends, emitting
	// each scan as an event through the gateway gw.
	// Output: dock-1 scanner/dock-1
}
