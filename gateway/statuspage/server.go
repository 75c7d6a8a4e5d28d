package statuspage

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shelfgate/shelfgate/gateway"
)

//go:embed assets
var assets embed.FS

// Options configure a Server. Tap is required; every component may be nil
// (its view then says so).
type Options struct {
	Tap        *Tap
	Bins       []Bin
	Pipeline   Pipeline
	Sensors    Sensors
	Model      Model
	Stock      Stock
	Analytic   bool       // an analytic detector classifies (shown when Model reports none)
	Calibrator Calibrator // nil: no calibration actions
	// CalibrationFile is where confirmed calibrations are persisted; empty
	// refuses calibration actions.
	CalibrationFile string
	// Token enables actions; empty means read-only.
	Token string

	Gateway, Site, Version string
	Logger                 *slog.Logger
	Now                    func() time.Time

	Tick          time.Duration // how often updates go out; default 250ms
	SnapshotEvery time.Duration // how often components are asked for Stats; default 1s
	ClientBuffer  int           // updates a client may have queued before it is dropped; default 16
	MaxClients    int           // SSE clients at once; default 64
	WriteTimeout  time.Duration // a write to a client taking longer ends it; default 10s
}

// Server serves the status page and runs its hub.
type Server struct {
	o    Options
	log  *slog.Logger
	mux  *http.ServeMux
	act  *actions
	snap atomic.Pointer[snapshot] // the latest component snapshot

	mu       sync.Mutex
	clients  map[*client]struct{}
	hist     []PipelineSample // ring of the last histLen samples
	histN    int
	dropped  atomic.Int64 // clients dropped for not keeping up
	refused  atomic.Int64 // clients refused at MaxClients
	sent     atomic.Int64 // updates handed to clients
	lastPipe *pipeCounters
}

// histLen is how many pipeline samples (one per SnapshotEvery) are kept for
// the plots: 5 minutes at the default.
const histLen = 300

type client struct {
	ch   chan []byte
	gone chan struct{} // closed when the hub drops the client
}

// PipelineSample is one point of the Pipeline view's plots.
type PipelineSample struct {
	T             int64    `json:"t"` // Unix ms
	Backlog       int64    `json:"backlog"`
	OldestS       float64  `json:"oldest_s"`
	ShedTelemetry int64    `json:"shed_telemetry"`
	ShedEvents    int64    `json:"shed_events"`
	Connected     bool     `json:"connected"`
	Brokers       []string `json:"brokers,omitempty"`
	Connects      int64    `json:"connects"`
	Reconnects    int64    `json:"reconnects"`
	InPerS        float64  `json:"in_per_s"`
	DeliveredPerS float64  `json:"delivered_per_s"`
	InFlight      int64    `json:"inflight"`
	Clients       int      `json:"clients"`
	Dropped       int64    `json:"dropped_clients"`
	Err           string   `json:"err,omitempty"`
}

type pipeCounters struct {
	t         time.Time
	in        int64
	delivered int64
}

// snapshot is what the components said at one SnapshotEvery.
type snapshot struct {
	Pipe    PipelineSample `json:"pipe"`
	Sensors []SensorHealth `json:"sensors"`
	Model   *ModelStatus   `json:"model"`
	Stock   map[string]int `json:"stock"`
}

// New returns a Server over o.
func New(o Options) (*Server, error) {
	if o.Tap == nil {
		return nil, errors.New("statuspage: no Tap")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Tick <= 0 {
		o.Tick = 250 * time.Millisecond
	}
	if o.SnapshotEvery <= 0 {
		o.SnapshotEvery = time.Second
	}
	if o.ClientBuffer <= 0 {
		o.ClientBuffer = 16
	}
	if o.MaxClients <= 0 {
		o.MaxClients = 64
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 10 * time.Second
	}
	s := &Server{o: o, log: o.Logger, clients: map[*client]struct{}{}, hist: make([]PipelineSample, histLen)}
	s.act = newActions(o)
	static, err := fs.Sub(assets, "assets")
	if err != nil {
		return nil, err
	}
	s.mux = http.NewServeMux()
	s.mux.Handle("GET /", noStore(http.FileServerFS(static)))
	s.mux.HandleFunc("GET /api/stream", s.handleStream)
	s.mux.HandleFunc("GET /api/state", s.handleState)
	s.act.register(s.mux)
	return s, nil
}

// noStore keeps browsers from caching the page across gateway upgrades.
func noStore(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'self'; script-src 'self'; img-src 'self' data:")
		w.Header().Set("Referrer-Policy", "no-referrer")
		h.ServeHTTP(w, r)
	})
}

