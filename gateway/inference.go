package gateway

// Inference is what a shelf-plate classifier concluded about one event:
// where the weight changed (plate and facing), what moved (the event's SKU,
// Kind and Quantity carry it too) and which classifier said so. Shadow,
// when set, is the other classifier's answer for the same change (shadow
// mode: the model beside the analytic baseline), recorded but not acted on.
type Inference struct {
	Plate        string     `json:"plate"`
	Facing       int        `json:"facing"` // facing index on the plate; -1: no item moved
	SKU          string     `json:"sku,omitempty"`
	Action       string     `json:"action"` // "pick" or "put"
	Quantity     int        `json:"qty"`
	Confidence   float64    `json:"confidence"`
	Classifier   string     `json:"classifier"`              // "analytic" or "model"
	ModelVersion uint64     `json:"model_version,omitempty"` // the model's version when Classifier is "model"
	Shadow       *Inference `json:"shadow,omitempty"`
}
