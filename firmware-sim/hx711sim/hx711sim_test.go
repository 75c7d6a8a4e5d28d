package hx711sim

import (
	"errors"
	"sync"
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/devices/v3/hx711"
)

// ramp encodes the sample index in the code so every read can be checked
// exactly against the conversion it came from.
func ramp(base, step int32) SignalFunc {
	return func(k int64) int32 { return base + step*int32(k%1000) }
}

func fastOpts() *Opts {
	o := DefaultOpts
	o.SpeedUp = 200 // 10 samples/s -> 0.5 ms per conversion
	return &o
}

func newDev(t *testing.T, sig Signal, o *Opts) (*Sim, *hx711.Dev) {
	t.Helper()
	s, err := New(sig, o)
	if err != nil {
		t.Fatal(err)
	}
	d, err := hx711.New(s.CLK(), s.DOUT())
	if err != nil {
		t.Fatal(err)
	}
	return s, d
}

const readTimeout = 2 * time.Second // generous: a failure, not a slow pass

func readOK(t *testing.T, d *hx711.Dev) int32 {
	t.Helper()
	v, err := d.ReadTimeout(readTimeout)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestExactCodes(t *testing.T) {
	tests := []struct {
		name string
		sig  SignalFunc
		mode hx711.InputMode
		chB  Signal
		want func(a int32) int32 // from the channel A gain 128 input
	}{
		{"A128 positive", ramp(1000, 7), hx711.CHANNEL_A_GAIN_128, nil, func(a int32) int32 { return a }},
		{"A128 negative", ramp(-500000, -3), hx711.CHANNEL_A_GAIN_128, nil, func(a int32) int32 { return a }},
		{"A128 saturates high", ramp(9_000_000, 1), hx711.CHANNEL_A_GAIN_128, nil, func(int32) int32 { return 0x7FFFFF }},
		{"A128 saturates low", ramp(-9_000_000, 1), hx711.CHANNEL_A_GAIN_128, nil, func(int32) int32 { return -0x800000 }},
		{"A64 halves", ramp(-1001, 11), hx711.CHANNEL_A_GAIN_64, nil, func(a int32) int32 { return a >> 1 }},
		{"A64 in range where A128 saturates", ramp(10_000_000, 2), hx711.CHANNEL_A_GAIN_64, nil, func(a int32) int32 { return a >> 1 }},
		{"B32 same bridge", ramp(40000, 4), hx711.CHANNEL_B_GAIN_32, nil, func(a int32) int32 { return a >> 2 }},
		{"B32 own signal", ramp(40000, 4), hx711.CHANNEL_B_GAIN_32, SignalFunc(func(k int64) int32 { return -int32(k) }), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := fastOpts()
			o.ChannelB = tt.chB
			s, d := newDev(t, tt.sig, o)
			if err := d.SetInputMode(tt.mode); err != nil {
				t.Fatal(err)
			}
			if got, want := s.Mode(), Mode(tt.mode); got != want {
				t.Fatalf("mode = %v, want %v", got, want)
			}
			prev := int64(-1)
			for range 5 {
				v := readOK(t, d)
				st := s.Stats()
				if st.LastIndex <= prev {
					t.Fatalf("sample index %d not after %d", st.LastIndex, prev)
				}
				prev = st.LastIndex
				var want int32
				if tt.want != nil {
					want = tt.want(tt.sig(st.LastIndex))
				} else {
					want = tt.chB.CodeAt(st.LastIndex)
				}
				if v != want || v != st.LastCode {
					t.Fatalf("sample %d: read %d (%#x), want %d, sim says %d", st.LastIndex, v, uint32(v)&0xFFFFFF, want, st.LastCode)
				}
			}
		})
	}
}

func TestCode(t *testing.T) {
	s, err := New(SignalFunc(func(k int64) int32 { return int32(k) }), nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		k    int64
		m    Mode
		want int32
	}{
		{5, ChannelAGain128, 5},
		{-3, ChannelAGain64, -2}, // floor(-3/2)
		{7, ChannelBGain32, 1},
		{0x7FFFFF + 1, ChannelAGain128, 0x7FFFFF},
		{0x7FFFFF + 1, ChannelAGain64, 0x400000},
		{-0x800001, ChannelAGain128, -0x800000},
	}
	for _, tt := range tests {
		if got := s.Code(tt.k, tt.m); got != tt.want {
			t.Errorf("Code(%d, %v) = %d, want %d", tt.k, tt.m, got, tt.want)
		}
	}
}

