package classify

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/shelfgate/shelfgate/model"
)

// Model classes. A plate model does not know a site's SKUs or how many
// facings a plate has: it names where on the plate the load changed, as one
// of PositionBins equal bins of x/width ("x00" … "x15"), or NoneLabel when
// no item moved. The identifier maps the bin to the nearest facing; action
// and quantity follow from the settled Δ and that facing's unit weight.
const (
	PositionBins = 16
	NoneLabel    = "none"
)

// BinLabel is the label of position bin b.
func BinLabel(b int) string { return fmt.Sprintf("x%02d", b) }

// BinOf is the position bin of x on a plate of width w.
func BinOf(x, w float64) int { return min(PositionBins-1, max(0, int(x/w*PositionBins))) }

// ModelRate is the feature rate of plate models: 10 samples/s; 80 Hz plates
// feed their ring with means of 8 samples (Config.RingRate).
const ModelRate = 10

// Loaded is a plate model ready to serve: checked against the plate window.
type Loaded struct {
	M       *model.Model
	Version uint64
	binOf   []int // class → position bin, −1 for none
}

// NewLoaded checks that m is a plate model: the feature names of
// PlateWindow(ModelRate) and labels that are position bins or none.
func NewLoaded(m *model.Model) (*Loaded, error) {
	if err := PlateWindow(ModelRate).CheckNames(m.Input.Names); err != nil {
		return nil, fmt.Errorf("classify: model %q: %w", m.Name, err)
	}
	if len(m.Output.Labels) != m.Classes() {
		return nil, fmt.Errorf("classify: model %q: %d labels for %d classes", m.Name, len(m.Output.Labels), m.Classes())
	}
	bins, err := ParseLabels(m.Output.Labels)
	if err != nil {
		return nil, fmt.Errorf("classify: model %q: %w", m.Name, err)
	}
	return &Loaded{M: m, Version: m.Version, binOf: bins}, nil
}

// ParseLabels maps a plate model's class labels to position bins (−1 for
// NoneLabel).
func ParseLabels(labels []string) ([]int, error) {
	var out []int
	for _, lab := range labels {
		if lab == NoneLabel {
			out = append(out, -1)
			continue
		}
		b, err := strconv.Atoi(strings.TrimPrefix(lab, "x"))
		if !strings.HasPrefix(lab, "x") || err != nil || b < 0 || b >= PositionBins {
			return nil, fmt.Errorf("label %q is neither a position bin (x00-x%02d) nor %q", lab, PositionBins-1, NoneLabel)
		}
		out = append(out, b)
	}
	return out, nil
}

// FacingAt is the facing of p nearest the centre of position bin b.
func FacingAt(p *Plate, b int) int {
	x := (float64(b) + 0.5) / PositionBins * p.WidthMM
	fi, bd := 0, math.Inf(1)
	for i, f := range p.Facings {
		if d := math.Abs(f.XMM - x); d < bd {
			fi, bd = i, d
		}
	}
	return fi
}

// Holder holds the serving model. Swap replaces it while readings flow:
// each plate picks the new model up at its next change.
type Holder struct{ p atomic.Pointer[Loaded] }

// NewHolder returns a holder serving l.
func NewHolder(l *Loaded) *Holder {
	h := &Holder{}
	h.p.Store(l)
	return h
}

// Swap makes l the serving model.
func (h *Holder) Swap(l *Loaded) { h.p.Store(l) }

// Load returns the serving model.
func (h *Holder) Load() *Loaded { return h.p.Load() }

// Version is the serving model's version.
func (h *Holder) Version() uint64 { return h.p.Load().Version }

// modelPlate is one plate's session of the model it last used.
type modelPlate struct {
	l    *Loaded
	sess *model.Session
	x    []float32
}

// ModelID is the int8 model behind the Identifier interface. Each plate
// has its own session (scratch memory), created when the plate first sees
// a model; inference allocates nothing afterwards.
type ModelID struct {
	h      *Holder
	plates []modelPlate
}

var _ Identifier = (*ModelID)(nil)

// NewModelID returns the model identifier for plates plates of a detector.
func NewModelID(h *Holder, plates int) *ModelID {
	return &ModelID{h: h, plates: make([]modelPlate, plates)}
}

// Features cuts the model's input for c into dst (PlateWindow(ModelRate)
// features, each cell's grams relative to the window's first sample,
// divided by |Δ| and clipped to ±FeatureClip): the function training
// windows are cut with too. Clipping keeps a hand's press, many times a
// light item's weight, from stretching the int8 input range.
func Features(dst []float32, c *Change) error {
	if err := c.Ring.Extract(dst, c.Anchor, max(math.Abs(c.Delta), 1e-3)); err != nil {
		return err
	}
	for i, v := range dst {
		dst[i] = min(FeatureClip, max(-FeatureClip, v))
	}
	return nil
}

// FeatureClip bounds each feature (in units of the change |Δ|).
const FeatureClip = 3

// Identify implements Identifier.
func (m *ModelID) Identify(c *Change) Result {
	l := m.h.Load()
	mp := &m.plates[c.Index]
	if mp.l != l {
		s, err := l.M.NewSessionWith()
		if err != nil {
			return Result{Facing: -1, Classifier: "model", ModelVersion: l.Version}
		}
		mp.l, mp.sess, mp.x = l, s, make([]float32, l.M.Features())
	}
	if err := Features(mp.x, c); err != nil {
		return Result{Facing: -1, Classifier: "model", ModelVersion: l.Version}
	}
	out, err := mp.sess.Infer(mp.x)
	if err != nil {
		return Result{Facing: -1, Classifier: "model", ModelVersion: l.Version}
	}
	conf := (float64(out.Last()[out.Class]) + 128) / 256
	b := l.binOf[out.Class]
	if b < 0 {
		return Result{Facing: -1, Confidence: conf, Classifier: "model", ModelVersion: l.Version}
	}
	p := c.Plate
	fi := FacingAt(p, b)
	q, whole := quantity(c.Delta, p.Facings[fi].UnitGrams)
	if !whole {
		conf *= 0.5
	}
	return Result{Facing: fi, Quantity: max(q, 1), Confidence: conf, Classifier: "model", ModelVersion: l.Version}
}

// LoadFile loads and checks a plate model file: signature (when trusted
// keys are given: then mandatory), digest, golden vectors, plate window.
func LoadFile(ctx context.Context, path string, trusted []ed25519.PublicKey) (*Loaded, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("classify: model: %w", err)
	}
	defer f.Close()
	m, err := model.LoadContext(ctx, f, model.DecodeOptions{TrustedKeys: trusted})
	if err != nil {
		return nil, fmt.Errorf("classify: model %s: %w", path, err)
	}
	return NewLoaded(m)
}
