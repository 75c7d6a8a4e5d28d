package statuspage

import (
	"encoding/json"
	"math"
	"strconv"
)

func appendInt(b []byte, v int64) []byte { return strconv.AppendInt(b, v, 10) }

// appendNum appends v rounded to 0.01 (0 for NaN and infinities).
func appendNum(b []byte, v float64) []byte {
	v = finite(v)
	return strconv.AppendFloat(b, math.Round(v*100)/100, 'f', -1, 64)
}

// UnmarshalJSON decodes [t, mean, min, max].
func (p *Point) UnmarshalJSON(b []byte) error {
	var a [4]float64
	if err := json.Unmarshal(b, &a); err != nil {
		return err
	}
	*p = Point{T: int64(a[0]), Mean: a[1], Min: a[2], Max: a[3]}
	return nil
}
