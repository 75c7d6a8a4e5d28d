package faultproxy

import "errors"

// MQTT 3.1.1 control packet types (the high nibble of the fixed header's first byte).
const (
	TypePublish byte = 3
	TypePuback  byte = 4
)

// errMalformedLength reports a remaining-length varint longer than four bytes.
var errMalformedLength = errors.New("faultproxy: malformed MQTT remaining length")

// Splitter follows an MQTT 3.1.1 byte stream packet by packet, however the
// stream is cut into reads, and drops whole packets a predicate rejects.
// Packets it keeps pass through byte for byte; a packet's body is streamed,
// never buffered, so large PUBLISH packets cost no memory. The zero value is
// ready to use; a Splitter is not safe for concurrent use.
type Splitter struct {
	hdr    [5]byte // fixed header read so far: type byte + up to 4 length bytes
	nhdr   int
	remain int  // body bytes left in the current packet (valid when nhdr == 0)
	drop   bool // the current packet's body is being dropped
}

// Feed appends to out the bytes of p that belong to packets drop does not
// reject (drop is called once per packet with its type, at its first byte,
// so kept bytes are never held back) and returns out and the number of
// packets dropped.
// After an error the stream is unusable.
func (s *Splitter) Feed(p []byte, drop func(typ byte) bool, out []byte) ([]byte, int, error) {
	dropped := 0
	for len(p) > 0 {
		if s.nhdr == 0 && s.remain > 0 { // inside a body
			n := min(s.remain, len(p))
			if !s.drop {
				out = append(out, p[:n]...)
			}
			s.remain -= n
			p = p[n:]
			continue
		}
		// The fixed header: the type byte decides, the length bytes follow.
		b := p[0]
		p = p[1:]
		if s.nhdr == 0 {
			s.drop = drop != nil && drop(b>>4)
			if s.drop {
				dropped++
			}
		}
		s.hdr[s.nhdr] = b
		s.nhdr++
		if !s.drop {
			out = append(out, b)
		}
		if s.nhdr == 1 {
			continue
		}
		if b&0x80 != 0 {
			if s.nhdr == 5 {
				return out, dropped, errMalformedLength
			}
			continue
		}
		// Length complete.
		length, mult := 0, 1
		for _, b := range s.hdr[1:s.nhdr] {
			length += int(b&0x7f) * mult
			mult *= 128
		}
		s.nhdr, s.remain = 0, length
	}
	return out, dropped, nil
}

// Boundary reports whether the stream so far ends exactly between packets.
func (s *Splitter) Boundary() bool { return s.nhdr == 0 && s.remain == 0 }
