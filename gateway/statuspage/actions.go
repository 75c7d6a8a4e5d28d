package statuspage

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/shelfgate/shelfgate/sensors/calibration"
)

// Action limits.
const (
	MaxBody          = 4 << 10         // bytes of an action's JSON body
	ProposalTTL      = 2 * time.Minute // a proposal not confirmed by then is gone
	maxProposals     = 32
	MaxReference     = 1e6 // grams: a reference weight above a tonne is a typo
	TareMaxNoiseGram = 2.0 // a bin whose recent codes scatter more (robust σ, in grams) is moving: no tare
	// ActionHeader must be sent with every action (CSRF: a cross-site form
	// cannot set it, and no CORS is allowed).
	ActionHeader = "X-Shelfgate-Action"
)

// actions are the calibration endpoints: propose, then confirm.
type actions struct {
	o     Options
	log   *slog.Logger
	token [32]byte // sha256 of the token

	mu        sync.Mutex // serializes confirmations (file and live apply)
	pmu       sync.Mutex
	proposals map[string]*proposal
}

// proposal is a calibration waiting for confirmation.
type proposal struct {
	ID      string  `json:"id"`
	Kind    string  `json:"kind"` // "tare", "calibrate-empty" (waiting for the loaded step), "calibrate"
	Bin     string  `json:"bin"`
	Key     string  `json:"key"` // the calibration file's bin key
	Offset  int32   `json:"offset"`
	CPG     float64 `json:"counts_per_gram"`
	OldOff  int32   `json:"old_offset"`
	OldCPG  float64 `json:"old_counts_per_gram"`
	Grams   float64 `json:"grams_now"`   // what the bin reads now
	After   float64 `json:"grams_after"` // what it will read with the proposal
	Samples int     `json:"samples"`
	Warning string  `json:"warning,omitempty"`
	Expires int64   `json:"expires"` // Unix ms

	empty   []int32
	expires time.Time
}

func newActions(o Options) *actions {
	a := &actions{o: o, log: o.Logger, proposals: map[string]*proposal{}}
	if o.Token != "" {
		a.token = sha256.Sum256([]byte(o.Token))
	}
	return a
}

func (a *actions) enabled() bool { return a.o.Token != "" && a.o.Calibrator != nil }

func (a *actions) register(mux *http.ServeMux) {
	mux.HandleFunc("POST /api/tare", a.guard(a.tare))
	mux.HandleFunc("POST /api/calibrate/empty", a.guard(a.calibrateEmpty))
	mux.HandleFunc("POST /api/calibrate/loaded", a.guard(a.calibrateLoaded))
	mux.HandleFunc("POST /api/confirm", a.guard(a.confirm))
	mux.HandleFunc("POST /api/auth", a.guard(func(*http.Request, []byte) (any, error) { return map[string]bool{"ok": true}, nil }))
}

// httpError is an error with a status code.
type httpError struct {
	code int
	msg  string
}

func (e *httpError) Error() string { return e.msg }

func errorf(code int, format string, args ...any) error {
	return &httpError{code: code, msg: fmt.Sprintf(format, args...)}
}

// guard checks CSRF, then the token, then reads the body (at most
// MaxBody), and runs h; refusals are logged.
func (a *actions) guard(h func(r *http.Request, body []byte) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		res, err := a.check(w, r, h)
		if err != nil {
			var he *httpError
			if !errors.As(err, &he) {
				he = &httpError{code: http.StatusInternalServerError, msg: err.Error()}
			}
			a.log.Warn("status page action refused", "path", r.URL.Path, "remote", r.RemoteAddr, "status", he.code, "reason", he.msg)
			if he.code == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `Bearer realm="shelfgate"`)
			}
			writeJSON(w, he.code, map[string]string{"error": he.msg})
			return
		}
		writeJSON(w, http.StatusOK, res)
	}
}

func (a *actions) check(w http.ResponseWriter, r *http.Request, h func(*http.Request, []byte) (any, error)) (any, error) {
	if err := sameOrigin(r); err != nil {
		return nil, err
	}
	if a.o.Token == "" {
		return nil, errorf(http.StatusForbidden, "actions are disabled: no status page token is configured (the page is read-only)")
	}
	if !a.authorized(r) {
		return nil, errorf(http.StatusUnauthorized, "missing or wrong token")
	}
	if a.o.Calibrator == nil {
		return nil, errorf(http.StatusForbidden, "actions are disabled: no load cells to calibrate")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, errorf(http.StatusRequestEntityTooLarge, "body larger than %d bytes", MaxBody)
		}
		return nil, errorf(http.StatusBadRequest, "read body: %v", err)
	}
	return h(r, body)
}

// sameOrigin is the CSRF check: the action header, a JSON body, and
// Origin / Sec-Fetch-Site naming this origin when present.
func sameOrigin(r *http.Request) error {
	if r.Header.Get(ActionHeader) == "" {
		return errorf(http.StatusForbidden, "CSRF check: header %s missing", ActionHeader)
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return errorf(http.StatusUnsupportedMediaType, "CSRF check: Content-Type %q is not application/json", r.Header.Get("Content-Type"))
	}
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return errorf(http.StatusForbidden, "CSRF check: Sec-Fetch-Site is %q", site)
	}
	if origin := r.Header.Get("Origin"); origin != "" {
		u, err := url.Parse(origin)
		if err != nil || u.Host != r.Host {
			return errorf(http.StatusForbidden, "CSRF check: Origin %q is not this page's host %q", origin, r.Host)
		}
	}
	return nil
}