// Handler serves the page (/), its assets and /api/.
func (s *Server) Handler() http.Handler { return s.mux }

// Stats are the hub's own counters.
type Stats struct {
	Clients int   // SSE clients connected
	Dropped int64 // clients dropped because they did not keep up
	Refused int64 // clients refused at MaxClients
	Sent    int64 // updates handed to clients
}

// Stats returns the hub's counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	n := len(s.clients)
	s.mu.Unlock()
	return Stats{Clients: n, Dropped: s.dropped.Load(), Refused: s.refused.Load(), Sent: s.sent.Load()}
}

// Run runs the hub until ctx is done: every Tick it sends what the Tap
// gained to every client, and every SnapshotEvery it asks the components
// for one snapshot, shared by all clients.
func (s *Server) Run(ctx context.Context) error {
	tick := time.NewTicker(s.o.Tick)
	defer tick.Stop()
	cursors := map[gateway.StreamID]int{}
	s.tap().streamsSince(cursors) // clients get history in their hello
	_, evSeq := s.tap().eventsSince(0)
	s.takeSnapshot(ctx)
	lastSnap := s.o.Now()
	for {
		select {
		case <-ctx.Done():
			s.mu.Lock()
			for c := range s.clients {
				s.dropLocked(c)
			}
			s.mu.Unlock()
			return nil
		case <-tick.C:
		}
		var snap *snapshot
		if now := s.o.Now(); now.Sub(lastSnap) >= s.o.SnapshotEvery-s.o.Tick/2 {
			snap = s.takeSnapshot(ctx)
			lastSnap = now
		}
		var evs []EventRecord
		evs, evSeq = s.tap().eventsSince(evSeq)
		streams := s.tap().streamsSince(cursors)
		if s.clientCount() == 0 {
			continue
		}
		msg, err := json.Marshal(update{T: s.o.Now().UnixMilli(), Streams: streams, Events: evs, Snapshot: snap})
		if err != nil {
			s.log.Error("status page update", "err", err)
			continue
		}
		s.broadcast(sse("update", msg))
	}
}

func (s *Server) tap() *Tap { return s.o.Tap }

// update is one message to every client.
type update struct {
	T        int64                             `json:"t"`
	Streams  map[gateway.StreamID]StreamUpdate `json:"streams"`
	Events   []EventRecord                     `json:"events,omitempty"`
	Snapshot *snapshot                         `json:"snap,omitempty"`
}

// hello is the first message to a client: everything the page shows.
type hello struct {
	update
	Gateway  string           `json:"gateway"`
	Site     string           `json:"site"`
	Version  string           `json:"version"`
	Bins     []Bin            `json:"bins"`
	Actions  bool             `json:"actions"` // a token is configured
	Analytic bool             `json:"analytic"`
	History  []PipelineSample `json:"history"`
}

func sse(event string, data []byte) []byte {
	b := make([]byte, 0, len(data)+len(event)+16)
	b = append(b, "event: "...)
	b = append(b, event...)
	b = append(b, "\ndata: "...)
	b = append(b, data...)
	return append(b, "\n\n"...)
}

func (s *Server) clientCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.clients)
}

// broadcast hands msg to every client without waiting: a client whose
// buffer is full is dropped.
func (s *Server) broadcast(msg []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.clients {
		select {
		case c.ch <- msg:
			s.sent.Add(1)
		default:
			s.dropLocked(c)
			s.dropped.Add(1)
		}
	}
}

func (s *Server) dropLocked(c *client) {
	if _, ok := s.clients[c]; ok {
		delete(s.clients, c)
		close(c.gone)
	}
}