func TestOptsValidation(t *testing.T) {
	sig := SignalFunc(func(int64) int32 { return 0 })
	bad := []Opts{
		{Rate: 20, SpeedUp: 1, PowerDownAfter: time.Millisecond},
		{Rate: 10, SpeedUp: 0.5, PowerDownAfter: time.Millisecond},
		{Rate: 10, SpeedUp: 1, PowerDownAfter: 0},
		{Rate: 10, SpeedUp: 1, PowerDownAfter: time.Millisecond, Settle: -1},
	}
	for i, o := range bad {
		if _, err := New(sig, &o); err == nil {
			t.Errorf("%d: New(%+v) succeeded", i, o)
		}
	}
	if _, err := New(nil, nil); err == nil {
		t.Error("New(nil) succeeded")
	}
	o := fastOpts()
	o.Rate = 80
	if s, err := New(sig, o); err != nil || s.SamplePeriod() != time.Second/80/200 {
		t.Errorf("80 SPS: %v, period %v", err, s.SamplePeriod())
	}
}

func TestReadWithoutDataReadyIsMinusOne(t *testing.T) {
	o := fastOpts()
	o.SpeedUp = 1 // the first conversion is 400 ms away
	s, d := newDev(t, ramp(1234, 1), o)
	if d.IsReady() {
		t.Fatal("ready before the first conversion settled")
	}
	v, err := d.Read()
	if err != nil {
		t.Fatal(err)
	}
	if v.Raw != -1 {
		t.Fatalf("Read before ready = %d, want -1", v.Raw)
	}
	if st := s.Stats(); st.Spurious != 1 || st.Reads != 0 {
		t.Fatalf("stats %+v, want 1 spurious, 0 reads", st)
	}
}

func TestFaultNotReadyTimesOutAndRecovers(t *testing.T) {
	s, d := newDev(t, ramp(42, 1), fastOpts())
	readOK(t, d)
	s.InjectFault(FaultNotReady)
	if _, err := d.ReadTimeout(20 * time.Millisecond); !errors.Is(err, hx711.ErrTimeout) {
		t.Fatalf("ReadTimeout under %v: err = %v, want ErrTimeout", s.Fault(), err)
	}
	if v, _ := d.Read(); v.Raw != -1 {
		t.Fatalf("Read under not-ready = %d, want -1", v.Raw)
	}
	s.ClearFault()
	v := readOK(t, d)
	if want := ramp(42, 1)(s.Stats().LastIndex); v != want {
		t.Fatalf("after recovery read %d, want %d", v, want)
	}
}

func TestFaultDisconnectedReadsPull(t *testing.T) {
	s, d := newDev(t, ramp(42, 1), fastOpts())
	s.InjectFault(FaultDisconnected)
	// The driver configures a pull-down: a floating DOUT looks ready and
	// shifts zeros.
	if !d.IsReady() {
		t.Fatal("disconnected DOUT with pull-down should look ready")
	}
	for range 3 {
		if v := readOK(t, d); v != 0 {
			t.Fatalf("disconnected read %d, want 0", v)
		}
	}
	if err := s.DOUT().In(gpio.PullUp, gpio.FallingEdge); err != nil {
		t.Fatal(err)
	}
	if _, err := d.ReadTimeout(10 * time.Millisecond); !errors.Is(err, hx711.ErrTimeout) {
		t.Fatalf("disconnected with pull-up: err = %v, want timeout", err)
	}
	s.ClearFault()
	if v := readOK(t, d); v != ramp(42, 1)(s.Stats().LastIndex) {
		t.Fatalf("after recovery read %d", v)
	}
}

func TestFaultPinError(t *testing.T) {
	s, err := New(ramp(0, 1), fastOpts())
	if err != nil {
		t.Fatal(err)
	}
	s.InjectFault(FaultPinError)
	if _, err := hx711.New(s.CLK(), s.DOUT()); !errors.Is(err, ErrPinError) {
		t.Fatalf("hx711.New err = %v, want ErrPinError", err)
	}
	s.ClearFault()
	d, err := hx711.New(s.CLK(), s.DOUT())
	if err != nil {
		t.Fatal(err)
	}
	readOK(t, d)
	s.InjectFault(FaultPinError)
	if _, err := d.Read(); !errors.Is(err, ErrPinError) {
		t.Fatalf("Read err = %v, want ErrPinError", err)
	}
	s.ClearFault()
	readOK(t, d)
}

