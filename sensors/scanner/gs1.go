package scanner

import "fmt"

// Symbology is what an accepted code looks like. Scanners in USB-CDC or
// keyboard mode send only the decoded text, so this is inferred from the text.
type Symbology uint8

// Symbologies.
const (
	SymText   Symbology = iota // printable ASCII that is neither a GS1 key nor an element string (Code 128, Code 39, QR text)
	SymEAN8                    // 8 digits, GS1 mod-10 check digit
	SymUPCA                    // 12 digits (GTIN-12)
	SymEAN13                   // 13 digits (GTIN-13, also a GLN)
	SymGTIN14                  // 14 digits (ITF-14 on cartons)
	SymSSCC                    // 18 digits: serial shipping container code (pallets, totes)
	SymGS1                     // GS1 element string in human-readable form, e.g. "(01)09501101530003(10)AB12"
)

var symNames = [...]string{"text", "ean8", "upca", "ean13", "gtin14", "sscc", "gs1"}

// String implements fmt.Stringer.
func (s Symbology) String() string {
	if int(s) < len(symNames) {
		return symNames[s]
	}
	return fmt.Sprintf("symbology(%d)", uint8(s))
}

// Validate checks one line without its suffix: it must be 1 or more bytes of
// printable ASCII; a line of digits only must be a GS1 key (8, 12, 13, 14 or
// 18 digits) with a correct check digit; a line starting with '(' must be a
// well-formed GS1 element string. Anything else printable is SymText.
// Validate does not check the length limit: the Framer does, before a line
// is ever buffered.
func Validate(line []byte) (Symbology, Reason) {
	if len(line) == 0 {
		return 0, ReasonEmpty
	}
	digits := true
	for _, c := range line {
		if c < 0x20 || c > 0x7E {
			return 0, ReasonNonPrintable
		}
		if c < '0' || c > '9' {
			digits = false
		}
	}
	if digits {
		var sym Symbology
		switch len(line) {
		case 8:
			sym = SymEAN8
		case 12:
			sym = SymUPCA
		case 13:
			sym = SymEAN13
		case 14:
			sym = SymGTIN14
		case 18:
			sym = SymSSCC
		default:
			return 0, ReasonNumericLength
		}
		if !CheckDigitOK(line) {
			return 0, ReasonCheckDigit
		}
		return sym, ReasonOK
	}
	if line[0] == '(' {
		if r := validateGS1(line); r != ReasonOK {
			return 0, r
		}
		return SymGS1, ReasonOK
	}
	return SymText, ReasonOK
}

// CheckDigitOK reports whether the last digit of key, a string of ASCII
// digits, is the GS1 mod-10 check digit of the others: from the rightmost
// data digit, weights 3 and 1 alternate; the check digit brings the sum to a
// multiple of 10 (GS1 General Specifications 7.9.1). EAN-8, UPC-A, EAN-13,
// GTIN-14, GLN and SSCC all use it. Non-digits or fewer than 2 digits give false.
func CheckDigitOK(key []byte) bool {
	if len(key) < 2 {
		return false
	}
	sum := 0
	w := 3
	for i := len(key) - 2; i >= 0; i-- {
		c := key[i]
		if c < '0' || c > '9' {
			return false
		}
		sum += int(c-'0') * w
		w = 4 - w
	}
	last := key[len(key)-1]
	if last < '0' || last > '9' {
		return false
	}
	return (10-sum%10)%10 == int(last-'0')
}

// ai describes a GS1 Application Identifier's data field.
type ai struct {
	n       int  // fixed length, or the maximum when variable
	fixed   bool // exactly n characters
	numeric bool // digits only
	check   bool // the last digit is a mod-10 check digit
	date    bool // YYMMDD
}

// lookupAI returns the format of the AI at the start of s and its length,
// for the AIs a warehouse meets on cartons and pallets (GS1 General
// Specifications, section 3). ok is false for any other AI.
func lookupAI(s []byte) (f ai, n int, ok bool) {
	if len(s) >= 2 {
		switch string(s[:2]) {
		case "00":
			return ai{n: 18, fixed: true, numeric: true, check: true}, 2, true
		case "01", "02":
			return ai{n: 14, fixed: true, numeric: true, check: true}, 2, true
		case "10", "21", "22":
			return ai{n: 20}, 2, true
		case "11", "12", "13", "15", "16", "17":
			return ai{n: 6, fixed: true, numeric: true, date: true}, 2, true
		case "20":
			return ai{n: 2, fixed: true, numeric: true}, 2, true
		case "30", "37":
			return ai{n: 8, numeric: true}, 2, true
		}
	}
	if len(s) >= 3 {
		switch string(s[:3]) {
		case "400", "401", "403":
			return ai{n: 30}, 3, true
		case "410", "411", "412", "413", "414", "415", "416":
			return ai{n: 13, fixed: true, numeric: true, check: true}, 3, true
		case "420":
			return ai{n: 20}, 3, true
		}
	}
	if len(s) >= 4 && s[0] == '3' && s[1] >= '1' && s[1] <= '6' && isDigit(s[2]) && isDigit(s[3]) {
		// 310n..369n: trade measures (net weight, length, volume) with n decimals.
		return ai{n: 6, fixed: true, numeric: true}, 4, true
	}
	return ai{}, 0, false
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// validateGS1 checks an element string in human-readable form: one or more
// "(AI)value" pairs, each AI known and each value of its length and charset.
func validateGS1(s []byte) Reason {
	for len(s) > 0 {
		if s[0] != '(' {
			return ReasonGS1
		}
		end := -1
		for i := 1; i < len(s) && i <= 5; i++ {
			if s[i] == ')' {
				end = i
				break
			}
		}
		if end < 3 { // AIs have 2 to 4 digits
			return ReasonGS1
		}
		code := s[1:end]
		for _, c := range code {
			if !isDigit(c) {
				return ReasonGS1
			}
		}
		f, n, ok := lookupAI(code)
		if !ok || n != len(code) {
			return ReasonGS1
		}
		s = s[end+1:]
		v := 0
		for v < len(s) && s[v] != '(' {
			v++
		}
		val := s[:v]
		s = s[v:]
		if len(val) == 0 || len(val) > f.n || (f.fixed && len(val) != f.n) {
			return ReasonGS1
		}
		if f.numeric {
			for _, c := range val {
				if !isDigit(c) {
					return ReasonGS1
				}
			}
		}
		if f.check && !CheckDigitOK(val) {
			return ReasonCheckDigit
		}
		if f.date {
			mm := int(val[2]-'0')*10 + int(val[3]-'0')
			dd := int(val[4]-'0')*10 + int(val[5]-'0')
			if mm < 1 || mm > 12 || dd > 31 { // day 00 means "end of month"
				return ReasonGS1
			}
		}
	}
	return ReasonOK
}
