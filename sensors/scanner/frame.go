package scanner

import (
	"fmt"
)

// Reason says why a frame was rejected; ReasonOK means it was accepted.
type Reason uint8

// Reject reasons. Values index Stats.Rejected.
const (
	ReasonOK            Reason = iota
	ReasonEmpty                // a suffix with nothing before it
	ReasonNonPrintable         // a byte outside printable ASCII 0x20..0x7E
	ReasonTooLong              // longer than Options.MaxLen; discarded up to the next suffix
	ReasonCheckDigit           // an all-digit GS1 key with a wrong mod-10 check digit
	ReasonNumericLength        // all digits, but not the length of a GS1 key
	ReasonGS1                  // a malformed GS1 element string
	ReasonPartial              // bytes without a suffix when the input ended
	NumReasons                 // number of reasons, for arrays indexed by Reason
)

var reasonNames = [NumReasons]string{"ok", "empty", "non_printable", "too_long", "check_digit", "numeric_length", "gs1", "partial"}

// String implements fmt.Stringer; the names are stable, suitable for metric labels.
func (r Reason) String() string {
	if r < NumReasons {
		return reasonNames[r]
	}
	return fmt.Sprintf("reason(%d)", uint8(r))
}

// Suffix is the terminator a scanner sends after every code.
type Suffix uint8

// Suffixes. A scanner's suffix is a setting in its configuration barcodes.
const (
	SuffixCR   Suffix = iota // "\r", the factory default of most handheld scanners
	SuffixLF                 // "\n"
	SuffixCRLF               // "\r\n"
)

// String implements fmt.Stringer.
func (s Suffix) String() string {
	switch s {
	case SuffixCR:
		return "CR"
	case SuffixLF:
		return "LF"
	case SuffixCRLF:
		return "CRLF"
	}
	return fmt.Sprintf("suffix(%d)", uint8(s))
}

// ParseSuffix parses "CR", "LF" or "CRLF" (as written in a config file).
func ParseSuffix(s string) (Suffix, error) {
	switch s {
	case "CR", "cr", "\r":
		return SuffixCR, nil
	case "LF", "lf", "\n":
		return SuffixLF, nil
	case "CRLF", "crlf", "\r\n":
		return SuffixCRLF, nil
	}
	return 0, fmt.Errorf("scanner: unknown suffix %q (want CR, LF or CRLF)", s)
}

// Frame is one line received from a scanner, accepted or not.
type Frame struct {
	Code      string    // the text without its suffix; empty when rejected
	Symbology Symbology // what the code looks like, when accepted
	Reject    Reason    // ReasonOK when accepted
}

// DefaultMaxLen is the default longest accepted code. A GS1-128 symbol
// carries at most 48 data characters; its human-readable form with
// parentheses, or a Code 128 with a long serial, stays under 80.
const DefaultMaxLen = 80

// Framer splits a byte stream into frames at a suffix and validates each
// one. It keeps at most maxLen bytes, whatever arrives: a line longer than
// that is reported once as ReasonTooLong and the rest of it is skipped up to
// the next suffix. A Framer is not safe for concurrent use.
type Framer struct {
	suffix    Suffix
	maxLen    int
	buf       []byte
	discard   bool // inside an over-long line
	pendingCR bool // CRLF mode: a CR that may start the suffix
}

// NewFramer returns a Framer for lines ending in suffix and at most maxLen
// bytes long (DefaultMaxLen if maxLen <= 0).
func NewFramer(suffix Suffix, maxLen int) *Framer {
	if maxLen <= 0 {
		maxLen = DefaultMaxLen
	}
	return &Framer{suffix: suffix, maxLen: maxLen, buf: make([]byte, 0, maxLen)}
}

// Feed consumes b and calls fn for every frame it completes, accepted or
// rejected, in order. fn must not retain the Frame's memory beyond the call
// (Code is a fresh string, so it may).
func (f *Framer) Feed(b []byte, fn func(Frame)) {
	for _, c := range b {
		switch f.suffix {
		case SuffixCR, SuffixLF:
			if (f.suffix == SuffixCR && c == '\r') || (f.suffix == SuffixLF && c == '\n') {
				f.end(fn)
				continue
			}
			f.add(c, fn)
		default: // SuffixCRLF
			switch {
			case c == '\n' && f.pendingCR:
				f.pendingCR = false
				f.end(fn)
			case c == '\r':
				if f.pendingCR {
					f.add('\r', fn) // a lone CR is content (and not printable)
				}
				f.pendingCR = true
			default:
				if f.pendingCR {
					f.pendingCR = false
					f.add('\r', fn)
				}
				f.add(c, fn)
			}
		}
	}
}

// Flush ends the input: bytes still waiting for a suffix are reported as
// one ReasonPartial frame. The Framer is then ready for a new stream.
func (f *Framer) Flush(fn func(Frame)) {
	partial := len(f.buf) > 0 || f.pendingCR
	wasDiscarding := f.discard
	f.reset()
	if partial && !wasDiscarding {
		fn(Frame{Reject: ReasonPartial})
	}
}

// Pending reports how many bytes wait for a suffix (never more than maxLen).
func (f *Framer) Pending() int { return len(f.buf) }

func (f *Framer) reset() {
	f.buf = f.buf[:0]
	f.discard = false
	f.pendingCR = false
}

func (f *Framer) add(c byte, fn func(Frame)) {
	if f.discard {
		return
	}
	if len(f.buf) >= f.maxLen {
		f.buf = f.buf[:0]
		f.discard = true
		fn(Frame{Reject: ReasonTooLong}) // counted once, when it overflows
		return
	}
	f.buf = append(f.buf, c)
}

func (f *Framer) end(fn func(Frame)) {
	if f.discard {
		f.reset()
		return
	}
	sym, reason := Validate(f.buf)
	fr := Frame{Reject: reason}
	if reason == ReasonOK {
		fr.Code = string(f.buf)
		fr.Symbology = sym
	}
	f.reset()
	fn(fr)
}

// ParseFrames splits data, a complete capture of a scanner's output, into
// frames; a trailing line without its suffix is a ReasonPartial frame.
func ParseFrames(data []byte, suffix Suffix, maxLen int) []Frame {
	var out []Frame
	f := NewFramer(suffix, maxLen)
	add := func(fr Frame) { out = append(out, fr) }
	f.Feed(data, add)
	f.Flush(add)
	return out
}
