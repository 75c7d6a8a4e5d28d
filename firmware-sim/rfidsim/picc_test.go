package rfidsim

import (
	"bytes"
	"testing"
)

// TestPICCStateMachine walks a tag through ISO/IEC 14443-3 states frame by
// frame, without the reader.
func TestPICCStateMachine(t *testing.T) {
	uid4 := []byte{0xDE, 0xAD, 0xBE, 0xEF}
	uid7 := []byte{0x04, 0x52, 0x9A, 0x62, 0x3C, 0x5E, 0x80}
	sel := func(level byte, part []byte) []byte {
		return withCRC(append([]byte{level, 0x70}, part...))
	}
	cl1of7 := []byte{0x88, 0x04, 0x52, 0x9A, 0x88 ^ 0x04 ^ 0x52 ^ 0x9A}
	type step struct {
		frame []byte
		bits  byte
		want  []byte // nil: silent
		state piccState
	}
	tests := []struct {
		name  string
		uid   []byte
		steps []step
	}{
		{"single size select and halt", uid4, []step{
			{[]byte{cmdREQA}, 7, []byte{0x04, 0x00}, stReady1},
			{[]byte{cmdSelL1, 0x20}, 0, append(uid4, bcc(uid4)), stReady1},
			{sel(cmdSelL1, append(uid4, bcc(uid4))), 0, withCRC([]byte{0x08}), stActive},
			{withCRC([]byte{cmdHLTA, 0x00}), 0, nil, stHalt},
			{[]byte{cmdREQA}, 7, nil, stHalt}, // REQA does not wake a halted tag
			{[]byte{cmdWUPA}, 7, []byte{0x04, 0x00}, stReady1},
		}},
		{"double size cascade", uid7, []step{
			{[]byte{cmdWUPA}, 7, []byte{0x44, 0x00}, stReady1},
			{[]byte{cmdSelL1, 0x20}, 0, cl1of7, stReady1},
			{sel(cmdSelL1, cl1of7), 0, withCRC([]byte{0x04}), stReady2},
			{[]byte{cmdSelL2, 0x20}, 0, append(uid7[3:7:7], bcc(uid7[3:7])), stReady2},
			{sel(cmdSelL2, append(uid7[3:7:7], bcc(uid7[3:7]))), 0, withCRC([]byte{0x08}), stActive},
		}},
		{"select with a bad CRC is ignored", uid4, []step{
			{[]byte{cmdREQA}, 7, []byte{0x04, 0x00}, stReady1},
			{append([]byte{cmdSelL1, 0x70}, append(uid4, bcc(uid4), 0, 0)...), 0, nil, stIdle},
		}},
		{"select of another UID is ignored", uid4, []step{
			{[]byte{cmdREQA}, 7, []byte{0x04, 0x00}, stReady1},
			{sel(cmdSelL1, []byte{1, 2, 3, 4, 4}), 0, nil, stIdle},
		}},
		{"read without authentication is refused", uid4, []step{
			{[]byte{cmdREQA}, 7, []byte{0x04, 0x00}, stReady1},
			{sel(cmdSelL1, append(uid4, bcc(uid4))), 0, withCRC([]byte{0x08}), stActive},
			{withCRC([]byte{cmdRead, 4}), 0, []byte{nak}, stActive},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tag, err := NewTag(tt.uid)
			if err != nil {
				t.Fatal(err)
			}
			p := &picc{tag: tag, authSector: -1, writeBlock: -1}
			for i, st := range tt.steps {
				r := p.receive(st.frame, st.bits)
				var got []byte
				if r != nil {
					got = r.data
				}
				if !bytes.Equal(got, st.want) || (r == nil) != (st.want == nil) {
					t.Fatalf("step %d (% X): answer % X, want % X", i, st.frame, got, st.want)
				}
				if p.state != st.state {
					t.Fatalf("step %d (% X): state %d, want %d", i, st.frame, p.state, st.state)
				}
			}
		})
	}
}
