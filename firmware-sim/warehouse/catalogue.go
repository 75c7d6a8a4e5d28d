package warehouse

import (
	"errors"
	"fmt"
	"math/rand/v2"
)

// EAN13CheckDigit returns the check digit for the first 12 digits of an
// EAN-13 code.
func EAN13CheckDigit(digits12 string) (byte, error) {
	if len(digits12) != 12 {
		return 0, fmt.Errorf("warehouse: ean-13: need 12 digits, got %d", len(digits12))
	}
	sum := 0
	for i := 0; i < 12; i++ {
		c := digits12[i]
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("warehouse: ean-13: %q is not a digit", c)
		}
		d := int(c - '0')
		if i%2 == 1 {
			d *= 3
		}
		sum += d
	}
	return byte('0' + (10-sum%10)%10), nil
}

// ValidEAN13 checks length, digits and check digit of an EAN-13 code.
func ValidEAN13(code string) error {
	if len(code) != 13 {
		return errors.New("must be 13 digits")
	}
	want, err := EAN13CheckDigit(code[:12])
	if err != nil {
		return errors.New("must be 13 digits")
	}
	if code[12] != want {
		return fmt.Errorf("has check digit %c, want %c", code[12], want)
	}
	return nil
}

// product templates for the default catalogue: typical unit weights of
// small parts and goods kept in shelf bins.
var products = [...]struct {
	name  string
	grams float64
}{
	{"AA battery 4-pack", 96},
	{"M8 hex nut bag 50", 240},
	{"cable tie pack 100", 62},
	{"USB-C cable 1 m", 38},
	{"SD card 64 GB retail", 12},
	{"LED bulb E27", 55},
	{"duct tape roll", 180},
	{"wood screws 4x40 box", 420},
	{"hand cream 75 ml", 95},
	{"shampoo 250 ml", 290},
	{"coffee beans 500 g", 520},
	{"olive oil 750 ml", 1180},
	{"canned tomatoes 400 g", 465},
	{"pasta 1 kg", 1025},
	{"rice 2 kg", 2030},
	{"chocolate bar 100 g", 108},
	{"energy drink 250 ml", 275},
	{"tea box 20 bags", 48},
	{"dish soap 500 ml", 560},
	{"work gloves pair", 85},
	{"spray paint 400 ml", 390},
	{"paracetamol 20 tabs", 22},
	{"notebook A5", 160},
	{"glue stick 40 g", 52},
}

// defaultCatalogue derives n SKUs from the seed: product templates with
// ±8% weight jitter and GS1-Germany-prefixed EAN-13 codes.
func defaultCatalogue(rng *rand.Rand, n int) []SKU {
	skus := make([]SKU, n)
	for i := range skus {
		p := products[rng.IntN(len(products))]
		var digits [12]byte
		digits[0], digits[1] = '4', '0'
		for j := 2; j < 12; j++ {
			digits[j] = byte('0' + rng.IntN(10))
		}
		check, _ := EAN13CheckDigit(string(digits[:])) // digits are valid by construction
		g := p.grams * (0.92 + 0.16*rng.Float64())
		skus[i] = SKU{
			Code:      string(digits[:]) + string(check),
			Name:      p.name,
			UnitGrams: float64(int(g*10+0.5)) / 10,
		}
	}
	return skus
}
