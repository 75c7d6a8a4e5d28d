package shelf_test

import (
	"testing"

	"github.com/shelfgate/shelfgate/gateway"
	"github.com/shelfgate/shelfgate/gateway/shelf"
)

// TestRebaseline: a tare moves a loaded bin's readings to about zero.
// Without Rebaseline that is a pick of every unit; with it no event, the
// stock estimate stays, and the next real pick is seen from the new level.
func TestRebaseline(t *testing.T) {
	for _, tc := range []struct {
		name   string
		rebase bool
		want   []want
	}{
		{"without", false, []want{{gateway.EventPick, 10}, {gateway.EventLowStock, 0}, {gateway.EventPick, 2}}},
		{"with", true, []want{{gateway.EventPick, 2}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := shelf.New(oneBin(10, 0))
			if err != nil {
				t.Fatal(err)
			}
			var got []gateway.Event
			got = append(got, run(t, d, newSeq(1).level(1000, 30))...)
			if tc.rebase && !d.Rebaseline("shelf-01/bin-01") {
				t.Fatal("Rebaseline of a configured bin reported false")
			}
			got = append(got, run(t, d, newSeq(1).level(0, 30).level(-200, 30))...)
			var kinds []want
			for _, ev := range got {
				kinds = append(kinds, want{ev.Kind, ev.Quantity})
			}
			if len(kinds) != len(tc.want) {
				t.Fatalf("events %v, want %v", kinds, tc.want)
			}
			for i := range kinds {
				if kinds[i] != tc.want[i] {
					t.Fatalf("events %v, want %v", kinds, tc.want)
				}
			}
			if tc.rebase {
				if n, _ := d.Stock("shelf-01/bin-01"); n != 8 {
					t.Errorf("stock %d after the tare and a pick of 2, want 8", n)
				}
			}
		})
	}
	d, _ := shelf.New(oneBin(1, 0))
	if d.Rebaseline("no-such-bin") {
		t.Error("Rebaseline of an unknown bin reported true")
	}
}

// TestRebaselineConcurrent runs Rebaseline beside Observe (go test -race).
func TestRebaselineConcurrent(t *testing.T) {
	d, err := shelf.New(oneBin(10, 0))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 1000 {
			d.Rebaseline("shelf-01/bin-01")
		}
	}()
	run(t, d, newSeq(1).level(500, 2000))
	<-done
}
