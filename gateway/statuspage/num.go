package statuspage

import (
	"math"
	"strconv"
)

func appendInt(b []byte, v int64) []byte { return strconv.AppendInt(b, v, 10) }

// appendNum appends v rounded to 0.01 (0 for NaN and infinities).
func appendNum(b []byte, v float64) []byte {
	v = finite(v)
	return strconv.AppendFloat(b, math.Round(v*100)/100, 'f', -1, 64)
}
