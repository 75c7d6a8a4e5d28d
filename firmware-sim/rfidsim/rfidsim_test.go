package rfidsim

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"

	"periph.io/x/conn/v3/physic"
	"periph.io/x/conn/v3/spi"
	"periph.io/x/devices/v3/mfrc522"
	"periph.io/x/devices/v3/mfrc522/commands"
)

const long = 5 * time.Second // generous: a failure, not a slow pass

func newDev(t *testing.T, s *Sim) *mfrc522.Dev {
	t.Helper()
	d, err := mfrc522.NewSPI(s, s.Reset(), s.IRQ(), mfrc522.WithSync())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestReadUID(t *testing.T) {
	tests := []struct {
		name string
		uid  []byte
	}{
		{"single size", []byte{0xDE, 0xAD, 0xBE, 0xEF}},
		{"single size, zero BCC", []byte{0x01, 0x02, 0x04, 0x07}},
		{"double size", []byte{0x04, 0x52, 0x9A, 0x62, 0x3C, 0x5E, 0x80}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(nil)
			d := newDev(t, s)
			if err := s.Present(tt.uid); err != nil {
				t.Fatal(err)
			}
			for range 2 { // a tag left on the reader is read again
				uid, err := d.ReadUID(long)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(uid, tt.uid) {
					t.Fatalf("UID % X, want % X", uid, tt.uid)
				}
			}
		})
	}
}

func TestReadUIDNoTagTimesOut(t *testing.T) {
	s := New(nil)
	d := newDev(t, s)
	_, err := d.ReadUID(30 * time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "timeout") {
		t.Fatalf("err = %v, want a timeout", err)
	}
}

func TestTagArrivesWhileWaiting(t *testing.T) {
	s := New(nil)
	d := newDev(t, s)
	uid := []byte{0x11, 0x22, 0x33, 0x44}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		time.Sleep(20 * time.Millisecond)
		if err := s.Present(uid); err != nil {
			t.Error(err)
		}
	}()
	got, err := d.ReadUID(long)
	wg.Wait()
	if err != nil || !bytes.Equal(got, uid) {
		t.Fatalf("ReadUID = % X, %v", got, err)
	}
	s.Remove()
	if _, err := d.ReadUID(30 * time.Millisecond); err == nil {
		t.Fatal("ReadUID after Remove succeeded")
	}
}

func TestReadWriteBlocks(t *testing.T) {
	s := New(nil)
	d := newDev(t, s)
	tag, err := NewTag([]byte{0xCA, 0xFE, 0xF0, 0x0D})
	if err != nil {
		t.Fatal(err)
	}
	want := [16]byte{'s', 'k', 'u', '-', '4', '2'}
	tag.Blocks[1*4+2] = want
	s.PresentTag(tag)

	got, err := d.ReadCard(long, commands.PICC_AUTHENT1A, 1, 2, mfrc522.DefaultKey)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want[:]) {
		t.Fatalf("block % X, want % X", got, want)
	}

	data := [16]byte{'b', 'i', 'n', '7'}
	if err := d.WriteCard(long, commands.PICC_AUTHENT1B, 2, 0, data, mfrc522.DefaultKey); err != nil {
		t.Fatal(err)
	}
	if tag.Blocks[2*4] != data {
		t.Fatalf("written block % X", tag.Blocks[8])
	}
	got, err = d.ReadCard(long, commands.PICC_AUTHENT1A, 2, 0, mfrc522.DefaultKey)
	if err != nil || !bytes.Equal(got, data[:]) {
		t.Fatalf("read back % X, %v", got, err)
	}

	if _, err := d.ReadCard(long, commands.PICC_AUTHENT1A, 1, 2, mfrc522.Key{1, 2, 3, 4, 5, 6}); err == nil {
		t.Fatal("ReadCard with a wrong key succeeded")
	}
}

