package rfidsim_test

import (
	"fmt"
	"log"
	"time"

	"github.com/shelfgate/shelfgate/firmware-sim/rfidsim"
	"periph.io/x/devices/v3/mfrc522"
)

func Example() {
	sim := rfidsim.New(nil)
	// The unmodified periph driver on the simulated SPI port and pins.
	rfid, err := mfrc522.NewSPI(sim, sim.Reset(), sim.IRQ())
	if err != nil {
		log.Fatal(err)
	}

	// A picker holds a badge over the reader.
	if err := sim.Present([]byte{0x04, 0xA2, 0x2B, 0x9C}); err != nil {
		log.Fatal(err)
	}
	uid, err := rfid.ReadUID(time.Second)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("% X\n", uid)

	sim.Remove()
	_, err = rfid.ReadUID(50 * time.Millisecond)
	fmt.Println(err != nil)
	// Output:
	// 04 A2 2B 9C
	// true
}
