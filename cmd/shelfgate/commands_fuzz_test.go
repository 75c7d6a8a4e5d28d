package main

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shelfgate/shelfgate/gateway"
)

// FuzzCommandArgs feeds arbitrary args to every command: none panics, a
// refusal of the args names a field (args.<field> or args:), and a
// result is JSON.
func FuzzCommandArgs(f *testing.F) {
	for _, s := range []string{``, `{}`, `null`, `{"bin":"shelf-01/bin-01"}`, `{"bin":"shelf-01/bin-01","reference_grams":500}`,
		`{"level":"debug"}`, `{"sensor":"shelf-01"}`, `{"event":{"stream":"loadcell/plate-01","t":1},"sku":"SKU-B","qty":1}`, `[1,2]`, `{"bin":{"x":1}}`} {
		f.Add(s)
	}
	r := newCmdRig(f, f.TempDir())
	r.book.ObserveEvent(gateway.Event{Kind: gateway.EventPick, Stream: "loadcell/plate-01", Bin: cmdPlate, SKU: "SKU-A", Quantity: 1, Time: time.UnixMicro(1),
		Inference: &gateway.Inference{Plate: cmdPlate, SKU: "SKU-A", Action: "pick", Quantity: 1, Classifier: "model", ModelVersion: 3}})
	cmds := gatewayCommands(commandDeps{Cells: r.cells, CalibrationFile: r.calFile, Detectors: []rebaseliner{r.det},
		Level: r.level, Uplink: fixedFlusher{}, Outbox: fixedOutbox{}, Sensors: []sensorRef{{Name: "shelf-01", Kind: "hx711", Reboot: fakeRebooter{}}, {Name: "coldroom-1", Kind: "bme280"}}, Samples: r.book, Log: slog.New(slog.DiscardHandler)})
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	slices.Sort(names)
	f.Fuzz(func(t *testing.T, args string) {
		for _, n := range names {
			res, _, err := cmds[n](context.Background(), json.RawMessage(args))
			if errors.Is(err, errArgs) && !strings.Contains(err.Error(), "args") {
				t.Fatalf("%s %q: argument error without a field: %v", n, args, err)
			}
			if err == nil {
				if _, merr := json.Marshal(res); merr != nil {
					t.Fatalf("%s %q: result is not JSON: %v", n, args, merr)
				}
			}
		}
	})
}
