package statuspage

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/shelfgate/shelfgate/sensors/calibration"
)

type call struct {
	path, body string
	hdr        map[string]string // replaces the defaults; "" deletes
}

func (r *rig) do(t testing.TB, c call) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest("POST", r.ts.URL+c.path, strings.NewReader(c.body))
	if err != nil {
		t.Skipf("not a request: %v", err)
	}
	h := map[string]string{"Content-Type": "application/json", ActionHeader: "1", "Authorization": "Bearer " + testToken}
	for k, v := range c.hdr {
		h[k] = v
	}
	for k, v := range h {
		if v != "" {
			req.Header.Set(k, v)
		}
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var m map[string]any
	json.Unmarshal(b, &m)
	return res.StatusCode, m
}

// Hostile and broken requests are refused with a status and a reason, and
// nothing is applied or written.
func TestActionsRefuse(t *testing.T) {
	r := newRig(t, nil)
	before, _ := os.ReadFile(r.file)
	big := `{"bin":"` + strings.Repeat("x", MaxBody) + `"}`
	for _, tc := range []struct {
		name string
		c    call
		code int
		want string
	}{
		{"no token", call{"/api/tare", `{"bin":"s1/b1"}`, map[string]string{"Authorization": ""}}, 401, "token"},
		{"wrong token", call{"/api/tare", `{"bin":"s1/b1"}`, map[string]string{"Authorization": "Bearer nope"}}, 401, "token"},
		{"basic wrong", call{"/api/tare", `{"bin":"s1/b1"}`, map[string]string{"Authorization": "Basic dTp4"}}, 401, "token"},
		{"csrf no header", call{"/api/tare", `{"bin":"s1/b1"}`, map[string]string{ActionHeader: ""}}, 403, "CSRF"},
		{"csrf form", call{"/api/tare", `bin=s1/b1`, map[string]string{"Content-Type": "application/x-www-form-urlencoded"}}, 415, "CSRF"},
		{"csrf origin", call{"/api/tare", `{"bin":"s1/b1"}`, map[string]string{"Origin": "http://evil.example"}}, 403, "Origin"},
		{"csrf fetch site", call{"/api/tare", `{"bin":"s1/b1"}`, map[string]string{"Sec-Fetch-Site": "cross-site"}}, 403, "Sec-Fetch-Site"},
		{"oversize", call{"/api/tare", big, nil}, 413, "larger"},
		{"bad json", call{"/api/tare", `{"bin":`, nil}, 400, "bad JSON"},
		{"two values", call{"/api/tare", `{"bin":"s1/b1"}{}`, nil}, 400, "more than one"},
		{"unknown field", call{"/api/tare", `{"bin":"s1/b1","offset":5}`, nil}, 400, "unknown field"},
		{"wrong bin", call{"/api/tare", `{"bin":"s9/b9"}`, nil}, 404, "s9/b9"},
		{"empty bin", call{"/api/calibrate/empty", `{"bin":""}`, nil}, 404, "not a bin"},
		{"negative weight", call{"/api/calibrate/loaded", `{"id":"x","reference_grams":-5}`, nil}, 400, "reference_grams"},
		{"zero weight", call{"/api/calibrate/loaded", `{"id":"x","reference_grams":0}`, nil}, 400, "reference_grams"},
		{"NaN weight", call{"/api/calibrate/loaded", `{"id":"x","reference_grams":NaN}`, nil}, 400, "bad JSON"},
		{"NaN string", call{"/api/calibrate/loaded", `{"id":"x","reference_grams":"NaN"}`, nil}, 400, "bad JSON"},
		{"huge weight", call{"/api/calibrate/loaded", `{"id":"x","reference_grams":1e300}`, nil}, 400, "reference_grams"},
		{"missing weight", call{"/api/calibrate/loaded", `{"id":"x"}`, nil}, 400, "missing"},
		{"unknown id", call{"/api/calibrate/loaded", `{"id":"x","reference_grams":500}`, nil}, 404, "no pending"},
		{"confirm unknown", call{"/api/confirm", `{"id":"deadbeef"}`, nil}, 404, "no pending"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, m := r.do(t, tc.c)
			if code != tc.code || !strings.Contains(m["error"].(string), tc.want) {
				t.Errorf("%d %v, want %d mentioning %q", code, m, tc.code, tc.want)
			}
		})
	}
	if res, _ := http.Get(r.ts.URL + "/api/tare"); res.StatusCode == http.StatusOK {
		t.Errorf("GET of an action: %d", res.StatusCode)
	}
	after, _ := os.ReadFile(r.file)
	if string(after) != string(before) || r.cells.sets != 0 {
		t.Fatalf("a refused action changed something: sets %d, file %q", r.cells.sets, after)
	}
}

func TestReadOnlyWithoutToken(t *testing.T) {
	r := newRig(t, func(o *Options) { o.Token = "" })
	code, m := r.do(t, call{"/api/tare", `{"bin":"s1/b1"}`, nil})
	if code != 403 || !strings.Contains(m["error"].(string), "read-only") {
		t.Fatalf("%d %v", code, m)
	}
}

