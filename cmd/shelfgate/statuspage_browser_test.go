package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/shelfgate/shelfgate/gateway/mqtttest"
	"github.com/shelfgate/shelfgate/sensors/calibration"
)

// chromiumPath finds Debian's chromium (or $CHROMIUM). Without it the
// browser test skips, unless REQUIRE_CHROMIUM=1 (CI), where it fails.
func chromiumPath(t *testing.T) string {
	t.Helper()
	cands := []string{os.Getenv("CHROMIUM"), "chromium", "chromium-browser", "google-chrome"}
	for _, c := range cands {
		if c == "" {
			continue
		}
		if p, err := exec.LookPath(c); err == nil {
			return p
		}
	}
	if os.Getenv("REQUIRE_CHROMIUM") == "1" {
		t.Fatal("REQUIRE_CHROMIUM=1 but no chromium found (apt-get install -y chromium, or set CHROMIUM)")
	}
	t.Skip("no chromium on this machine (apt-get install -y chromium); set REQUIRE_CHROMIUM=1 to make this a failure")
	return ""
}

// artifactsDir is where screenshots go: $SHELFGATE_ARTIFACTS/<test>, or a
// temporary directory that is logged.
func artifactsDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if base := os.Getenv("SHELFGATE_ARTIFACTS"); base != "" {
		dir = filepath.Join(base, t.Name())
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("screenshots in %s", dir)
	return dir
}

