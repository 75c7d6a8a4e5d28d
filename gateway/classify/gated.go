package classify

// Gated lets one identifier say whether anything moved and another say
// what: when Gate answers "no item moved" (Facing −1) so does Gated,
// otherwise Namer's answer stands. With the model as the gate and the
// analytic baseline as the namer, the model's "none" class rejects what a
// forklift or a resting hand leaves behind, and the facing and quantity
// come from the catalogue match, which names vibrated changes better than
// the model (see docs/inference.md). The result's Classifier is
// "<gate>+<namer>" and its ModelVersion the gate's.
type Gated struct {
	Gate, Namer Identifier
}

var _ Identifier = Gated{}

// Identify implements Identifier.
func (g Gated) Identify(c *Change) Result {
	gr := g.Gate.Identify(c)
	if gr.Facing < 0 {
		return gr
	}
	r := g.Namer.Identify(c)
	r.Classifier = gatedName(gr.Classifier, r.Classifier)
	r.ModelVersion = gr.ModelVersion
	return r
}

// gatedName is "<gate>+<namer>" for the names the identifiers here use,
// without allocating per change.
func gatedName(gate, namer string) string {
	switch {
	case gate == "model" && namer == "analytic":
		return "model+analytic"
	}
	return gate + "+" + namer
}