func TestFaultStuck(t *testing.T) {
	s, d := newDev(t, ramp(100, 10), fastOpts())
	first := readOK(t, d)
	s.InjectFault(FaultStuck)
	prev := s.Stats().LastIndex
	for range 4 {
		if v := readOK(t, d); v != first {
			t.Fatalf("stuck read %d, want %d", v, first)
		}
	}
	if st := s.Stats(); st.LastIndex <= prev {
		t.Fatalf("conversions stopped while stuck: index %d <= %d", st.LastIndex, prev)
	}
	s.ClearFault()
	v := readOK(t, d)
	if want := ramp(100, 10)(s.Stats().LastIndex); v != want {
		t.Fatalf("after recovery read %d, want %d", v, want)
	}
}

func TestFaultNoise(t *testing.T) {
	o := fastOpts()
	o.NoiseAmplitude = 1000
	sig := SignalFunc(func(int64) int32 { return 5000 })
	s, d := newDev(t, sig, o)
	s.InjectFault(FaultNoise)
	off := 0
	for range 20 {
		v := readOK(t, d)
		if v < 4000 || v > 6000 {
			t.Fatalf("noisy read %d outside 5000±1000", v)
		}
		if v != 5000 {
			off++
		}
	}
	if off < 10 {
		t.Fatalf("only %d of 20 noisy reads differ from the signal", off)
	}
	s.ClearFault()
	if v := readOK(t, d); v != 5000 {
		t.Fatalf("after noise burst read %d, want 5000", v)
	}
}

func TestFaultSlow(t *testing.T) {
	o := fastOpts()
	o.SpeedUp = 100 // 1 ms per conversion
	o.SlowFactor = 200
	s, d := newDev(t, ramp(7, 1), o)
	readOK(t, d)
	s.InjectFault(FaultSlow)
	readOK(t, d) // the conversion already scheduled
	// The next one is 200 ms away: a 5 ms wait must time out.
	if _, err := d.ReadTimeout(5 * time.Millisecond); !errors.Is(err, hx711.ErrTimeout) {
		t.Fatalf("slow: err = %v, want timeout", err)
	}
	v := readOK(t, d)
	if v != ramp(7, 1)(s.Stats().LastIndex) {
		t.Fatalf("slow read %d", v)
	}
	s.ClearFault()
	readOK(t, d)
}

func TestFaultGlitchYieldsMinusOne(t *testing.T) {
	o := fastOpts()
	o.SpeedUp = 50 // 2 ms per conversion: the host polls well before the next one
	sig := ramp(3000, 1)
	s, d := newDev(t, sig, o)
	readOK(t, d)
	s.InjectFault(FaultGlitch)
	var minus, good int
	for range 12 {
		v := readOK(t, d)
		switch {
		case v == -1:
			minus++
		case v == sig(s.Stats().LastIndex):
			good++
		default:
			t.Fatalf("glitch read %d is neither -1 nor the signal", v)
		}
	}
	if minus == 0 || good == 0 {
		t.Fatalf("glitch: %d x -1, %d good reads; want both", minus, good)
	}
	if s.Stats().Spurious == 0 {
		t.Fatal("no spurious transaction counted")
	}
	s.ClearFault()
	for range 3 {
		if v := readOK(t, d); v == -1 {
			t.Fatal("-1 after the glitch was cleared")
		}
	}
}

func TestPowerDown(t *testing.T) {
	o := fastOpts()
	// Not DatasheetPowerDown: the driver's own reads in this test must not
	// power the chip down when the race detector and a busy machine stall
	// it between two pin writes.
	o.PowerDownAfter = 10 * time.Millisecond
	s, d := newDev(t, ramp(55, 1), o)
	if err := d.SetInputMode(hx711.CHANNEL_A_GAIN_64); err != nil {
		t.Fatal(err)
	}
	readOK(t, d)
	if st := s.Stats(); st.PowerDowns != 0 || st.Resets != 0 {
		t.Fatalf("reads powered the chip down: %+v", st)
	}
	if err := s.CLK().Out(gpio.High); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * o.PowerDownAfter)
	if !s.PoweredDown() {
		t.Fatalf("not powered down with PD_SCK high for %v", 3*o.PowerDownAfter)
	}
	if d.IsReady() {
		t.Fatal("powered-down chip reports ready")
	}
	if err := s.CLK().Out(gpio.Low); err != nil {
		t.Fatal(err)
	}
	if s.PoweredDown() {
		t.Fatal("still powered down after PD_SCK low")
	}
	if m := s.Mode(); m != ChannelAGain128 {
		t.Fatalf("mode after reset = %v, want A/128", m)
	}
	if st := s.Stats(); st.PowerDowns != 1 || st.Resets != 1 || st.LastReset.IsZero() {
		t.Fatalf("power-down and reset not counted: %+v", st)
	}
	if d.IsReady() {
		t.Fatal("ready at once after the reset: the chip must settle first")
	}
	if v := readOK(t, d); v != ramp(55, 1)(s.Stats().LastIndex) {
		t.Fatalf("read after power-up %d", v)
	}
}

