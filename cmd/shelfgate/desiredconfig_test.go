package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/shelfgate/shelfgate/gateway/collect"
	"github.com/shelfgate/shelfgate/gateway/modelsync"
	"github.com/shelfgate/shelfgate/gateway/mqtttest"
	"github.com/shelfgate/shelfgate/gateway/wire/shelfv1"
)

// desiredYAML is the gateway's file and, with other values, the cloud's
// desired configuration: a simulated shelf delivering to url.
const desiredYAML = `gateway: {id: gw-dc, site: site-dc}
broker: {urls: [%q]}
outbox: {path: %q}
uplink: {batch_records: %d, flush_timeout: 3s}
models: {trusted_keys: [%q]}
simulation:
  warehouse: {shelves: 1, bins_per_shelf: 4, sample_rate: 80}
log: {level: %s}
`

// dcRig runs the whole gateway (run) in-process against mosquitto and
// watches what the cloud sees: every batch through a collector (events,
// telemetry batch sizes) and the retained status.
type dcRig struct {
	t        *testing.T
	url      string
	dir      string
	cfgPath  string
	db       string
	keyFile  string
	priv     ed25519.PrivateKey
	col      *collect.Collector
	logs     *logBuffer
	pub      paho.Client
	stopGW   func()
	mu       sync.Mutex
	outcomes []shelfv1.ConfigOutcome
	sizes    []int // records per telemetry batch, in arrival order
	status   map[string]any
}

func newDCRig(t *testing.T) *dcRig {
	r := &dcRig{t: t, url: mqtttest.StartMosquitto(t).URL, dir: t.TempDir(), col: collect.New()}
	r.cfgPath, r.db, r.keyFile = filepath.Join(r.dir, "shelfgate.yaml"), filepath.Join(r.dir, "outbox.db"), filepath.Join(r.dir, "cloud.pub")
	pub, priv, err := modelsync.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	r.priv = priv
	if err := os.WriteFile(r.keyFile, []byte(hex.EncodeToString(pub)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(r.cfgPath, []byte(r.yaml(500, "info")), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	subscribed := make(chan struct{}, 4)
	go collect.Subscribe(ctx, r.col, collect.SubscribeOptions{
		Broker: r.url, ClientID: "collector-" + t.Name(), Persistent: true, Site: "site-dc",
		OnSubscribed: func() { subscribed <- struct{}{} },
		OnBatch: func(b *shelfv1.Batch, fresh []shelfv1.WireRecord) {
			r.mu.Lock()
			defer r.mu.Unlock()
			if b.Class == "telemetry" {
				r.sizes = append(r.sizes, len(b.Records))
			}
			for _, rec := range fresh {
				if rec.Stream == string(shelfv1.StreamConfig) {
					o, err := shelfv1.DecodeConfigOutcome(rec.Event)
					if err != nil {
						t.Errorf("config event %s: %v", rec.Event, err)
					}
					r.outcomes = append(r.outcomes, o)
				}
			}
		},
	})
	select {
	case <-subscribed:
	case <-time.After(15 * time.Second):
		t.Fatal("collector did not subscribe")
	}
	r.pub = mqttClient(t, r.url, "cloud-"+t.Name())
	dlSubscribe(t, r.pub, "shelfgate/v1/site-dc/gw-dc/status", func(m paho.Message) {
		var st map[string]any
		if json.Unmarshal(m.Payload(), &st) == nil {
			r.mu.Lock()
			r.status = st
			r.mu.Unlock()
		}
	})
	return r
}

func (r *dcRig) yaml(batch int, level string) string {
	return fmt.Sprintf(desiredYAML, r.url, r.db, batch, r.keyFile, level)
}

// start runs the gateway until stop (a clean shutdown with flush).
func (r *dcRig) start() {
	r.t.Helper()
	cfg, err := loadConfigWith(r.cfgPath, newHostCheck())
	if err != nil {
		r.t.Fatal(err)
	}
	r.logs = &logBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, context.Background(), cfg, runOptions{stdout: &bytes.Buffer{}, stderr: r.logs, host: newHostCheck()})
	}()
	var once sync.Once
	r.stopGW = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				r.t.Errorf("run: %v\n%s", err, r.logs.String())
			}
		})
	}
	r.t.Cleanup(r.stopGW)
	r.wait("the gateway online", func() bool { st := r.statusNow(); return st != nil && st["state"] == "online" })
}

func (r *dcRig) statusNow() map[string]any {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.status
}

