package rfidsim

import (
	"bytes"
	"fmt"
)

// Tag is a simulated ISO/IEC 14443 type A MIFARE Classic 1K card.
type Tag struct {
	// UID is 4 (single size) or 7 (double size) bytes.
	UID []byte
	// Blocks is the memory: 16 sectors of 4 blocks, the last block of each
	// sector holding key A, the access bits and key B.
	Blocks [64][16]byte
}

// NewTag returns a MIFARE Classic 1K in transport configuration: zeroed
// data blocks, keys A and B FF FF FF FF FF FF, access bits FF 07 80 69. Block
// 0 holds the UID, as the manufacturer block does.
func NewTag(uid []byte) (*Tag, error) {
	if err := checkUID(uid); err != nil {
		return nil, err
	}
	t := &Tag{UID: append([]byte(nil), uid...)}
	copy(t.Blocks[0][:], uid)
	if len(uid) == 4 {
		t.Blocks[0][4] = bcc(uid)
	}
	for s := range 16 {
		t.Blocks[s*4+3] = [16]byte{
			0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
			0xFF, 0x07, 0x80, 0x69,
			0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
		}
	}
	return t, nil
}

func checkUID(uid []byte) error {
	switch len(uid) {
	case 4:
		if uid[0] == cascadeTag {
			return fmt.Errorf("rfidsim: a 4-byte UID cannot start with the cascade tag 0x88: % X", uid)
		}
	case 7:
	default:
		return fmt.Errorf("rfidsim: UID must be 4 or 7 bytes, got %d", len(uid))
	}
	return nil
}

const (
	cascadeTag = 0x88

	cmdREQA  = 0x26
	cmdWUPA  = 0x52
	cmdSelL1 = 0x93
	cmdSelL2 = 0x95
	cmdHLTA  = 0x50
	cmdRead  = 0x30
	cmdWrite = 0xA0

	ack = 0x0A
	nak = 0x04
)

func bcc(b []byte) byte {
	var x byte
	for _, v := range b {
		x ^= v
	}
	return x
}

// crcA is the ISO/IEC 14443-3 CRC_A (preset 0x6363), LSB first.
func crcA(data []byte) [2]byte {
	return crc16(0x6363, data)
}

// crc16 is the reflected CCITT CRC of ISO/IEC 14443-3 annex B.
func crc16(preset uint16, data []byte) [2]byte {
	crc := preset
	for _, b := range data {
		b ^= byte(crc)
		b ^= b << 4
		crc = crc>>8 ^ uint16(b)<<8 ^ uint16(b)<<3 ^ uint16(b)>>4
	}
	return [2]byte{byte(crc), byte(crc >> 8)}
}

func withCRC(b []byte) []byte {
	c := crcA(b)
	return append(b, c[0], c[1])
}

func checkCRC(frame []byte) ([]byte, bool) {
	if len(frame) < 3 {
		return nil, false
	}
	body := frame[:len(frame)-2]
	c := crcA(body)
	return body, frame[len(frame)-2] == c[0] && frame[len(frame)-1] == c[1]
}

// Card states, ISO/IEC 14443-3 figure 7.
type piccState int

const (
	stIdle piccState = iota
	stReady1
	stReady2 // double-size UID, cascade level 1 selected
	stActive
	stHalt
)

// picc is a tag in the field with its protocol state.
type picc struct {
	tag        *Tag
	state      piccState
	authSector int // -1: no sector authenticated
	writeBlock int // -1: no WRITE pending its data
}

// response is what the card sends back: bytes, and the number of valid bits
// in the last byte (0 = 8).
type response struct {
	data     []byte
	lastBits byte
}

// cl returns the cascade level part of the UID (4 bytes) and its BCC.
func (p *picc) cl(level byte) []byte {
	uid := p.tag.UID
	var part []byte
	switch {
	case len(uid) == 4 && level == cmdSelL1:
		part = uid
	case len(uid) == 7 && level == cmdSelL1:
		part = []byte{cascadeTag, uid[0], uid[1], uid[2]}
	case len(uid) == 7 && level == cmdSelL2:
		part = uid[3:7]
	default:
		return nil
	}
	return append(append([]byte(nil), part...), bcc(part))
}

func (p *picc) atqa() []byte {
	if len(p.tag.UID) == 7 {
		return []byte{0x44, 0x00}
	}
	return []byte{0x04, 0x00}
}