// takeSnapshot asks every component once and keeps the result.
func (s *Server) takeSnapshot(ctx context.Context) *snapshot {
	now := s.o.Now()
	sn := &snapshot{Stock: map[string]int{}}
	p := PipelineSample{T: now.UnixMilli()}
	in := s.tap().Readings()
	var delivered int64
	if s.o.Pipeline != nil {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		st, err := s.o.Pipeline.PipelineStats(cctx)
		cancel()
		if err != nil {
			p.Err = err.Error()
		}
		p.Backlog, p.OldestS = st.Backlog, st.OldestUnsent.Seconds()
		p.ShedTelemetry, p.ShedEvents = st.ShedTelemetry, st.ShedEvents
		p.Connected, p.Brokers, p.Connects, p.InFlight = st.Connected, st.Brokers, st.Connects, st.InFlight
		p.Reconnects = max(st.Connects-1, 0)
		delivered = st.Delivered
	}
	st := s.Stats()
	p.Clients, p.Dropped = st.Clients, st.Dropped
	if last := s.lastPipe; last != nil {
		if dt := now.Sub(last.t).Seconds(); dt > 0 {
			p.InPerS = float64(in-last.in) / dt
			p.DeliveredPerS = float64(max(delivered-last.delivered, 0)) / dt
		}
	}
	s.lastPipe = &pipeCounters{t: now, in: in, delivered: delivered}
	sn.Pipe = p
	if s.o.Sensors != nil {
		sn.Sensors = s.o.Sensors.SensorHealth()
	}
	if s.o.Model != nil {
		if m, ok := s.o.Model.ModelStatus(); ok {
			sn.Model = &m
		}
	}
	if s.o.Stock != nil {
		for _, b := range s.o.Bins {
			if n, ok := s.o.Stock.Stock(b.ID); ok {
				sn.Stock[b.ID] = n
			}
		}
	}
	s.mu.Lock()
	s.hist[s.histN%histLen] = p
	s.histN++
	s.mu.Unlock()
	s.snap.Store(sn)
	return sn
}

// history returns the pipeline samples kept, oldest first.
func (s *Server) history() []PipelineSample {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := min(s.histN, histLen)
	out := make([]PipelineSample, 0, n)
	for i := s.histN - n; i < s.histN; i++ {
		out = append(out, s.hist[i%histLen])
	}
	return out
}

// helloMessage is everything the page shows, as of now.
func (s *Server) helloMessage() ([]byte, error) {
	evs, _ := s.tap().eventsSince(0)
	h := hello{
		update:  update{T: s.o.Now().UnixMilli(), Streams: s.tap().streamsSince(nil), Events: evs, Snapshot: s.snap.Load()},
		Gateway: s.o.Gateway, Site: s.o.Site, Version: s.o.Version, Bins: slices.Clone(s.o.Bins),
		Actions: s.act.enabled(), Analytic: s.o.Analytic, History: s.history(),
	}
	if h.Bins == nil {
		h.Bins = []Bin{}
	}
	return json.Marshal(h)
}

// handleState serves the hello message as plain JSON (for scripts and
// tests; the page uses the stream).
func (s *Server) handleState(w http.ResponseWriter, r *http.Request) {
	b, err := s.helloMessage()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(b)
}

// handleStream serves Server-Sent Events: a hello with the whole state,
// then the hub's updates. A client that cannot keep up is dropped by the
// hub; a write that takes longer than WriteTimeout ends the stream.
func (s *Server) handleStream(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	c := &client{ch: make(chan []byte, s.o.ClientBuffer), gone: make(chan struct{})}
	s.mu.Lock()
	if len(s.clients) >= s.o.MaxClients {
		s.mu.Unlock()
		s.refused.Add(1)
		http.Error(w, fmt.Sprintf("too many status page clients (%d)", s.o.MaxClients), http.StatusServiceUnavailable)
		return
	}
	s.clients[c] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.dropLocked(c)
		s.mu.Unlock()
	}()
	b, err := s.helloMessage()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	write := func(msg []byte) bool {
		rc.SetWriteDeadline(time.Now().Add(s.o.WriteTimeout))
		if _, err := w.Write(msg); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !write(sse("hello", b)) {
		return
	}
	for {
		select {
		case <-r.Context().Done():
			return
		case <-c.gone:
			return
		case msg := <-c.ch:
			if !write(msg) {
				return
			}
		}
	}
}