// demoGateway runs the demo scenario (configs/demo.yaml) in-process on
// free ports with the status page's token set, and returns the page's URL
// and the calibration file it persists to.
func demoGateway(t *testing.T, token string) (url, calFile string) {
	t.Helper()
	root := mqtttest.ModuleRoot(t)
	demo, err := os.ReadFile(filepath.Join(root, "configs", "demo.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	calFile = filepath.Join(dir, "calibration.txt")
	if err := os.WriteFile(calFile, []byte(calibration.Header+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	httpAddr := fmt.Sprintf("127.0.0.1:%d", mqtttest.FreePort(t))
	cfgText := strings.NewReplacer(
		"path: shelfgate-demo.db", "path: "+filepath.Join(dir, "outbox.db"),
		"embedded_addr: 127.0.0.1:1883", fmt.Sprintf("embedded_addr: 127.0.0.1:%d", mqtttest.FreePort(t)),
		"listen: 127.0.0.1:9464", "listen: "+httpAddr,
		"level: info", "level: warn",
		"model: configs/models/", "model: "+filepath.Join(root, "configs", "models")+"/",
	).Replace(string(demo)) + "calibration_file: " + calFile + "\n"
	cfgPath := filepath.Join(dir, "demo.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(envStatusToken, token)
	ctx, cancel := context.WithCancel(context.Background())
	var logs lockedBuffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, ctx, cfg, runOptions{stdout: io.Discard, stderr: &logs}) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("gateway: %v", err)
		}
		if t.Failed() {
			t.Logf("gateway log:\n%s", logs.String())
		}
	})
	url = "http://" + httpAddr + "/"
	waitUntil(t, "the status page", 30*time.Second, func() bool {
		res, err := http.Get(url + "api/state")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == 200
	})
	return url, calFile
}

type pageEvent struct {
	Seq uint64 `json:"seq"`
	Ev  struct {
		Kind string    `json:"kind"`
		Bin  string    `json:"bin"`
		SKU  string    `json:"sku"`
		Qty  int       `json:"qty"`
		Time time.Time `json:"time"`
	} `json:"ev"`
}

// picks reads the events the page's state holds.
func stateEvents(t *testing.T, url string) []pageEvent {
	t.Helper()
	res, err := http.Get(url + "api/state")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var st struct {
		Events []pageEvent `json:"events"`
	}
	if err := json.NewDecoder(res.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st.Events
}

// consoleLog collects what the page writes to its console.
type consoleLog struct {
	mu   sync.Mutex
	msgs []chromedp.ConsoleMessage
}

func (c *consoleLog) errors() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, m := range c.msgs {
		if m.Type == chromedp.ConsoleError || m.IsException() {
			out = append(out, m.String()+" "+m.URL)
		}
	}
	return out
}

// TestStatusPageInBrowser drives the status page in headless Chromium
// against the demo scenario: it loads without console errors, the shelf
// plot follows a pick within 2 s, the pick appears in the event list with
// its SKU and quantity, an action without the token is refused, and a tare
// from the page changes the bin's reading and the calibration file.
// Screenshots at laptop and phone width are saved.
func TestStatusPageInBrowser(t *testing.T) {
	exe := chromiumPath(t)
	if testing.Short() {
		t.Skip("browser test runs the demo for ~30s")
	}
	const token = "browser-test-token-42"
	url, calFile := demoGateway(t, token)
	shots := artifactsDir(t)

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.NoSandbox,
		chromedp.Flag("disable-gpu", true), chromedp.Flag("disable-dev-shm-usage", true))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	if err := chromedp.Do(ctx); err != nil { // start the browser
		t.Fatal(err)
	}
	var console consoleLog
	msgs := chromedp.Console(ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			console.mu.Lock()
			console.msgs = append(console.msgs, m)
			console.mu.Unlock()
		}
	}()
	step := func(what string, d time.Duration, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, c := context.WithTimeout(ctx, d)
		defer c()
		if err := chromedp.Do(sctx, steps...); err != nil {
			t.Fatalf("%s: %v (console: %v)", what, err, console.errors())
		}
	}
	eval := func(js string) string {
		t.Helper()
		sctx, c := context.WithTimeout(ctx, 10*time.Second)
		defer c()
		v, err := chromedp.Run(sctx, chromedp.Evaluate[string](js))
		if err != nil {
			t.Fatalf("%s: %v", js, err)
		}
		return v
	}
	shot := func(name string) {
		t.Helper()
		sctx, c := context.WithTimeout(ctx, 20*time.Second)
		defer c()
		png, err := chromedp.Run(sctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(shots, name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tab := func(view string) {
		t.Helper()
		eval(fmt.Sprintf(`document.querySelector('#tabs button[data-view=%q]').click(), ''`, view))
	}

	// Loads, live, no console errors.
	step("load", 30*time.Second, chromedp.EmulateViewport(1280, 860), chromedp.Navigate(url),
		chromedp.Poll[chromedp.Void](`document.querySelectorAll('#bins .card').length == 8 && document.getElementById('conn').textContent == 'live'`, chromedp.WithPollingTimeout(20*time.Second)),
		chromedp.Poll[chromedp.Void](`[...document.querySelectorAll('#bins svg')].every(s => +s.dataset.lastT > 0)`, chromedp.WithPollingTimeout(20*time.Second)))
	if errs := console.errors(); len(errs) > 0 {
		t.Fatalf("console errors on load: %v", errs)
	}

	// A pick on a bin the page plots (plates have no card): the plot
	// follows within 2 s, the event is listed.
	cards := strings.Split(eval(`[...document.querySelectorAll('#bins .card')].map(c => c.dataset.bin).join(',')`), ",")
	before := stateEvents(t, url)
	var seen uint64
	if len(before) > 0 {
		seen = before[len(before)-1].Seq
	}
	var pick pageEvent
	waitUntil(t, "a simulated pick", 60*time.Second, func() bool {
		for _, e := range stateEvents(t, url) {
			if e.Seq > seen && e.Ev.Kind == "pick" && e.Ev.SKU != "" && e.Ev.Qty > 0 && slices.Contains(cards, e.Ev.Bin) {
				pick = e
				return true
			}
		}
		time.Sleep(50 * time.Millisecond)
		return false
	})
	bucket := pick.Ev.Time.UnixMilli() / 250 * 250
	step("plot follows the pick", 10*time.Second, chromedp.Poll[chromedp.Void](
		fmt.Sprintf(`+document.querySelector('[data-bin=%q] svg').dataset.lastT >= %d`, pick.Ev.Bin, bucket),
		chromedp.WithPollingInterval(20*time.Millisecond)))
	lag := time.Since(pick.Ev.Time)
	t.Logf("pick %d x %s on %s at %s: plotted %v after the pick", pick.Ev.Qty, pick.Ev.SKU, pick.Ev.Bin, pick.Ev.Time.Format(time.StampMilli), lag)
	if lag > 2*time.Second {
		t.Errorf("the plot showed the pick %v after it, want within 2s", lag)
	}
	shot("laptop-shelves")
	tab("events")
	step("pick listed", 10*time.Second, chromedp.Poll[chromedp.Void](fmt.Sprintf(
		`[...document.querySelectorAll('#evlist tr.pick')].some(tr => { const c = [...tr.children].map(td => td.textContent); return c[2] == %q && c[3] == %q && c[4] == %q })`,
		pick.Ev.Bin, fmt.Sprint(pick.Ev.Qty), pick.Ev.SKU)))
	shot("laptop-events")
	tab("pipeline")
	step("pipeline", 10*time.Second, chromedp.Poll[chromedp.Void](`document.querySelectorAll('#pipe .card').length >= 6`))
	shot("laptop-pipeline")
	tab("sensors")
	step("sensors", 10*time.Second, chromedp.Poll[chromedp.Void](`document.querySelectorAll('#senslist tr').length >= 8`))
	shot("laptop-sensors")
	tab("model")
	step("model", 10*time.Second, chromedp.Poll[chromedp.Void](`document.getElementById('modelbox').textContent.includes('analytic')`))
	tab("shelves")

	// An action without the token is refused, and nothing changes.
	bin := "shelf-02/bin-03"
	sel := fmt.Sprintf(`[data-bin=%q]`, bin)
	eval(fmt.Sprintf(`document.querySelector('%s button.tare').click(), ''`, sel))
	step("refused without token", 10*time.Second, chromedp.Poll[chromedp.Void](`!document.getElementById('dialog').hidden && document.getElementById('dbody').textContent.includes('401')`))
	eval(`document.getElementById('dok').click(), ''`)
	if b, _ := os.ReadFile(calFile); strings.Contains(string(b), bin) {
		t.Fatalf("calibration file changed without the token:\n%s", b)
	}

	// Unlock, tare, confirm: the reading and the file change.
	eval(fmt.Sprintf(`document.getElementById('token').value = %q, document.getElementById('unlockbtn').click(), ''`, token))
	step("unlock", 10*time.Second, chromedp.Poll[chromedp.Void](`document.getElementById('unlockbtn').textContent == 'Unlocked'`))
	weight := func() float64 {
		var w float64
		fmt.Sscanf(eval(fmt.Sprintf(`document.querySelector('%s .weight').textContent`, sel)), "%g", &w)
		return w
	}
	w0 := weight()
	if w0 < 50 {
		t.Fatalf("bin %s reads %v g before the tare; the demo's bins hold stock", bin, w0)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		eval(fmt.Sprintf(`document.querySelector('%s button.tare').click(), ''`, sel))
		step("tare proposal", 10*time.Second, chromedp.Poll[chromedp.Void](`!document.getElementById('dialog').hidden && document.getElementById('dbody').textContent.length > 0`))
		body := eval(`document.getElementById('dbody').textContent`)
		if strings.Contains(body, "will read") {
			shot("laptop-tare-confirm")
			eval(`document.getElementById('dok').click(), ''`)
			step("tare confirmed", 10*time.Second, chromedp.Poll[chromedp.Void](`document.getElementById('dialog').hidden`))
			break
		}
		// 409: the bin moved (a pick) during the last few seconds; try again.
		eval(`document.getElementById('dcancel').click(), ''`)
		if time.Now().After(deadline) {
			t.Fatalf("tare never proposed: %s", body)
		}
		time.Sleep(time.Second)
	}
	waitUntil(t, "the bin to read about zero after the tare", 10*time.Second, func() bool { w := weight(); return w > -30 && w < 30 })
	b, err := os.ReadFile(calFile)
	if err != nil {
		t.Fatal(err)
	}
	f, err := calibration.Parse(strings.NewReader(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := f.Lookup(bin); !ok {
		t.Fatalf("calibration file has no entry for %s after the tare:\n%s", bin, b)
	}
	t.Logf("bin %s read %.1f g before the tare, %.1f g after; file: %s", bin, w0, weight(), strings.TrimSpace(string(b)))
	shot("laptop-after-tare")

	// Phone width.
	step("phone", 20*time.Second, chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile, chromedp.EmulatePortrait), chromedp.Sleep(700*time.Millisecond))
	shot("phone-shelves")
	tab("events")
	step("phone events", 5*time.Second, chromedp.Sleep(500*time.Millisecond))
	shot("phone-events")

	// Only the refusals the test provoked (401, and 409 while a bin moved)
	// may have reached the console.
	for _, e := range console.errors() {
		if !strings.Contains(e, "401") && !strings.Contains(e, "409") {
			t.Errorf("console error: %s", e)
		}
	}
}
