package scannersim

import (
	"errors"
	"fmt"
	"math/rand/v2"
)

// CheckDigit returns the GS1 mod-10 check digit of payload, the digits of a
// GTIN without its check digit (11 for UPC-A, 12 for EAN-13): weights 3 and 1
// alternate from the rightmost payload digit.
func CheckDigit(payload string) (byte, error) {
	if payload == "" {
		return 0, errors.New("scannersim: empty GTIN payload")
	}
	sum := 0
	for i := len(payload) - 1; i >= 0; i-- {
		c := payload[i]
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("scannersim: non-digit %q in GTIN payload %q", c, payload)
		}
		d := int(c - '0')
		if (len(payload)-1-i)%2 == 0 {
			d *= 3
		}
		sum += d
	}
	return byte('0' + (10-sum%10)%10), nil
}

// EAN13 returns the 13-digit EAN-13 code of a 12-digit payload.
func EAN13(payload string) (string, error) {
	return withCheck(payload, 12, "EAN-13")
}

// UPCA returns the 12-digit UPC-A code of an 11-digit payload.
func UPCA(payload string) (string, error) {
	return withCheck(payload, 11, "UPC-A")
}

func withCheck(payload string, n int, kind string) (string, error) {
	if len(payload) != n {
		return "", fmt.Errorf("scannersim: %s payload must have %d digits, got %q", kind, n, payload)
	}
	c, err := CheckDigit(payload)
	if err != nil {
		return "", err
	}
	return payload + string(c), nil
}

// ValidGTIN reports whether code is all digits, 8, 12, 13 or 14 long, with a
// correct check digit.
func ValidGTIN(code string) bool {
	switch len(code) {
	case 8, 12, 13, 14:
	default:
		return false
	}
	c, err := CheckDigit(code[:len(code)-1])
	return err == nil && c == code[len(code)-1]
}

// BreakCheckDigit returns code with a wrong check digit (the correct one
// plus 1 to 9, mod 10, chosen by r; plus 5 when r is nil).
func BreakCheckDigit(code string, r *rand.Rand) (string, error) {
	if len(code) < 2 {
		return "", fmt.Errorf("scannersim: code %q too short", code)
	}
	c, err := CheckDigit(code[:len(code)-1])
	if err != nil {
		return "", err
	}
	delta := 5
	if r != nil {
		delta = 1 + r.IntN(9)
	}
	wrong := '0' + (int(c-'0')+delta)%10
	return code[:len(code)-1] + string(rune(wrong)), nil
}

// RandomEAN13 returns a valid EAN-13 with a random payload drawn from r.
func RandomEAN13(r *rand.Rand) string {
	b := make([]byte, 12)
	for i := range b {
		b[i] = byte('0' + r.IntN(10))
	}
	s, _ := EAN13(string(b)) // cannot fail: 12 digits
	return s
}

// RandomUPCA returns a valid UPC-A with a random payload drawn from r.
func RandomUPCA(r *rand.Rand) string {
	b := make([]byte, 11)
	for i := range b {
		b[i] = byte('0' + r.IntN(10))
	}
	s, _ := UPCA(string(b)) // cannot fail: 11 digits
	return s
}