func (r *dcRig) wait(what string, cond func() bool) {
	r.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			r.t.Fatalf("timed out waiting for %s\nlog:\n%s", what, r.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// push publishes p retained on the gateway's config topic.
func (r *dcRig) push(p []byte) {
	r.t.Helper()
	if tok := r.pub.Publish("shelfgate/v1/site-dc/gw-dc/config", 1, true, p); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		r.t.Fatalf("publish: %v", tok.Error())
	}
}

// sign returns a payload of yaml as version v, signed with priv under kid.
func (r *dcRig) sign(v uint64, yaml string, priv ed25519.PrivateKey, kid string) []byte {
	r.t.Helper()
	p, err := shelfv1.SignConfig(shelfv1.ConfigDoc{Format: shelfv1.ConfigFormat, Site: "site-dc", Gateway: "gw-dc", Version: v, Issued: time.Now(), YAML: yaml}, priv, kid)
	if err != nil {
		r.t.Fatal(err)
	}
	return p
}

func (r *dcRig) signed(v uint64, yaml string) []byte {
	return r.sign(v, yaml, r.priv, modelsync.KeyID(r.priv.Public().(ed25519.PublicKey)))
}

// outcome waits for the n-th config event (1-based) and returns it.
func (r *dcRig) outcome(n int) shelfv1.ConfigOutcome {
	r.t.Helper()
	r.wait(fmt.Sprintf("config event %d", n), func() bool { r.mu.Lock(); defer r.mu.Unlock(); return len(r.outcomes) >= n })
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.outcomes[n-1]
}

func (r *dcRig) configVersion() float64 {
	st := r.statusNow()
	v, _ := st[shelfv1.StatusConfigVersion].(float64)
	return v
}

// sizesSince returns the telemetry batch sizes from index i on.
func (r *dcRig) sizesSince(i int) []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]int(nil), r.sizes[i:]...)
}

func (r *dcRig) numSizes() int { r.mu.Lock(); defer r.mu.Unlock(); return len(r.sizes) }