// Tare: proposed from the median of the recent codes, applied only when
// confirmed, persisted (other bins kept) and applied live; a proposal is
// confirmed once.
func TestTareProposeConfirm(t *testing.T) {
	r := newRig(t, nil)
	code, p := r.do(t, call{"/api/tare", `{"bin":"s1/b1"}`, nil})
	if code != 200 || p["offset"].(float64) != 100_000 || p["grams_now"].(float64) != 225 || p["warning"] == nil {
		t.Fatalf("proposal %d %v", code, p)
	}
	if r.cells.sets != 0 {
		t.Fatal("applied before confirmation")
	}
	code, res := r.do(t, call{"/api/confirm", `{"id":"` + p["id"].(string) + `"}`, nil})
	if code != 200 {
		t.Fatalf("confirm %d %v", code, res)
	}
	if c, _ := r.cells.Calibration("s1/b1"); c.Offset != 100_000 || c.CountsPerGram != 400 {
		t.Fatalf("applied %+v", c)
	}
	f := readCal(t, r.file)
	if c, ok := f.Lookup("s1/b1"); !ok || c.Offset != 100_000 || c.CountsPerGram != 400 {
		t.Fatalf("file %+v", f)
	}
	if _, ok := f.Lookup("other"); !ok {
		t.Fatal("other bins lost from the file")
	}
	if code, _ := r.do(t, call{"/api/confirm", `{"id":"` + p["id"].(string) + `"}`, nil}); code != 404 {
		t.Fatalf("confirmed twice: %d", code)
	}
}

// Two-point calibration with basic auth: empty step, loaded step with the
// reference weight, confirmation; the file key carries the mode.
func TestCalibrateTwoPoints(t *testing.T) {
	r := newRig(t, nil)
	req := func(path, body string) (int, map[string]any) {
		hreq, _ := http.NewRequest("POST", r.ts.URL+path, strings.NewReader(body))
		hreq.Header.Set("Content-Type", "application/json")
		hreq.Header.Set(ActionHeader, "1")
		hreq.SetBasicAuth("tech", testToken)
		res, err := http.DefaultClient.Do(hreq)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var m map[string]any
		json.NewDecoder(res.Body).Decode(&m)
		return res.StatusCode, m
	}
	code, first := req("/api/calibrate/empty", `{"bin":"s1/b2"}`)
	if code != 200 {
		t.Fatalf("empty step %d %v", code, first)
	}
	if code, m := req("/api/confirm", `{"id":"`+first["id"].(string)+`"}`); code != 409 {
		t.Fatalf("confirming the empty step alone: %d %v", code, m)
	}
	if code, first = req("/api/calibrate/empty", `{"bin":"s1/b2"}`); code != 200 {
		t.Fatalf("empty step %d %v", code, first)
	}
	r.cells.mu.Lock()
	r.cells.code["s1/b2"] = 50_000 - 200*500 // 500 g at -200 counts/g
	r.cells.mu.Unlock()
	code, p := req("/api/calibrate/loaded", `{"id":"`+first["id"].(string)+`","reference_grams":500}`)
	if code != 200 || p["counts_per_gram"].(float64) != -200 || p["offset"].(float64) != 50_000 || p["grams_after"].(float64) != 500 {
		t.Fatalf("loaded step %d %v", code, p)
	}
	if code, m := req("/api/confirm", `{"id":"`+p["id"].(string)+`"}`); code != 200 {
		t.Fatalf("confirm %d %v", code, m)
	}
	if c, ok := readCal(t, r.file).Lookup("s1/b2:A64"); !ok || c.CountsPerGram != -200 || c.Offset != 50_000 {
		t.Fatalf("file entry %+v %v", c, ok)
	}
}

func readCal(t *testing.T, path string) calibration.File {
	t.Helper()
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	f, err := calibration.Parse(fh)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// FuzzActionBody: whatever the body, an action answers with a status and
// JSON, never panics, and never applies anything without a confirmation.
func FuzzActionBody(f *testing.F) {
	for _, s := range []string{`{"bin":"s1/b1"}`, `{"id":"x","reference_grams":1}`, `{`, `null`, `[]`, `{"bin":null}`, "\x00"} {
		f.Add("/api/tare", s)
		f.Add("/api/calibrate/loaded", s)
		f.Add("/api/confirm", s)
	}
	r := newRig(f, nil)
	f.Fuzz(func(t *testing.T, path, body string) {
		if !strings.HasPrefix(path, "/api/") || strings.ContainsAny(path, " ?#%\r\n") {
			return
		}
		code, _ := r.do(t, call{path, body, nil})
		if code == 0 || code >= 500 {
			t.Fatalf("%s %q: %d", path, body, code)
		}
		if r.cells.sets != 0 {
			t.Fatalf("%s %q applied a calibration", path, body)
		}
	})
}
