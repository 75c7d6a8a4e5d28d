package scannersim_test

import (
	"bufio"
	"fmt"
	"log"
	"os"
	"syscall"

	"github.com/shelfgate/shelfgate/firmware-sim/scannersim"
)

func Example() {
	sim, err := scannersim.New(&scannersim.Opts{Suffix: scannersim.LF})
	if err != nil {
		log.Fatal(err)
	}
	defer sim.Close()

	// The reader opens the device as it would open /dev/ttyACM0.
	tty, err := os.OpenFile(sim.Path(), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		log.Fatal(err)
	}
	defer tty.Close()

	code, _ := scannersim.EAN13("400638133393")
	if err := sim.Scan(code); err != nil {
		log.Fatal(err)
	}
	line, err := bufio.NewReader(tty).ReadString('\n')
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%q valid=%v\n", line, scannersim.ValidGTIN(line[:len(line)-1]))
	// Output:
	// "4006381333931\n" valid=true
}