func TestRegisters(t *testing.T) {
	s := New(nil)
	c, err := s.Connect(10*physic.MegaHertz, spi.Mode0, 8)
	if err != nil {
		t.Fatal(err)
	}
	read := func(reg byte) byte {
		t.Helper()
		r := make([]byte, 2)
		if err := c.Tx([]byte{reg<<1 | 0x80, 0}, r); err != nil {
			t.Fatal(err)
		}
		return r[1]
	}
	write := func(reg, v byte) {
		t.Helper()
		if err := c.Tx([]byte{reg << 1, v}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if v := read(regVersion); v != Version {
		t.Fatalf("version %#x", v)
	}
	if v := read(regTxControl); v != 0x80 {
		t.Fatalf("TxControlReg after reset %#x", v)
	}
	// CRC coprocessor: CRC_A of "1" is 0xA08D... checked against the
	// ISO/IEC 14443-3 annex B example: 0x00 0x00 -> 0x1EA0.
	write(regMode, 0x3D)
	write(regFIFOData, 0x00)
	write(regFIFOData, 0x00)
	write(regCommand, cmdCalcCRC)
	if read(regDivIrq)&irqCRC == 0 {
		t.Fatal("CRCIRq not set")
	}
	if l, h := read(regCRCResultL), read(regCRCResultH); l != 0xA0 || h != 0x1E {
		t.Fatalf("CRC_A(00 00) = %02X%02X, want 1EA0", h, l)
	}
	// Multi-byte read: every following byte of w addresses the next read.
	r := make([]byte, 3)
	if err := c.Tx([]byte{regVersion<<1 | 0x80, regTxControl<<1 | 0x80, 0}, r); err != nil {
		t.Fatal(err)
	}
	if r[1] != Version || r[2] != 0x80 {
		t.Fatalf("burst read % X", r)
	}
	// ComIrqReg Set1 semantics.
	write(regComIrq, 0x80|0x21)
	if v := read(regComIrq); v&0x21 != 0x21 {
		t.Fatalf("ComIrqReg after set %#x", v)
	}
	write(regComIrq, 0x01)
	if v := read(regComIrq); v&0x01 != 0 || v&0x20 == 0 {
		t.Fatalf("ComIrqReg after clear %#x", v)
	}
	if _, err := s.Connect(20*physic.MegaHertz, spi.Mode0, 8); err == nil {
		t.Fatal("20 MHz accepted")
	}
	if _, err := s.Connect(physic.MegaHertz, spi.Mode3, 8); err == nil {
		t.Fatal("mode 3 accepted")
	}
}

func TestCRCA(t *testing.T) {
	// ISO/IEC 14443-3 annex B: 00 00 -> A0 1E, 12 34 -> 26 CF.
	tests := []struct {
		in   []byte
		want [2]byte
	}{
		{[]byte{0x00, 0x00}, [2]byte{0xA0, 0x1E}},
		{[]byte{0x12, 0x34}, [2]byte{0x26, 0xCF}},
	}
	for _, tt := range tests {
		if got := crcA(tt.in); got != tt.want {
			t.Errorf("crcA(% X) = % X, want % X", tt.in, got, tt.want)
		}
	}
}

func TestPresentValidation(t *testing.T) {
	s := New(nil)
	for _, uid := range [][]byte{nil, {1, 2, 3}, {0x88, 1, 2, 3}, make([]byte, 10)} {
		if err := s.Present(uid); err == nil {
			t.Errorf("Present(% X) accepted", uid)
		}
	}
}

func TestFaultDisconnect(t *testing.T) {
	s := New(nil)
	s.InjectFault(FaultDisconnect)
	if _, err := mfrc522.NewSPI(s, s.Reset(), s.IRQ()); err == nil {
		t.Fatal("NewSPI on a disconnected reader succeeded")
	}
	s.ClearFault()
	d := newDev(t, s)
	if err := s.Present([]byte{1, 2, 3, 4}); err != nil {
		t.Fatal(err)
	}
	s.InjectFault(FaultDisconnect)
	const wait = 30 * time.Millisecond
	if _, err := d.ReadUID(wait); err == nil {
		t.Fatal("ReadUID on a disconnected reader succeeded")
	}
	time.Sleep(2 * wait) // let the driver's orphaned IRQ waiter time out
	s.ClearFault()
	if uid, err := d.ReadUID(long); err != nil || !bytes.Equal(uid, []byte{1, 2, 3, 4}) {
		t.Fatalf("after reconnect % X, %v", uid, err)
	}
}

func TestFaultBusError(t *testing.T) {
	s := New(nil)
	d := newDev(t, s)
	if err := s.Present([]byte{1, 2, 3, 4}); err != nil {
		t.Fatal(err)
	}
	s.InjectFault(FaultBusError)
	const wait = 30 * time.Millisecond
	if _, err := d.ReadUID(wait); err == nil || !strings.Contains(err.Error(), "SPI transfer failed") {
		t.Fatalf("err = %v, want the bus error", err)
	}
	// When Init fails, the driver returns while its IRQ waiter goroutine
	// still waits; until that wait times out it would take the next edge.
	time.Sleep(2 * wait)
	s.ClearFault()
	if _, err := d.ReadUID(long); err != nil {
		t.Fatal(err)
	}
}

func TestFaultStuck(t *testing.T) {
	s := New(nil)
	d := newDev(t, s)
	uid := []byte{9, 8, 7, 6}
	if err := s.Present(uid); err != nil {
		t.Fatal(err)
	}
	s.InjectFault(FaultStuck)
	s.Remove()
	if got, err := d.ReadUID(long); err != nil || !bytes.Equal(got, uid) {
		t.Fatalf("stuck tag: % X, %v", got, err)
	}
	s.ClearFault()
	s.Remove()
	if _, err := d.ReadUID(30 * time.Millisecond); err == nil {
		t.Fatal("tag still read after recovery and Remove")
	}
}

func TestFaultNoise(t *testing.T) {
	s := New(nil)
	d := newDev(t, s)
	uid := []byte{0x10, 0x20, 0x30, 0x40}
	if err := s.Present(uid); err != nil {
		t.Fatal(err)
	}
	s.InjectFault(FaultNoise)
	for range 5 {
		if got, err := d.ReadUID(long); err == nil {
			t.Fatalf("ReadUID under RF noise succeeded: % X", got)
		}
	}
	s.ClearFault()
	if got, err := d.ReadUID(long); err != nil || !bytes.Equal(got, uid) {
		t.Fatalf("after noise % X, %v", got, err)
	}
}

func TestFaultSlow(t *testing.T) {
	s := New(&Opts{SlowDelay: 300 * time.Millisecond})
	d := newDev(t, s)
	if err := s.Present([]byte{1, 2, 3, 4}); err != nil {
		t.Fatal(err)
	}
	s.InjectFault(FaultSlow)
	// The driver repeats REQA every 100 ms, each one cancelling the
	// previous: a tag answering 300 ms late is never seen.
	if _, err := d.ReadUID(500 * time.Millisecond); err == nil {
		t.Fatal("ReadUID with a slow tag succeeded")
	}
	s.ClearFault()
	if _, err := d.ReadUID(long); err != nil {
		t.Fatal(err)
	}
}

// The slow answer does arrive when the reader waits for it.
func TestSlowAnswerArrives(t *testing.T) {
	s := New(&Opts{SlowDelay: 20 * time.Millisecond})
	ll, err := commands.NewLowLevelSPI(s, s.Reset(), s.IRQ())
	if err != nil {
		t.Fatal(err)
	}
	if err := ll.Init(); err != nil {
		t.Fatal(err)
	}
	if err := s.Present([]byte{1, 2, 3, 4}); err != nil {
		t.Fatal(err)
	}
	s.InjectFault(FaultSlow)
	if err := ll.DevWrite(commands.FIFODataReg, 0x26); err != nil {
		t.Fatal(err)
	}
	if err := ll.DevWrite(commands.CommandReg, commands.PCD_TRANSCEIVE); err != nil {
		t.Fatal(err)
	}
	if err := ll.DevWrite(commands.BitFramingReg, 0x87); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(long)
	for {
		v, err := ll.DevRead(commands.CommIrqReg)
		if err != nil {
			t.Fatal(err)
		}
		if v&irqRx != 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("slow answer never arrived")
		}
		time.Sleep(time.Millisecond)
	}
	if n, _ := ll.DevRead(commands.FIFOLevelReg); n != 2 {
		t.Fatalf("ATQA length %d, want 2", n)
	}
}

func TestResetPinPowerDown(t *testing.T) {
	s := New(nil)
	d := newDev(t, s)
	if err := s.Present([]byte{1, 2, 3, 4}); err != nil {
		t.Fatal(err)
	}
	if err := s.Reset().Out(false); err != nil {
		t.Fatal(err)
	}
	if _, err := d.ReadUID(30 * time.Millisecond); err == nil {
		t.Fatal("ReadUID on a powered-down reader succeeded")
	}
	if err := s.Reset().Out(true); err != nil {
		t.Fatal(err)
	}
	if _, err := d.ReadUID(long); err != nil {
		t.Fatal(err)
	}
	if s.Transfers() == 0 || FaultNoise.String() != "noise" || Fault(77).String() != "Fault(77)" {
		t.Fatal("bookkeeping")
	}
}

// FuzzTx checks that arbitrary SPI traffic, with a tag in the field, never
// panics and that VersionReg stays readable afterwards.
func FuzzTx(f *testing.F) {
	f.Add([]byte{regFIFOData << 1, 0x26, 0x93, 0x20}, []byte{regCommand << 1, cmdTransceive}, []byte{regBitFraming << 1, 0x80})
	f.Add([]byte{regTxControl << 1, 0x03}, []byte{regFIFOData << 1, 0x52}, []byte{regBitFraming << 1, 0x87})
	f.Add([]byte{regCommand << 1, cmdMFAuthent}, []byte{regFIFOData<<1 | 0x80, 0, 0}, []byte{regCommand << 1, cmdSoftReset})
	f.Fuzz(func(t *testing.T, a, b, c []byte) {
		s := New(nil)
		if err := s.Present([]byte{0x04, 0x52, 0x9A, 0x62, 0x3C, 0x5E, 0x80}); err != nil {
			t.Fatal(err)
		}
		for _, w := range [][]byte{a, b, c} {
			_ = s.Tx(w, make([]byte, len(w)))
			_ = s.Tx(w, nil)
		}
		r := make([]byte, 2)
		if err := s.Tx([]byte{regVersion<<1 | 0x80, 0}, r); err != nil || r[1] != Version {
			t.Fatalf("version %#x, %v", r[1], err)
		}
	})
}
