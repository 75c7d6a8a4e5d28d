package rfid_test

import (
	"context"
	"fmt"
	"time"

	"periph.io/x/devices/v3/mfrc522"

	"github.com/shelfgate/shelfgate/firmware-sim/rfidsim"
	"github.com/shelfgate/shelfgate/sensors/rfid"
)

// firstTag stops the example after the first presentation.
type firstTag struct {
	cancel context.CancelFunc
}

func (f firstTag) Tag(_ context.Context, t rfid.Tag) error {
	fmt.Println(t.Stream, t.UID)
	f.cancel()
	return nil
}

func Example() {
	// On a Raspberry Pi: spireg.Open("SPI0.0") and two gpioreg pins.
	sim := rfidsim.New(nil)
	dev, err := mfrc522.NewSPI(sim, sim.Reset(), sim.IRQ())
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	src, err := rfid.New("dock-1", rfid.FromDev(dev), firstTag{cancel}, rfid.Options{Timeout: 20 * time.Millisecond})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := sim.Present([]byte{0x04, 0xA2, 0x2B, 0x9C}); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(src.Run(ctx, nil))
	// Output:
	// rfid/dock-1 04A22B9C
	// <nil>
}