// TestDesiredConfigOverMosquitto runs the gateway against mosquitto and
// pushes desired configurations: a signed one changes batch_records and
// the log level live (later batches are that small, debug lines appear,
// the status shows its version) and loses no reading; a wrongly signed,
// unknown-key, older, oversize and invalid one are each refused with
// their reason in a config_rejected event while the running
// configuration stays; after a restart the accepted version is still the
// floor and the retained document is applied again.
func TestDesiredConfigOverMosquitto(t *testing.T) {
	r := newDCRig(t)
	r.start()
	r.wait("telemetry batches", func() bool { return r.numSizes() > 20 })
	if r.configVersion() != 0 {
		t.Fatalf("config_version %v before any desired config, want 0", r.configVersion())
	}
	if strings.Contains(r.logs.String(), "level=DEBUG") {
		t.Fatal("debug lines at level info")
	}
	big := false
	for _, n := range r.sizesSince(0) {
		big = big || n > 1
	}
	if !big {
		t.Fatal("no telemetry batch of more than one record before the change: the test cannot tell batch_records 1 applied")
	}

	// v5: batch_records 1, log level debug, and a restart-only change.
	v5 := strings.Replace(r.yaml(1, "debug"), "flush_timeout: 3s", "flush_timeout: 4s", 1)
	r.push(r.signed(5, v5))
	o := r.outcome(1)
	if o.Kind != shelfv1.EventConfigApplied || o.Version != 5 || o.Source != "mqtt" ||
		fmt.Sprint(o.Applied) != "[log.level uplink.batch_records]" || fmt.Sprint(o.Restart) != "[uplink.flush_timeout]" {
		t.Fatalf("outcome %+v", o)
	}
	r.wait("config_version 5 in the status", func() bool { return r.configVersion() == 5 })
	r.wait("debug lines", func() bool { return strings.Contains(r.logs.String(), "level=DEBUG") })
	// Batches already in the window when the change landed may be larger;
	// after a few more, every one holds one record.
	from := r.numSizes() + 40
	r.wait("batches after the change", func() bool { return r.numSizes() > from+100 })
	for i, n := range r.sizesSince(from) {
		if n != 1 {
			t.Fatalf("telemetry batch %d after batch_records 1 applied holds %d records", from+i, n)
		}
	}

	other, otherPriv, _ := modelsync.GenerateKey(nil)
	trustedID := modelsync.KeyID(r.priv.Public().(ed25519.PublicKey))
	invalid := strings.Replace(r.yaml(500, "info"), "uplink: {batch_records: 500", "uplink: {batch_records: -7", 1)
	cases := []struct {
		name, reason, text string
		payload            []byte
	}{
		{"wrongly signed", reasonBadSignature, "does not verify", r.sign(6, r.yaml(500, "info"), otherPriv, trustedID)},
		{"unknown key", reasonUnknownKey, "not in models.trusted_keys", r.sign(6, r.yaml(500, "info"), otherPriv, modelsync.KeyID(other))},
		{"older version", reasonRollback, "not above the accepted v5", r.signed(4, r.yaml(500, "info"))},
		{"same version, other content", reasonRollback, "not above the accepted v5", r.signed(5, r.yaml(500, "info"))},
		{"oversize", reasonOversize, "exceeds the limit", append(r.signed(6, r.yaml(500, "info")), bytes.Repeat([]byte(" "), shelfv1.MaxConfigBytes)...)},
		{"invalid yaml", reasonInvalidConfig, "fails validation: 1 error(s)", r.signed(6, invalid)},
	}
	for i, tc := range cases {
		r.push(tc.payload)
		o := r.outcome(2 + i)
		if o.Kind != shelfv1.EventConfigRejected || o.Reason != tc.reason || !strings.Contains(o.Error, tc.text) {
			t.Errorf("%s: outcome %+v, want rejected %s with %q", tc.name, o, tc.reason, tc.text)
		}
		if tc.reason == reasonInvalidConfig && (len(o.Errors) != 1 || !strings.HasPrefix(o.Errors[0], "desired config v6:4: uplink.batch_records:")) {
			t.Errorf("%s: errors %q, want the line and field", tc.name, o.Errors)
		}
	}
	if r.configVersion() != 5 {
		t.Errorf("config_version %v after the refusals, want 5", r.configVersion())
	}
	from = r.numSizes() + 5
	r.wait("batches after the refusals", func() bool { return r.numSizes() > from+50 })
	for i, n := range r.sizesSince(from) {
		if n != 1 {
			t.Fatalf("telemetry batch %d after the refusals holds %d records: a refused config changed batch_records", from+i, n)
		}
	}

	// v7 is accepted and left retained; a restart runs the file until the
	// retained document comes, then applies it again; v6 stays refused.
	r.push(r.signed(7, r.yaml(3, "debug")))
	if o := r.outcome(2 + len(cases)); o.Kind != shelfv1.EventConfigApplied || o.Version != 7 || fmt.Sprint(o.Applied) != "[uplink.batch_records]" {
		t.Fatalf("v7 outcome %+v", o)
	}
	r.stopGW()
	var acc acceptedConfig
	if data, err := os.ReadFile(desiredStatePath(r.db)); err != nil || json.Unmarshal(data, &acc) != nil || acc.Version != 7 {
		t.Fatalf("persisted state %s (%v): %+v", data, err, acc)
	}
	r.start()
	o = r.outcome(3 + len(cases))
	if o.Kind != shelfv1.EventConfigApplied || o.Version != 7 || fmt.Sprint(o.Applied) != "[log.level uplink.batch_records]" {
		t.Fatalf("after the restart: %+v, want v7 applied again over the file", o)
	}
	r.wait("config_version 7 after the restart", func() bool { return r.configVersion() == 7 })
	r.push(r.signed(6, r.yaml(500, "info")))
	if o := r.outcome(4 + len(cases)); o.Reason != reasonRollback {
		t.Fatalf("v6 after the restart: %+v, want rollback", o)
	}
	r.stopGW()

	// No reading lost: every stream's sequence numbers arrived without gaps.
	r.wait("the backlog delivered", func() bool { a := r.col.Audit(false); return a.Missing == 0 })
	if a := r.col.Audit(false); !a.OK() || a.Received == 0 {
		t.Fatalf("audit %+v", a)
	}
}