// authorized checks a bearer token or a basic-auth password (any user).
func (a *actions) authorized(r *http.Request) bool {
	var got string
	if _, pw, ok := r.BasicAuth(); ok {
		got = pw
	} else if t, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		got = strings.TrimSpace(t)
	} else {
		return false
	}
	sum := sha256.Sum256([]byte(got))
	return subtle.ConstantTimeCompare(sum[:], a.token[:]) == 1
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// decode reads body strictly into v.
func decode(body []byte, v any) error {
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errorf(http.StatusBadRequest, "bad JSON: %v", err)
	}
	if dec.More() {
		return errorf(http.StatusBadRequest, "bad JSON: more than one value")
	}
	return nil
}

type binRequest struct {
	Bin string `json:"bin"`
}

// bin finds the requested bin among the configured ones.
func (a *actions) bin(id string) (Bin, error) {
	i := slices.IndexFunc(a.o.Bins, func(b Bin) bool { return b.ID == id })
	if i < 0 {
		if len(id) > 80 {
			id = id[:80] + "..."
		}
		return Bin{}, errorf(http.StatusNotFound, "bin: %q is not a bin of this gateway", id)
	}
	return a.o.Bins[i], nil
}

// codes returns the bin's recent raw codes, at least calibration.MinSamples.
func (a *actions) codes(bin string) ([]int32, error) {
	codes, err := a.o.Calibrator.RecentCodes(bin)
	if err != nil {
		return nil, errorf(http.StatusConflict, "bin %s: %v", bin, err)
	}
	if len(codes) < calibration.MinSamples {
		return nil, errorf(http.StatusConflict, "bin %s: only %d recent codes, need %d (is the load cell reading?)", bin, len(codes), calibration.MinSamples)
	}
	for _, c := range codes {
		if c >= calibration.MaxCode || c <= calibration.MinCode {
			return nil, errorf(http.StatusConflict, "bin %s: %v", bin, fmt.Errorf("%w: %d", calibration.ErrSaturated, c))
		}
	}
	return codes, nil
}

// binNow decodes a binRequest and returns the bin, its calibration now
// and its recent codes: what tare and the empty step start from.
func (a *actions) binNow(body []byte) (Bin, CellCalibration, []int32, error) {
	var req binRequest
	if err := decode(body, &req); err != nil {
		return Bin{}, CellCalibration{}, nil, err
	}
	b, err := a.bin(req.Bin)
	if err != nil {
		return Bin{}, CellCalibration{}, nil, err
	}
	cur, err := a.current(b.ID)
	if err != nil {
		return Bin{}, CellCalibration{}, nil, err
	}
	codes, err := a.codes(b.ID)
	if err != nil {
		return Bin{}, CellCalibration{}, nil, err
	}
	return b, cur, codes, nil
}

// tare proposes the median of the bin's recent codes as its new offset.
func (a *actions) tare(_ *http.Request, body []byte) (any, error) {
	b, cur, codes, err := a.binNow(body)
	if err != nil {
		return nil, err
	}
	med, mad := calibration.MedianMAD(codes)
	if sigma := 1.4826 * mad / math.Abs(cur.CountsPerGram); sigma > TareMaxNoiseGram {
		return nil, errorf(http.StatusConflict, "bin %s is not steady (recent readings scatter by %.1f g, max %.1f g): wait until it settles", b.ID, sigma, TareMaxNoiseGram)
	}
	p := &proposal{Kind: "tare", Bin: b.ID, Key: cur.Key, Offset: int32(math.Round(med)), CPG: cur.CountsPerGram,
		OldOff: cur.Offset, OldCPG: cur.CountsPerGram, Samples: len(codes)}
	p.Grams = (med - float64(cur.Offset)) / cur.CountsPerGram
	p.After = (med - float64(p.Offset)) / p.CPG
	if b.UnitGrams > 0 && math.Abs(p.Grams) >= b.UnitGrams/2 {
		p.Warning = fmt.Sprintf("the bin reads %.1f g now: tare zeroes it, so only tare an empty bin", p.Grams)
	}
	return a.propose(p)
}

type loadedRequest struct {
	ID             string   `json:"id"`
	ReferenceGrams *float64 `json:"reference_grams"`
}

// calibrateEmpty records the codes of the empty bin: the first step of a
// two-point calibration.
func (a *actions) calibrateEmpty(_ *http.Request, body []byte) (any, error) {
	b, cur, codes, err := a.binNow(body)
	if err != nil {
		return nil, err
	}
	return a.propose(&proposal{Kind: "calibrate-empty", Bin: b.ID, Key: cur.Key, OldOff: cur.Offset, OldCPG: cur.CountsPerGram, Samples: len(codes), empty: codes})
}

