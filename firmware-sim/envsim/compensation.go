package envsim

import "math"

// calibration holds the trimming parameters of the NVM, datasheet table 16.
type calibration struct {
	t1                             uint16
	t2, t3                         int16
	p1                             uint16
	p2, p3, p4, p5, p6, p7, p8, p9 int16
	h1                             uint8
	h2                             int16
	h3                             uint8
	h4, h5                         int16
	h6                             int8
}

// parseCalibration decodes the NVM images at 0x88..0xA1 and 0xE1..0xE7.
func parseCalibration(tp [26]byte, h [7]byte) calibration {
	u16 := func(b []byte) uint16 { return uint16(b[0]) | uint16(b[1])<<8 }
	s16 := func(b []byte) int16 { return int16(u16(b)) }
	return calibration{
		t1: u16(tp[0:]), t2: s16(tp[2:]), t3: s16(tp[4:]),
		p1: u16(tp[6:]), p2: s16(tp[8:]), p3: s16(tp[10:]), p4: s16(tp[12:]),
		p5: s16(tp[14:]), p6: s16(tp[16:]), p7: s16(tp[18:]), p8: s16(tp[20:]),
		p9: s16(tp[22:]),
		h1: tp[25],
		h2: s16(h[0:]),
		h3: h[2],
		h4: int16(int8(h[3]))<<4 | int16(h[4]&0x0F),
		h5: int16(int8(h[5]))<<4 | int16(h[4]>>4),
		h6: int8(h[6]),
	}
}

// The three functions below are the fixed-point reference compensation of
// the BME280 datasheet, section 4.2.3 and 8.2 (BME280_compensate_T_int32,
// BME280_compensate_P_int64, bme280_compensate_H_int32). envsim searches
// raw ADC values whose compensation yields the scenario's values.

// tempFine returns t_fine and the temperature in 0.01 °C.
func (c *calibration) tempFine(adcT int32) (tFine, centiC int32) {
	v1 := ((adcT>>3 - int32(c.t1)<<1) * int32(c.t2)) >> 11
	d := adcT>>4 - int32(c.t1)
	v2 := (((d * d) >> 12) * int32(c.t3)) >> 14
	tFine = v1 + v2
	return tFine, (tFine*5 + 128) >> 8
}

// pressure returns the pressure in Pa as Q24.8.
func (c *calibration) pressure(adcP, tFine int32) uint32 {
	v1 := int64(tFine) - 128000
	v2 := v1 * v1 * int64(c.p6)
	v2 += (v1 * int64(c.p5)) << 17
	v2 += int64(c.p4) << 35
	v1 = (v1*v1*int64(c.p3))>>8 + (v1*int64(c.p2))<<12
	v1 = ((int64(1)<<47 + v1) * int64(c.p1)) >> 33
	if v1 == 0 {
		return 0
	}
	p := int64(1048576 - adcP)
	p = ((p<<31 - v2) * 3125) / v1
	v1 = (int64(c.p9) * (p >> 13) * (p >> 13)) >> 25
	v2 = (int64(c.p8) * p) >> 19
	return uint32((p+v1+v2)>>8 + int64(c.p7)<<4)
}

// humidity returns the relative humidity in %RH as Q22.10.
func (c *calibration) humidity(adcH, tFine int32) uint32 {
	v := tFine - 76800
	v = ((adcH<<14 - int32(c.h4)<<20 - int32(c.h5)*v + 16384) >> 15) *
		(((((((v*int32(c.h6))>>10)*(((v*int32(c.h3))>>11)+32768))>>10)+2097152)*int32(c.h2) + 8192) >> 14)
	v -= ((((v >> 15) * (v >> 15)) >> 7) * int32(c.h1)) >> 4
	v = min(max(v, 0), 419430400)
	return uint32(v >> 12)
}

const (
	maxADC20 = 1<<20 - 1
	maxADC16 = 1<<16 - 1
)

// search returns the x in [lo, hi] minimising |f(x) - target|. f must be
// monotonic near the answer but may fold over far from it (the pressure
// compensation does at the ends of the 20-bit range): a coarse scan finds
// the neighbourhood, a bisection the value.
func search(lo, hi int32, target float64, f func(int32) float64) int32 {
	const step = 1024
	dist := func(x int32) float64 { return math.Abs(f(x) - target) }
	best := lo
	for x := lo; x <= hi; x += step {
		if dist(x) < dist(best) {
			best = x
		}
	}
	a, b := max(best-step, lo), min(best+step, hi)
	inc := f(b) >= f(a)
	for a < b {
		m := a + (b-a)/2
		if (f(m) < target) == inc {
			a = m + 1
		} else {
			b = m
		}
	}
	best = a
	for _, x := range []int32{a - 1, a + 1} {
		if x >= lo && x <= hi && dist(x) < dist(best) {
			best = x
		}
	}
	return best
}

// rawFor returns the ADC values that compensate to e, clamped to the
// sensor's ranges (-40..85 °C, 300..1100 hPa, 0..100 %RH).
func (c *calibration) rawFor(e Env) (adcT, adcP, adcH int32) {
	tc := min(max(e.TempC, -40), 85)
	adcT = search(0, maxADC20, tc*100, func(x int32) float64 {
		_, t := c.tempFine(x)
		return float64(t)
	})
	tFine, _ := c.tempFine(adcT)
	pa := min(max(e.PressurePa, 30000), 110000)
	adcP = search(0, maxADC20, pa*256, func(x int32) float64 {
		return float64(c.pressure(x, tFine))
	})
	rh := min(max(e.HumidityRH, 0), 100)
	adcH = search(0, maxADC16, rh*1024, func(x int32) float64 {
		return float64(c.humidity(x, tFine))
	})
	return adcT, adcP, adcH
}