// TestShelfctlConfigPush runs `shelfctl config push` against a running
// gateway: a valid file is applied (exit 0, the live fields listed); a
// file the gateway refuses ends non-zero with the reason; a file that
// fails the local check is not published at all.
func TestShelfctlConfigPush(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binaries")
	}
	_, ctl := binaries(t)
	r := newDCRig(t)
	r.start()
	pem, err := modelsync.MarshalPrivateKeyPEM(r.priv)
	if err != nil {
		t.Fatal(err)
	}
	keyPath, file := filepath.Join(r.dir, "cloud.key"), filepath.Join(r.dir, "desired.yaml")
	if err := os.WriteFile(keyPath, pem, 0o600); err != nil {
		t.Fatal(err)
	}
	push := func(version int, yaml string) (string, error) {
		if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(ctl, "config", "push", "--broker", r.url, "--site", "site-dc", "--gateway", "gw-dc",
			"--key", keyPath, "--version", fmt.Sprint(version), "--wait", "20s", file).CombinedOutput()
		return string(out), err
	}
	out, err := push(3, r.yaml(7, "info"))
	if err != nil || !strings.Contains(out, "applied version 3") || !strings.Contains(out, "live:            uplink.batch_records") {
		t.Fatalf("push v3: %v\n%s", err, out)
	}
	r.wait("config_version 3", func() bool { return r.configVersion() == 3 })

	out, err = push(2, r.yaml(9, "info"))
	if err == nil || !strings.Contains(out, "rejected version 2: rollback") {
		t.Fatalf("push v2 (older): %v\n%s", err, out)
	}

	// Both outcomes so far (v3 applied, v2 refused) have reached the rig's
	// own subscriber before counting: shelfctl's wait saw the refusal on
	// its subscription, which may be ahead of the rig's.
	if o := r.outcome(2); o.Version != 2 || o.Kind != shelfv1.EventConfigRejected {
		t.Fatalf("second outcome %+v, want v2 rejected", o)
	}
	before := r.numOutcomes()
	out, err = push(4, strings.Replace(r.yaml(7, "info"), "level: info", "level: loud", 1))
	if err == nil || !strings.Contains(out, "log.level") || strings.Contains(out, "published") {
		t.Fatalf("push of an invalid file: %v\n%s", err, out)
	}
	time.Sleep(300 * time.Millisecond)
	if r.numOutcomes() != before || r.configVersion() != 3 {
		t.Errorf("a file that failed the local check reached the gateway")
	}
}

func (r *dcRig) numOutcomes() int { r.mu.Lock(); defer r.mu.Unlock(); return len(r.outcomes) }

// TestDesiredConfigSiteWide: a document on the site's topic without a
// gateway.id is applied with the gateway's own id; a document for another
// gateway is refused as wrong_target even when published on this
// gateway's topic.
func TestDesiredConfigSiteWide(t *testing.T) {
	r := newDCRig(t)
	r.start()
	siteYAML := strings.Replace(r.yaml(2, "info"), "gateway: {id: gw-dc, site: site-dc}", "gateway: {site: site-dc}", 1)
	p, err := shelfv1.SignConfig(shelfv1.ConfigDoc{Format: shelfv1.ConfigFormat, Site: "site-dc", Version: 3, Issued: time.Now(), YAML: siteYAML},
		r.priv, modelsync.KeyID(r.priv.Public().(ed25519.PublicKey)))
	if err != nil {
		t.Fatal(err)
	}
	if tok := r.pub.Publish("shelfgate/v1/site-dc/all/config", 1, true, p); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	if o := r.outcome(1); o.Kind != shelfv1.EventConfigApplied || o.Version != 3 || fmt.Sprint(o.Applied) != "[uplink.batch_records]" || len(o.Restart) != 0 {
		t.Fatalf("site-wide outcome %+v", o)
	}
	r.wait("config_version 3", func() bool { return r.configVersion() == 3 })

	other := strings.Replace(r.yaml(9, "info"), "id: gw-dc", "id: gw-other", 1)
	p, err = shelfv1.SignConfig(shelfv1.ConfigDoc{Format: shelfv1.ConfigFormat, Site: "site-dc", Gateway: "gw-other", Version: 4, Issued: time.Now(), YAML: other},
		r.priv, modelsync.KeyID(r.priv.Public().(ed25519.PublicKey)))
	if err != nil {
		t.Fatal(err)
	}
	r.push(p)
	if o := r.outcome(2); o.Reason != reasonWrongTarget {
		t.Fatalf("another gateway's document: %+v, want wrong_target", o)
	}
	// The document names this gateway but its YAML another one.
	r.push(r.signed(5, other))
	if o := r.outcome(3); o.Reason != reasonWrongTarget || !strings.Contains(o.Error, `gateway.id "gw-other"`) {
		t.Fatalf("YAML for another gateway: %+v, want wrong_target", o)
	}
	if r.configVersion() != 3 {
		t.Errorf("config_version %v, want 3", r.configVersion())
	}
}