// receive handles a frame of the reader. bits is the number of valid bits in
// the last byte (0 = 8). It returns nil when the card stays silent.
func (p *picc) receive(frame []byte, bits byte) *response {
	if len(frame) == 1 && bits == 7 {
		switch {
		case frame[0] == cmdREQA && p.state == stIdle,
			frame[0] == cmdWUPA && (p.state == stIdle || p.state == stHalt):
			p.state = stReady1
			p.authSector = -1
			return &response{data: p.atqa()}
		}
		if p.state != stHalt {
			p.state = stIdle
		}
		return nil
	}
	if bits != 0 || len(frame) == 0 {
		return p.silent()
	}
	switch p.state {
	case stReady1, stReady2:
		return p.anticollision(frame)
	case stActive:
		return p.active(frame)
	}
	return nil
}

func (p *picc) silent() *response {
	if p.state != stHalt {
		p.state = stIdle
	}
	return nil
}

func (p *picc) anticollision(frame []byte) *response {
	level := frame[0]
	if level != cmdSelL1 && level != cmdSelL2 || len(frame) < 2 {
		// MIFARE Classic: a sector authentication may follow the first
		// cascade level of a double-size UID; anything else resets.
		return p.silent()
	}
	if (level == cmdSelL1) != (p.state == stReady1) {
		return p.silent()
	}
	part := p.cl(level)
	if part == nil {
		return p.silent()
	}
	switch frame[1] {
	case 0x20: // ANTICOLLISION, no UID bits known
		if len(frame) != 2 {
			return p.silent()
		}
		return &response{data: part}
	case 0x70: // SELECT
		body, ok := checkCRC(frame)
		if !ok || len(body) != 7 || !bytes.Equal(body[2:], part) {
			return p.silent()
		}
		if len(p.tag.UID) == 7 && level == cmdSelL1 {
			p.state = stReady2
			return &response{data: withCRC([]byte{0x04})} // SAK: UID not complete
		}
		p.state = stActive
		return &response{data: withCRC([]byte{0x08})} // SAK: MIFARE Classic 1K
	}
	return p.silent()
}

func (p *picc) active(frame []byte) *response {
	if p.writeBlock >= 0 {
		blk := p.writeBlock
		p.writeBlock = -1
		body, ok := checkCRC(frame)
		if !ok || len(body) != 16 {
			return &response{data: []byte{nak}, lastBits: 4}
		}
		copy(p.tag.Blocks[blk][:], body)
		return &response{data: []byte{ack}, lastBits: 4}
	}
	body, ok := checkCRC(frame)
	if !ok {
		return &response{data: []byte{nak}, lastBits: 4}
	}
	switch {
	case len(body) == 2 && body[0] == cmdHLTA:
		p.state = stHalt
		return nil
	case len(body) == 2 && body[0] == cmdRead && int(body[1]) < len(p.tag.Blocks):
		if !p.authorised(int(body[1])) {
			return &response{data: []byte{nak}, lastBits: 4}
		}
		return &response{data: withCRC(append([]byte(nil), p.tag.Blocks[body[1]][:]...))}
	case len(body) == 2 && body[0] == cmdWrite && int(body[1]) < len(p.tag.Blocks):
		if !p.authorised(int(body[1])) || body[1] == 0 {
			return &response{data: []byte{nak}, lastBits: 4}
		}
		p.writeBlock = int(body[1])
		return &response{data: []byte{ack}, lastBits: 4}
	}
	return &response{data: []byte{nak}, lastBits: 4}
}

func (p *picc) authorised(block int) bool {
	return p.authSector >= 0 && block/4 == p.authSector
}

// authenticate models MFAuthent: mode 0x60 (key A) or 0x61 (key B), block,
// key and the first 4 UID bytes. It reports success. The Crypto1 cipher
// itself is not simulated: the key is compared with the sector trailer.
func (p *picc) authenticate(args []byte) bool {
	if len(args) != 12 || (p.state != stActive && p.state != stReady2) {
		return false
	}
	mode, block, key, uid := args[0], int(args[1]), args[2:8], args[8:12]
	if block >= len(p.tag.Blocks) {
		return false
	}
	// Only single-size UIDs are checked: the periph driver passes the first
	// 4 bytes of a double-size UID, which this simulator does not judge.
	if len(p.tag.UID) == 4 && !bytes.Equal(uid, p.tag.UID) {
		return false
	}
	trailer := p.tag.Blocks[block/4*4+3]
	var ok bool
	switch mode {
	case 0x60:
		ok = bytes.Equal(key, trailer[0:6])
	case 0x61:
		ok = bytes.Equal(key, trailer[10:16])
	}
	if ok {
		p.state = stActive
		p.authSector = block / 4
	}
	return ok
}
