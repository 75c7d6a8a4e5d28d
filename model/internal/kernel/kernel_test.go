package kernel

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// refMatVec is the definition written out independently of matVecGeneric.
func refMatVec(w, x []int8, rows, cols int) []int32 {
	out := make([]int32, rows)
	for r := 0; r < rows; r++ {
		var acc int64
		for k := 0; k < cols; k++ {
			acc += int64(w[r*cols+k]) * int64(x[k])
		}
		out[r] = int32(acc)
	}
	return out
}

func fill(n int, f func(i int) int8) []int8 {
	v := make([]int8, n)
	for i := range v {
		v[i] = f(i)
	}
	return v
}

func TestKernelsEdgeValues(t *testing.T) {
	const rows, cols = 7, 96 // 4-row block plus 3 single rows, 3 column blocks
	cases := []struct {
		name string
		w, x func(i int) int8
	}{
		{"zeros", func(int) int8 { return 0 }, func(int) int8 { return 0 }},
		{"max·max", func(int) int8 { return 127 }, func(int) int8 { return 127 }},
		{"max·min", func(int) int8 { return 127 }, func(int) int8 { return -128 }},
		{"min·min", func(int) int8 { return -127 }, func(int) int8 { return -128 }},
		{"min·max", func(int) int8 { return -127 }, func(int) int8 { return 127 }},
		{"alternating signs", func(i int) int8 { return [...]int8{127, -127}[i%2] }, func(i int) int8 { return [...]int8{-128, 127, -128}[i%3] }},
		{"one hot", func(i int) int8 {
			if i%cols == i/cols {
				return -127
			}
			return 0
		}, func(i int) int8 { return int8(i - 128) }},
		{"zero point like", func(i int) int8 { return int8(i%255 - 127) }, func(int) int8 { return -128 }},
	}
	for _, k := range All() {
		if !k.Supported {
			t.Logf("kernel %s not supported on this CPU, skipped", k.Name)
			continue
		}
		for _, c := range cases {
			w, x := fill(rows*cols, c.w), fill(cols, c.x)
			got := make([]int32, rows)
			k.MatVec(got, w, x, rows, cols)
			if want := refMatVec(w, x, rows, cols); !slices.Equal(got, want) {
				t.Errorf("%s/%s: got %v, want %v", k.Name, c.name, got, want)
			}
		}
	}
}

func TestKernelsRandomShapes(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for iter := 0; iter < 200; iter++ {
		rows, cols := rng.IntN(20), Align*rng.IntN(6)
		w := fill(rows*cols, func(int) int8 { return int8(rng.IntN(255) - 127) })
		x := fill(cols, func(int) int8 { return int8(rng.IntN(256) - 128) })
		want := refMatVec(w, x, rows, cols)
		for _, k := range All() {
			if !k.Supported {
				continue
			}
			got := make([]int32, rows+1)
			got[rows] = 12345 // must stay untouched
			k.MatVec(got, w, x, rows, cols)
			if !slices.Equal(got[:rows], want) || got[rows] != 12345 {
				t.Fatalf("%s rows %d cols %d: got %v, want %v", k.Name, rows, cols, got, want)
			}
		}
	}
}

func TestKernelRejectsBadArguments(t *testing.T) {
	for _, k := range All() {
		if !k.Supported || k.Name == Generic.Name {
			continue
		}
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: unaligned cols accepted", k.Name)
				}
			}()
			k.MatVec(make([]int32, 1), make([]int8, 33), make([]int8, 33), 1, 33)
		}()
	}
}

func TestBestHonoursEnvironment(t *testing.T) {
	t.Setenv("SHELFGATE_KERNEL", "generic")
	if got := Best().Name; got != "generic" {
		t.Fatalf("Best() = %s with SHELFGATE_KERNEL=generic", got)
	}
	t.Setenv("SHELFGATE_KERNEL", "no-such-kernel")
	if got := Best(); !got.Supported {
		t.Fatalf("Best() = unsupported kernel %s", got.Name)
	}
}

// FuzzKernels compares every supported kernel with the reference on
// fuzzer-chosen weights and inputs (weights folded into [−127, 127]).
func FuzzKernels(f *testing.F) {
	f.Add(uint8(3), []byte{0x80, 0x7f, 0x81, 0x00, 0xff}, []byte{0x80, 0x80, 0x7f})
	f.Add(uint8(5), []byte{0x7f}, []byte{0x80})
	f.Fuzz(func(t *testing.T, rowsB uint8, wb, xb []byte) {
		rows := int(rowsB%9) + 1
		cols := Align * (len(xb)/Align + 1)
		if cols > 4*Align {
			cols = 4 * Align
		}
		x := fill(cols, func(i int) int8 {
			if len(xb) == 0 {
				return 0
			}
			return int8(xb[i%len(xb)])
		})
		w := fill(rows*cols, func(i int) int8 {
			if len(wb) == 0 {
				return 127
			}
			v := int8(wb[(i*7)%len(wb)] + byte(i/len(wb)))
			if v == -128 {
				v = -127
			}
			return v
		})
		want := refMatVec(w, x, rows, cols)
		for _, k := range All() {
			if !k.Supported {
				continue
			}
			got := make([]int32, rows)
			k.MatVec(got, w, x, rows, cols)
			if !slices.Equal(got, want) {
				t.Fatalf("%s: got %v, want %v", k.Name, got, want)
			}
		}
	})
}

func BenchmarkMatVec(b *testing.B) {
	for _, shape := range [][2]int{{500, 1024}, {100, 512}} {
		rows, cols := shape[0], shape[1]
		w := fill(rows*cols, func(i int) int8 { return int8(i%255 - 127) })
		x := fill(cols, func(i int) int8 { return int8(i) })
		dst := make([]int32, rows)
		for _, k := range All() {
			if !k.Supported {
				continue
			}
			b.Run(k.Name+"/"+string(rune('0'+rows/100))+"00x"+itoa(cols), func(b *testing.B) {
				b.SetBytes(int64(rows * cols))
				for b.Loop() {
					k.MatVec(dst, w, x, rows, cols)
				}
			})
		}
	}
}

func itoa(n int) string {
	s := ""
	for ; n > 0; n /= 10 {
		s = string(rune('0'+n%10)) + s
	}
	return s
}
