package evaluate

import (
	"fmt"
	"math"

	"github.com/shelfgate/shelfgate/gateway/classify"
	"github.com/shelfgate/shelfgate/model/train"
)

// ModeFloat runs the float model the int8 one was quantized from, to
// measure what quantization costs on the same scenario. It exists only
// here: the gateway serves int8.
const ModeFloat classify.Mode = "float"

// FloatID is the float MLP (model/train) behind classify.Identifier, with
// the same features and position-to-facing mapping as classify.ModelID.
// Not safe for concurrent use (evaluation is sequential).
type FloatID struct {
	m    *train.MLP
	bins []int
	x    []float32
	p    []float32
}

// NewFloatID checks m's feature names and labels.
func NewFloatID(m *train.MLP) (*FloatID, error) {
	if err := classify.PlateWindow(classify.ModelRate).CheckNames(m.Names); err != nil {
		return nil, fmt.Errorf("evaluate: float model: %w", err)
	}
	bins, err := classify.ParseLabels(m.Labels)
	if err != nil {
		return nil, fmt.Errorf("evaluate: float model: %w", err)
	}
	return &FloatID{m: m, bins: bins, x: make([]float32, len(m.Names)), p: make([]float32, m.Classes())}, nil
}

// Identify implements classify.Identifier.
func (f *FloatID) Identify(c *classify.Change) classify.Result {
	if err := classify.Features(f.x, c); err != nil {
		return classify.Result{Facing: -1, Classifier: "float"}
	}
	_, acts := f.m.Forward(f.x)
	train.Softmax(f.p, acts[len(acts)-1])
	k := train.Argmax(f.p)
	conf := float64(f.p[k])
	b := f.bins[k]
	if b < 0 {
		return classify.Result{Facing: -1, Confidence: conf, Classifier: "float"}
	}
	fi := classify.FacingAt(c.Plate, b)
	u := math.Abs(c.Delta) / c.Plate.Facings[fi].UnitGrams
	q := math.Round(u)
	if q < 1 || math.Abs(u-q) > 0.2 {
		conf *= 0.5
	}
	return classify.Result{Facing: fi, Quantity: max(int(q), 1), Confidence: conf, Classifier: "float"}
}
