package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/shelfgate/shelfgate/gateway"
	"github.com/shelfgate/shelfgate/gateway/outbox"
	"github.com/shelfgate/shelfgate/gateway/wire/shelfv1"
)

// fixedOutbox reports a fixed backlog, so the golden replies are stable.
type fixedOutbox struct{}

func (fixedOutbox) Stats(context.Context) (outbox.Stats, error) {
	return outbox.Stats{Backlog: 1250, Events: 40, Samples: 10, ShedTelemetry: 300, OldestAge: 2500 * time.Millisecond}, nil
}

type fixedFlusher struct{}

func (fixedFlusher) Flush() bool { return true }

// TestCommandRepliesGolden pins the request and reply of every command as
// docs/protocol.md shows them (testdata/commands/<name>.json: the request
// on one line, the reply on the next). Run with -update to rewrite.
func TestCommandRepliesGolden(t *testing.T) {
	at := time.Date(2026, 12, 5, 20, 0, 0, 0, time.UTC)
	r := newCmdRig(t, t.TempDir())
	dir := t.TempDir()
	r.calFile = filepath.Join(dir, "calibration.txt")
	d := commandDeps{
		Birth: func() map[string]any { return map[string]any{"version": "v1.4.0", "model": "plate@3"} },
		Cells: r.cells, CalibrationFile: r.calFile, Detectors: []rebaseliner{r.det},
		Level: r.level, Uplink: fixedFlusher{}, Outbox: fixedOutbox{}, Sensors: goldenSensors, Samples: r.book,
		Now: func() time.Time { return at },
	}
	cmds := gatewayCommands(d)
	evTime := at.Add(-time.Minute)
	r.book.now = func() time.Time { return at }
	r.book.ObserveEvent(gateway.Event{Kind: gateway.EventPick, Stream: "loadcell/plate-01", Bin: cmdPlate, SKU: "SKU-A", Quantity: 1, Time: evTime,
		Inference: &gateway.Inference{Plate: cmdPlate, Facing: 0, SKU: "SKU-A", Action: "pick", Quantity: 1, Classifier: "model", ModelVersion: 3}})
	r.cells.load(cmdBin, 0, trueOffset, trueCPG, 0)

	for _, tc := range []struct{ file, name, args string }{
		{"ping", "ping", ``},
		{"status", "status", ``},
		{"tare", "tare", `{"bin":"shelf-01/bin-01"}`},
		{"tare_missing_bin", "tare", `{}`},
		{"calibrate", "calibrate", `{"bin":"shelf-01/bin-01","reference_grams":500}`},
		{"flush", "flush", ``},
		{"set-log-level", "set-log-level", `{"level":"debug"}`},
		{"set-log-level_bad", "set-log-level", `{"level":"verbose"}`},
		{"reboot-sensors", "reboot-sensors", `{"sensor":"shelf-01"}`},
		{"reboot-sensors_all", "reboot-sensors", ``},
		{"reboot-sensors_unknown", "reboot-sensors", `{"sensor":"shelf-09"}`},
		{"correct", "correct", `{"event":{"stream":"loadcell/plate-01","t":` + jsonInt(evTime.UnixMicro()) + `},"sku":"SKU-B","qty":1}`},
	} {
		t.Run(tc.file, func(t *testing.T) {
			if tc.name == "calibrate" {
				r.cells.load(cmdBin, 500, trueOffset, trueCPG, 0)
			}
			req := map[string]any{"id": "req-" + tc.file}
			if tc.args != "" {
				req["args"] = json.RawMessage(tc.args)
			}
			reqJSON, _ := json.Marshal(req)
			cmd, err := shelfv1.DecodeCommand(reqJSON)
			if err != nil {
				t.Fatal(err)
			}
			res, effects, runErr := cmds[tc.name](context.Background(), cmd.Args)
			rep, err := shelfv1.NewReply(cmd.ID, tc.name, res, runErr, at)
			if err != nil {
				t.Fatal(err)
			}
			got := append(append(reqJSON, '\n'), rep.Encode()...)
			for _, e := range effects {
				got = append(append(got, '\n'), e.Body...)
			}
			got = bytes.ReplaceAll(got, []byte(dir), []byte("/var/lib/shelfgate"))
			golden := filepath.Join("testdata", "commands", tc.file+".json")
			if *update {
				os.MkdirAll(filepath.Dir(golden), 0o755)
				if err := os.WriteFile(golden, append(got, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update)", err)
			}
			if !bytes.Equal(append(got, '\n'), want) {
				t.Errorf("%s changed:\n got %s\nwant %s", golden, got, want)
			}
		})
	}
}

func jsonInt(n int64) string { p, _ := json.Marshal(n); return string(p) }
