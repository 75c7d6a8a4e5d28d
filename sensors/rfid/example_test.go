package rfid_test

import (
	"context"
	"fmt"
	"time"

	"periph.io/x/devices/v3/mfrc522"

	"github.com/shelfgate/shelfgate/firmware-sim/rfidsim"
	"github.com/shelfgate/shelfgate/gateway"
	"github.com/shelfgate/shelfgate/sensors/rfid"
)

// firstTag is a gateway.Emitter that prints the first tag event and stops
// the example; in shelfgate the Gateway is the Emitter.
type firstTag struct {
	cancel context.CancelFunc
}

func (f firstTag) Emit(context.Context, []gateway.Reading) error { return nil }

func (f firstTag) EmitEvents(_ context.Context, evs []gateway.Event) error {
	for _, ev := range evs {
		fmt.Println(ev.Stream, ev.Kind, ev.Detail)
	}
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
	src, err := rfid.New("dock-1", rfid.FromDev(dev), rfid.Options{Timeout: 20 * time.Millisecond})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := sim.Present([]byte{0x04, 0xA2, 0x2B, 0x9C}); err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fmt.Println(src.Run(ctx, firstTag{cancel}))
	// Output:
	// rfid/dock-1 tag 04A22B9C
	// <nil>
}
