package classify

import (
	"sync"
	"time"
)

// WindowRecorder is an Identifier that passes each change to the one it
// wraps and keeps a copy of the change's model input (Features, the
// PlateWindow(ModelRate) window) per plate, so a labelled sample can carry
// the window its event was decided on (the feedback loop). It keeps the
// last Keep windows of each plate.
type WindowRecorder struct {
	id   Identifier
	keep int
	size int

	mu     sync.Mutex
	plates map[string][]recorded
}

type recorded struct {
	at time.Time
	x  []float32
}

var _ Identifier = (*WindowRecorder)(nil)

// NewWindowRecorder wraps id, keeping the last keep windows of each plate.
func NewWindowRecorder(id Identifier, keep int) *WindowRecorder {
	return &WindowRecorder{id: id, keep: max(keep, 1), size: PlateWindow(ModelRate).Len(), plates: map[string][]recorded{}}
}

// Identify implements Identifier.
func (w *WindowRecorder) Identify(c *Change) Result {
	res := w.id.Identify(c)
	x := make([]float32, w.size)
	if err := Features(x, c); err != nil {
		return res
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	rs := w.plates[c.Plate.ID]
	if len(rs) == w.keep {
		rs = append(rs[:0], rs[1:]...)
	}
	w.plates[c.Plate.ID] = append(rs, recorded{at: c.Time, x: x})
	return res
}

// Window returns the window of plate's change at time at (the event's
// Time) and the rate of its samples, or false when it is no longer kept.
func (w *WindowRecorder) Window(plate string, at time.Time) ([]float32, float64, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, r := range w.plates[plate] {
		if r.at.Equal(at) {
			return r.x, ModelRate, true
		}
	}
	return nil, 0, false
}
