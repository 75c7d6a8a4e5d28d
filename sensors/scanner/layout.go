package scanner

import "fmt"

// Layout is the keyboard layout a keyboard-wedge scanner types in: the
// scanner presses the keys that produce each character on that layout, so
// the decoder must read the key codes with the same layout. Scanners are
// set to the host's layout at the factory or by a programming barcode.
type Layout uint8

// The layouts the decoder knows.
const (
	LayoutUS Layout = iota // US QWERTY (the default)
	LayoutDE               // German QWERTZ
	LayoutFR               // French AZERTY
)

// ParseLayout parses a layout name as written in the configuration: us, de
// or fr.
func ParseLayout(s string) (Layout, error) {
	switch s {
	case "us", "":
		return LayoutUS, nil
	case "de":
		return LayoutDE, nil
	case "fr":
		return LayoutFR, nil
	}
	return 0, fmt.Errorf("scanner: keyboard layout %q (want us, de or fr)", s)
}

func (l Layout) String() string {
	switch l {
	case LayoutUS:
		return "us"
	case LayoutDE:
		return "de"
	case LayoutFR:
		return "fr"
	}
	return fmt.Sprintf("Layout(%d)", uint8(l))
}

// keyRightAlt is AltGr, the third level of the European layouts.
const keyRightAlt = 100

// keyTable maps evdev key codes to the characters of a layout: [0]
// unshifted, [1] with Shift, [2] with AltGr. 0 is no character (a dead
// key, or a character outside ASCII such as ß, é or §, which no barcode
// carries): the decoder writes Unmapped for it.
type keyTable [100][3]byte

// keypad is the same on every layout here (Num Lock on).
var keypad = map[int][3]byte{
	55: {'*', '*'}, 71: {'7', '7'}, 72: {'8', '8'}, 73: {'9', '9'}, 74: {'-', '-'},
	75: {'4', '4'}, 76: {'5', '5'}, 77: {'6', '6'}, 78: {'+', '+'},
	79: {'1', '1'}, 80: {'2', '2'}, 81: {'3', '3'}, 82: {'0', '0'}, 83: {'.', '.'},
	98: {'/', '/'}, 57: {' ', ' ', ' '},
}

func buildTable(keys map[int][3]byte) *keyTable {
	var t keyTable
	for code, k := range keypad {
		t[code] = k
	}
	for code, k := range keys {
		t[code] = k
	}
	return &t
}

// letters returns the table entries of the letter keys, given the letter
// each key code types.
func letters(codes map[int]byte) map[int][3]byte {
	m := map[int][3]byte{}
	for code, c := range codes {
		m[code] = [3]byte{c, c - 'a' + 'A'}
	}
	return m
}

func merge(ms ...map[int][3]byte) map[int][3]byte {
	out := map[int][3]byte{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

// qwerty are the letter keys of US and (but for Y and Z) German keyboards.
var qwerty = map[int]byte{
	16: 'q', 17: 'w', 18: 'e', 19: 'r', 20: 't', 21: 'y', 22: 'u', 23: 'i', 24: 'o', 25: 'p',
	30: 'a', 31: 's', 32: 'd', 33: 'f', 34: 'g', 35: 'h', 36: 'j', 37: 'k', 38: 'l',
	44: 'z', 45: 'x', 46: 'c', 47: 'v', 48: 'b', 49: 'n', 50: 'm',
}

func with(m map[int]byte, changes map[int]byte) map[int]byte {
	out := map[int]byte{}
	for k, v := range m {
		out[k] = v
	}
	for k, v := range changes {
		if v == 0 {
			delete(out, k)
		} else {
			out[k] = v
		}
	}
	return out
}

var layoutTables = [...]*keyTable{
	LayoutUS: buildTable(merge(letters(qwerty), map[int][3]byte{
		2: {'1', '!'}, 3: {'2', '@'}, 4: {'3', '#'}, 5: {'4', '$'}, 6: {'5', '%'},
		7: {'6', '^'}, 8: {'7', '&'}, 9: {'8', '*'}, 10: {'9', '('}, 11: {'0', ')'},
		12: {'-', '_'}, 13: {'=', '+'}, 26: {'[', '{'}, 27: {']', '}'},
		39: {';', ':'}, 40: {'\'', '"'}, 41: {'`', '~'}, 43: {'\\', '|'},
		51: {',', '<'}, 52: {'.', '>'}, 53: {'/', '?'},
	})),
	// German QWERTZ (xkb de): Y and Z swapped, umlauts and ß (not ASCII)
	// where US has punctuation, @ { [ ] } \ ~ | on AltGr.
	LayoutDE: buildTable(merge(letters(with(qwerty, map[int]byte{21: 'z', 44: 'y'})), map[int][3]byte{
		2: {'1', '!'}, 3: {'2', '"'}, 4: {'3', 0}, 5: {'4', '$'}, 6: {'5', '%'},
		7: {'6', '&'}, 8: {'7', '/', '{'}, 9: {'8', '(', '['}, 10: {'9', ')', ']'}, 11: {'0', '=', '}'},
		12: {0, '?', '\\'}, 16: {'q', 'Q', '@'}, 27: {'+', '*', '~'}, 43: {'#', '\''},
		51: {',', ';'}, 52: {'.', ':'}, 53: {'-', '_'}, 86: {'<', '>', '|'},
	})),
	// French AZERTY (xkb fr): digits with Shift, A/Q and Z/W swapped, M
	// where US has ';', punctuation moved; # { [ | \ @ ] } on AltGr.
	LayoutFR: buildTable(merge(letters(with(qwerty, map[int]byte{16: 'a', 30: 'q', 17: 'z', 44: 'w', 39: 'm', 50: 0})), map[int][3]byte{
		2: {'&', '1'}, 3: {0, '2'}, 4: {'"', '3', '#'}, 5: {'\'', '4', '{'}, 6: {'(', '5', '['},
		7: {'-', '6', '|'}, 8: {0, '7'}, 9: {'_', '8', '\\'}, 10: {0, '9'}, 11: {0, '0', '@'},
		12: {')', 0, ']'}, 13: {'=', '+', '}'}, 27: {'$', 0}, 40: {0, '%'}, 43: {'*', 0},
		50: {',', '?'}, 51: {';', '.'}, 52: {':', '/'}, 53: {'!', 0}, 86: {'<', '>'},
	})),
}

func (l Layout) table() *keyTable {
	if int(l) < len(layoutTables) {
		return layoutTables[l]
	}
	return layoutTables[LayoutUS]
}
