package trace_test

import (
	"errors"
	"fmt"
	"io"
	"log"
	"strings"

	"github.com/shelfgate/shelfgate/firmware-sim/trace"
)

func ExampleReader() {
	in := `time,plate,cell,code,label_action,label_facing,label_sku,label_qty
1764925200.0,plate-01,0,-41230,,,,
1764925200.1,plate-01,0,-52877,pick,1,4006381333931,2
1764925200.2,plate-01,7,-52877,,,,
`
	r, err := trace.NewReader(strings.NewReader(in))
	if err != nil {
		log.Fatal(err)
	}
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			fmt.Println(err)
			break
		}
		fmt.Println(rec.Time.Format("15:04:05.0"), rec.Plate, rec.Cell, rec.Code, rec.Label != nil)
	}
	// Output:
	// 09:00:00.0 plate-01 0 -41230 false
	// 09:00:00.1 plate-01 0 -52877 true
	// trace: line 4, column cell: bad value: cell "7" must be 0, 1, 2 or 3
}