func TestReadContinuousAndHalt(t *testing.T) {
	sig := ramp(0, 1)
	s, d := newDev(t, sig, fastOpts())
	ch := d.ReadContinuous()
	var got []int32
	for v := range ch {
		got = append(got, v.Raw)
		if len(got) == 5 {
			break
		}
	}
	if err := d.Halt(); err != nil {
		t.Fatal(err)
	}
	// Drain until the driver's goroutine closes the channel.
	for range ch {
	}
	for i := 1; i < len(got); i++ {
		if got[i] <= got[i-1] {
			t.Fatalf("codes not increasing with the sample index: %v", got)
		}
	}
	_ = s
}

func TestWaitForEdgeHalt(t *testing.T) {
	s, err := New(ramp(0, 1), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.DOUT().In(gpio.PullDown, gpio.FallingEdge); err != nil {
		t.Fatal(err)
	}
	s.InjectFault(FaultNotReady)
	done := make(chan bool)
	go func() { done <- s.DOUT().WaitForEdge(-1) }()
	time.Sleep(5 * time.Millisecond)
	if err := s.DOUT().Halt(); err != nil {
		t.Fatal(err)
	}
	select {
	case ok := <-done:
		if ok {
			t.Fatal("halted WaitForEdge returned true")
		}
	case <-time.After(readTimeout):
		t.Fatal("Halt did not release WaitForEdge")
	}
}

func TestConcurrentFaults(t *testing.T) {
	s, d := newDev(t, ramp(0, 1), fastOpts())
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		faults := []Fault{FaultNoise, FaultStuck, FaultGlitch, FaultSlow, FaultNone}
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			s.InjectFault(faults[i%len(faults)])
			time.Sleep(time.Millisecond)
		}
	}()
	for range 20 {
		_, _ = d.ReadTimeout(50 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	s.ClearFault()
	readOK(t, d)
}

func TestStrings(t *testing.T) {
	for f := FaultNone; f <= FaultGlitch+1; f++ {
		if f.String() == "" {
			t.Errorf("empty name for fault %d", int(f))
		}
	}
	if ChannelBGain32.String() != "B/32" || Mode(9).String() != "Mode(9)" {
		t.Error("Mode.String")
	}
	s, _ := New(ramp(0, 1), nil)
	if s.CLK().Name() != "hx711sim.PD_SCK" || s.DOUT().String() != "hx711sim.DOUT" {
		t.Errorf("pin names %q %q", s.CLK().Name(), s.DOUT().Name())
	}
	if s.CLK().PWM(0, 0) == nil {
		t.Error("PWM succeeded")
	}
}

// The driver's Read and SetInputMode clock a transaction without looking at
// DOUT first, so their pulses follow the previous read back to back.
func TestSetInputModeRightAfterRead(t *testing.T) {
	sig := ramp(80000, 8)
	for _, mode := range []hx711.InputMode{hx711.CHANNEL_B_GAIN_32, hx711.CHANNEL_A_GAIN_64, hx711.CHANNEL_A_GAIN_128} {
		t.Run(Mode(mode).String(), func(t *testing.T) {
			s, d := newDev(t, sig, fastOpts())
			if err := d.SetInputMode(hx711.CHANNEL_B_GAIN_32); err != nil {
				t.Fatal(err)
			}
			readOK(t, d)
			if err := d.SetInputMode(mode); err != nil {
				t.Fatal(err)
			}
			if got := s.Mode(); got != Mode(mode) {
				t.Fatalf("mode = %v, want %v", got, Mode(mode))
			}
			v := readOK(t, d)
			if want := s.Code(s.Stats().LastIndex, Mode(mode)); v != want {
				t.Fatalf("read %d, want %d", v, want)
			}
		})
	}
}

type twoBins struct{}

func (twoBins) CodeAt(bin int, k int64) int32 { return int32(bin*1_000_000) + int32(k) }

func TestBin(t *testing.T) {
	for bin := range 2 {
		if got, want := Bin(twoBins{}, bin).CodeAt(7), int32(bin*1_000_000+7); got != want {
			t.Errorf("Bin(%d).CodeAt(7) = %d, want %d", bin, got, want)
		}
	}
}

func TestStickAt(t *testing.T) {
	tests := []struct {
		code, want int32
	}{
		{MaxCode, MaxCode},
		{-9_000_000, MinCode},
		{0, 0},
	}
	for _, tt := range tests {
		s, d := newDev(t, ramp(100, 1), fastOpts())
		s.StickAt(tt.code)
		for range 2 {
			if v := readOK(t, d); v != tt.want {
				t.Fatalf("StickAt(%d): read %d, want %d", tt.code, v, tt.want)
			}
		}
		s.ClearFault()
		if v := readOK(t, d); v != ramp(100, 1)(s.Stats().LastIndex) {
			t.Fatalf("after StickAt(%d) cleared: read %d", tt.code, v)
		}
	}
}

// Conversions are gated by the sample clock: each read latches a newer
// conversion than the previous one, so n reads span more than n-2 sample
// periods (the first may catch the end of a period), whatever the host
// does. Only this lower bound is checked; a busy machine may take longer.
func TestRateGatesConversions(t *testing.T) {
	for _, rate := range []int{10, 80} {
		o := fastOpts()
		o.Rate = rate
		o.SpeedUp = float64(1000 / rate) // 1 ms per conversion at either rate
		s, d := newDev(t, ramp(0, 1), o)
		readOK(t, d)
		first := s.Stats().LastIndex
		start := time.Now()
		const n = 20
		for range n {
			readOK(t, d)
		}
		elapsed := time.Since(start)
		if lower := time.Duration(n-2) * s.SamplePeriod(); elapsed < lower {
			t.Errorf("rate %d: %d reads in %v, faster than %v", rate, n, elapsed, lower)
		}
		if got := s.Stats().LastIndex - first; got < n {
			t.Errorf("rate %d: sample index advanced by %d over %d reads", rate, got, n)
		}
	}
}

// FuzzPins drives the pins in arbitrary order (each byte: bit 0 the clock
// level, bit 1 a DOUT read) and checks that the chip recovers: the driver
// gets a reading (stray pulses may have selected another gain for it, as on
// hardware), after which gain selection and exact codes work again.
func FuzzPins(f *testing.F) {
	f.Add([]byte{1, 0, 1, 0, 3, 2, 1})
	f.Add([]byte{1, 3, 0, 2, 1, 0, 1, 0, 1, 0})
	f.Fuzz(func(t *testing.T, ops []byte) {
		sig := ramp(-7, 3)
		s, d := newDev(t, sig, fastOpts())
		for _, op := range ops {
			_ = s.CLK().Out(op&1 == 1)
			if op&2 != 0 {
				_ = s.DOUT().Read()
			}
		}
		if err := s.CLK().Out(gpio.Low); err != nil {
			t.Fatal(err)
		}
		readOK(t, d)
		if err := d.SetInputMode(hx711.CHANNEL_A_GAIN_128); err != nil {
			t.Fatal(err)
		}
		v := readOK(t, d)
		if want := sig(s.Stats().LastIndex); v != want {
			t.Fatalf("after %v: read %d, want %d", ops, v, want)
		}
	})
}

// With the datasheet threshold, pin writes alone (no driver reads that a
// busy machine could stall) show the 60 µs power-down.
func TestDatasheetPowerDown(t *testing.T) {
	o := fastOpts()
	o.PowerDownAfter = DatasheetPowerDown
	s, err := New(ramp(0, 1), o)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CLK().Out(gpio.High); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Millisecond)
	if !s.PoweredDown() {
		t.Fatal("not powered down after 1 ms with PD_SCK high")
	}
	if err := s.CLK().Out(gpio.Low); err != nil {
		t.Fatal(err)
	}
	if s.PoweredDown() {
		t.Fatal("still powered down with PD_SCK low")
	}
}

// A host that falls behind loses the conversions completed while it was
// away; Stats shows how many (LastIndex − FirstIndex + 1 − Reads).
func TestStatsCountUnreadConversions(t *testing.T) {
	s, d := newDev(t, ramp(0, 1), fastOpts())
	if st := s.Stats(); st.FirstIndex != -1 || st.Reads != 0 {
		t.Fatalf("before any read: %+v", st)
	}
	readOK(t, d)
	first := s.Stats().LastIndex
	time.Sleep(10 * s.SamplePeriod())
	readOK(t, d)
	st := s.Stats()
	if st.FirstIndex != first {
		t.Errorf("FirstIndex = %d, want %d (the first read's)", st.FirstIndex, first)
	}
	if unread := st.LastIndex - st.FirstIndex + 1 - st.Reads; unread < 5 {
		t.Errorf("%d conversions unread after sleeping 10 periods between two reads: %+v", unread, st)
	}
}
