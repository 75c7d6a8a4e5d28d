package shelf_test

import (
	"sync"
	"testing"

	"github.com/shelfgate/shelfgate/gateway/shelf"
)

// TestStockWhileObserving reads Stock (as the status page does) while
// Observe counts picks; under -race an unsynchronised stock fails it.
func TestStockWhileObserving(t *testing.T) {
	d, err := shelf.New(oneBin(1000, 0))
	if err != nil {
		t.Fatal(err)
	}
	hand := []float64{1180, 930, 1240, 760, 1090}
	s := newSeq(1).level(100_000, 20)
	for i := range 50 {
		s.raw(hand...).level(100_000-float64(i+1)*100, 20)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
				if n, ok := d.Stock("shelf-01/bin-01"); !ok || n > 1000 || n < 0 {
					t.Errorf("Stock = %d, %v", n, ok)
					return
				}
			}
		}
	})
	evs := run(t, d, s)
	close(stop)
	wg.Wait()
	n, _ := d.Stock("shelf-01/bin-01")
	if len(evs) != 50 || n != 950 {
		t.Errorf("%d events, stock %d; want 50 picks and 950", len(evs), n)
	}
}
