package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/shelfgate/shelfgate/gateway/wire/shelfv1"
)

// TestDaemonCommands runs the built daemon (simulated shelf, embedded
// broker) and drives its commands over MQTT: set-log-level turns on debug
// lines at once, status and flush report the backlog by class, and tare on
// a gateway without a calibration file is refused with the reason. This is
// the wiring in run, not the handler alone.
func TestDaemonCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the daemon")
	}
	gw, _ := binaries(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "shelfgate.yaml")
	if err := os.WriteFile(cfgPath, []byte(fmt.Sprintf(daemonConfig, "gw-1", filepath.Join(dir, "outbox.db"), 32, "info")), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(gw, "run", "--config", cfgPath)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	log := newJSONLog(stderr)
	m, _ := log.wait(t, 0, "embedded broker", msgIs("embedded broker listening"))
	url, _ := m["url"].(string)
	log.wait(t, 0, "connected", msgIs("connected to broker"))

	topics := shelfv1.Topics{Site: "s1", Gateway: "gw-1"}
	c := mqttClient(t, url, "operator-"+t.Name())
	var mu sync.Mutex
	got := map[string]shelfv1.Reply{}
	dlSubscribe(t, c, topics.Reply("+"), func(msg paho.Message) {
		r, err := shelfv1.DecodeReply(msg.Payload())
		if err != nil {
			t.Errorf("reply: %v", err)
			return
		}
		mu.Lock()
		got[r.ID] = r
		mu.Unlock()
	})
	send := func(name, id, args string) shelfv1.Reply {
		t.Helper()
		body := `{"id":"` + id + `"` + map[bool]string{true: `,"args":` + args, false: ""}[args != ""] + `}`
		var r shelfv1.Reply
		dlWait(t, "reply to "+id, 20*time.Second, func() bool {
			c.Publish(topics.Base()+"/cmd/"+name, 1, false, body).Wait()
			time.Sleep(150 * time.Millisecond)
			mu.Lock()
			defer mu.Unlock()
			var ok bool
			r, ok = got[id]
			return ok
		})
		return r
	}

	if r := send("ping", "ping-info", ""); !r.OK {
		t.Fatalf("ping: %+v", r)
	}
	log.mu.Lock()
	for _, l := range log.lines {
		if l["level"] == "DEBUG" {
			t.Fatalf("a DEBUG line at level info: %v", l)
		}
	}
	mark := len(log.lines)
	log.mu.Unlock()
	if r := send("set-log-level", "lvl", `{"level":"debug"}`); !r.OK {
		t.Fatalf("set-log-level: %+v", r)
	}
	log.wait(t, mark, "the change logged", msgIs("command: log level set"))
	send("ping", "ping-debug", "")
	log.wait(t, mark, "a DEBUG line after set-log-level", func(m map[string]any) bool {
		return m["level"] == "DEBUG" && m["msg"] == "command received" && m["id"] == "ping-debug"
	})

	for _, name := range []string{"status", "flush"} {
		r := send(name, name+"-1", "")
		if !r.OK || !strings.Contains(string(r.Result), `"by_class":{"event":`) || !strings.Contains(string(r.Result), `"samples":`) {
			t.Fatalf("%s: %+v %s", name, r, r.Result)
		}
	}
	if r := send("tare", "tare-1", `{"bin":"shelf-01/bin-01"}`); r.OK || r.Error == "" {
		t.Fatalf("tare without a calibration file: %+v", r)
	} else {
		t.Logf("tare refused: %s", r.Error)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("daemon exit: %v\n%s", err, log.raw.String())
	}
}