// calibrateLoaded takes the codes with the reference weight on and
// proposes calibration.FromMeasurements of both steps.
func (a *actions) calibrateLoaded(_ *http.Request, body []byte) (any, error) {
	var req loadedRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	if req.ReferenceGrams == nil {
		return nil, errorf(http.StatusBadRequest, "reference_grams: missing")
	}
	ref := *req.ReferenceGrams
	if !(ref > 0) || ref > MaxReference {
		return nil, errorf(http.StatusBadRequest, "reference_grams: %v must be above 0 and at most %v grams", ref, MaxReference)
	}
	first, err := a.take(req.ID, "calibrate-empty")
	if err != nil {
		return nil, err
	}
	loaded, err := a.codes(first.Bin)
	if err != nil {
		return nil, err
	}
	cal, err := calibration.FromMeasurements(first.empty, loaded, ref)
	if err != nil {
		return nil, errorf(http.StatusConflict, "bin %s: %v", first.Bin, err)
	}
	cur, err := a.current(first.Bin)
	if err != nil {
		return nil, err
	}
	med, _ := calibration.MedianMAD(loaded)
	p := &proposal{Kind: "calibrate", Bin: first.Bin, Key: cur.Key, Offset: cal.Offset, CPG: cal.CountsPerGram,
		OldOff: cur.Offset, OldCPG: cur.CountsPerGram, Samples: len(first.empty) + len(loaded)}
	p.Grams = (med - float64(cur.Offset)) / cur.CountsPerGram
	p.After = (med - float64(p.Offset)) / p.CPG
	return a.propose(p)
}

type confirmRequest struct {
	ID string `json:"id"`
}

// confirm persists a tare or calibration proposal to the calibration file
// and then applies it to the load cell.
func (a *actions) confirm(_ *http.Request, body []byte) (any, error) {
	var req confirmRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	p, err := a.take(req.ID, "")
	if err != nil {
		return nil, err
	}
	if p.Kind == "calibrate-empty" {
		return nil, errorf(http.StatusConflict, "proposal %s waits for the loaded step (POST /api/calibrate/loaded)", p.ID)
	}
	if a.o.CalibrationFile == "" {
		return nil, errorf(http.StatusConflict, "no calibration file is configured: nothing would persist the %s of bin %s", p.Kind, p.Bin)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.o.Now().UTC()
	cal := calibration.Calibration{Bin: p.Key, Offset: p.Offset, CountsPerGram: p.CPG,
		Measured: time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)}
	if err := calibration.Save(a.o.CalibrationFile, cal); err != nil {
		return nil, fmt.Errorf("persist %s of bin %s: %w", p.Kind, p.Bin, err)
	}
	if err := a.o.Calibrator.SetCalibration(p.Bin, p.Offset, p.CPG); err != nil {
		return nil, fmt.Errorf("apply %s of bin %s (saved to %s): %w", p.Kind, p.Bin, a.o.CalibrationFile, err)
	}
	a.log.Info("status page: calibration applied", "kind", p.Kind, "bin", p.Bin, "offset", p.Offset, "counts_per_gram", p.CPG,
		"old_offset", p.OldOff, "old_counts_per_gram", p.OldCPG, "file", a.o.CalibrationFile)
	return map[string]any{"applied": p, "file": a.o.CalibrationFile}, nil
}

func (a *actions) current(bin string) (CellCalibration, error) {
	cur, err := a.o.Calibrator.Calibration(bin)
	if err != nil {
		return CellCalibration{}, errorf(http.StatusConflict, "bin %s: %v", bin, err)
	}
	return cur, nil
}

// propose keeps p under a fresh id until ProposalTTL.
func (a *actions) propose(p *proposal) (any, error) {
	var id [12]byte
	rand.Read(id[:])
	p.ID = hex.EncodeToString(id[:])
	p.expires = a.o.Now().Add(ProposalTTL)
	p.Expires = p.expires.UnixMilli()
	a.pmu.Lock()
	defer a.pmu.Unlock()
	now := a.o.Now()
	for id, q := range a.proposals {
		if now.After(q.expires) {
			delete(a.proposals, id)
		}
	}
	if len(a.proposals) >= maxProposals {
		return nil, errorf(http.StatusTooManyRequests, "%d proposals wait for confirmation; confirm or let them expire", maxProposals)
	}
	a.proposals[p.ID] = p
	return p, nil
}

// take removes and returns proposal id (of kind, unless kind is "").
func (a *actions) take(id, kind string) (*proposal, error) {
	a.pmu.Lock()
	defer a.pmu.Unlock()
	p, ok := a.proposals[id]
	if !ok || a.o.Now().After(p.expires) {
		delete(a.proposals, id)
		if len(id) > 40 {
			id = id[:40] + "..."
		}
		return nil, errorf(http.StatusNotFound, "id: no pending proposal %q (expired, already confirmed, or never made)", id)
	}
	if kind != "" && p.Kind != kind {
		return nil, errorf(http.StatusConflict, "id: proposal %s is a %s, not a %s", id, p.Kind, kind)
	}
	delete(a.proposals, id)
	return p, nil
}
