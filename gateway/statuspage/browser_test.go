package statuspage

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/shelfgate/shelfgate/gateway"
)

// chromium finds Debian's chromium (or $CHROMIUM); without it the test
// skips, or fails when REQUIRE_CHROMIUM=1.
func chromium(t *testing.T) string {
	t.Helper()
	for _, c := range []string{os.Getenv("CHROMIUM"), "chromium", "chromium-browser", "google-chrome"} {
		if c == "" {
			continue
		}
		if p, err := exec.LookPath(c); err == nil {
			return p
		}
	}
	if os.Getenv("REQUIRE_CHROMIUM") == "1" {
		t.Fatal("REQUIRE_CHROMIUM=1 but no chromium found")
	}
	t.Skip("no chromium on this machine; set REQUIRE_CHROMIUM=1 to make this a failure")
	return ""
}

// A bin whose load cell reports a fault stands out on the Shelves view (red
// frame, FAULT badge naming the fault); a healthy bin does not. The
// Sensors view lists the fault and the Model view says "analytic".
func TestFaultedBinStandsOutInBrowser(t *testing.T) {
	exe := chromium(t)
	r := newRig(t, nil)
	for i := range 10 {
		r.feed("loadcell/s1/b1", 500, time.Now().Add(time.Duration(i-10)*300*time.Millisecond))
		r.feed("loadcell/s1/b2", 250, time.Now().Add(time.Duration(i-10)*300*time.Millisecond))
	}
	r.tap.ObserveEvent(gateway.Event{Kind: gateway.EventSensorFault, Stream: "loadcell/s1/b1", Detail: "timeout", Time: time.Now()})
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.NoSandbox, chromedp.Flag("disable-gpu", true))...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	if err := chromedp.Do(ctx); err != nil {
		t.Fatal(err)
	}
	tctx, tcancel := context.WithTimeout(ctx, 60*time.Second)
	defer tcancel()
	if err := chromedp.Do(tctx, chromedp.EmulateViewport(900, 500), chromedp.Navigate(r.ts.URL+"/"),
		chromedp.Poll[chromedp.Void](`(() => { const c = document.getElementById('bin-s1/b1'); return c && c.classList.contains('fault') && c.querySelector('.badge').textContent == 'FAULT timeout' })()`),
		chromedp.Poll[chromedp.Void](`!document.getElementById('bin-s1/b2').classList.contains('fault') && document.querySelector('#bin-s1\\/b2 .weight').textContent.startsWith('250.0 g')`),
	); err != nil {
		t.Fatal(err)
	}
	png, err := chromedp.Run(tctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if base := os.Getenv("SHELFGATE_ARTIFACTS"); base != "" {
		dir = filepath.Join(base, t.Name())
		os.MkdirAll(dir, 0o755)
	}
	os.WriteFile(filepath.Join(dir, "faulted-bin.png"), png, 0o644)
	t.Logf("screenshot in %s", dir)
	if err := chromedp.Do(tctx,
		chromedp.Evaluate[chromedp.Void](`document.querySelector('#tabs button[data-view=sensors]').click()`),
		chromedp.Poll[chromedp.Void](`[...document.querySelectorAll('#senslist tr')].some(tr => tr.textContent.includes('FAULT timeout'))`),
		chromedp.Evaluate[chromedp.Void](`document.querySelector('#tabs button[data-view=model]').click()`),
		chromedp.Poll[chromedp.Void](`document.getElementById('modelbox').textContent.includes('analytic')`),
	); err != nil {
		t.Fatal(err)
	}
}
