package modelcli

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/shelfgate/shelfgate/model"
)

func cmdInspect(_ context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	fs := newFlags("inspect", stderr)
	asJSON := fs.Bool("json", false, "dump every parameter as JSON")
	var trusted listFlag
	fs.Var(&trusted, "trusted-key", "hex ed25519 public key the signature must match (repeatable)")
	if err := parse(fs, args, 1, "model.sgm"); err != nil {
		return err
	}
	m, err := loadModel(fs.Arg(0), trusted)
	if err != nil {
		return fmt.Errorf("inspect: %w", err)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		return enc.Encode(dump(m))
	}
	w := stdout
	fmt.Fprintf(w, "name      %s\nversion   %d\nformat    %d\nsha256    %x\n", m.Name, m.Version, model.FormatVersion, m.Digest)
	switch {
	case m.Signed && len(trusted) > 0:
		fmt.Fprintf(w, "signature ed25519, key %x (verified, trusted)\n", m.PublicKey)
	case m.Signed:
		fmt.Fprintf(w, "signature ed25519, key %x (verified against its own key; pass -trusted-key to check the signer)\n", m.PublicKey)
	default:
		fmt.Fprintln(w, "signature none")
	}
	fmt.Fprintf(w, "rounding  %v\nkernels   %v (default %s)\n", m.Rounding, model.Kernels(), model.DefaultKernel())
	fmt.Fprintf(w, "input     %d features, standardized, quantized scale %g zero point %d\n", m.Features(), m.Input.Quant.Scale, m.Input.Quant.Zero)
	labels := m.Output.Labels
	if len(labels) > 12 {
		labels = append(slices.Clone(labels[:12]), "…")
	}
	fmt.Fprintf(w, "output    %d classes %v\nlayers\n", m.Classes(), labels)
	params := 0
	for i, l := range m.Layers {
		fmt.Fprintf(w, "  %d %-15v %5d → %-5d in (%g, %d) out (%g, %d)", i, l.Kind, l.In, l.Out, l.Input.Scale, l.Input.Zero, l.Output.Scale, l.Output.Zero)
		switch l.Kind {
		case model.FullyConnected, model.Conv1D:
			if l.Kind == model.Conv1D {
				fmt.Fprintf(w, " [%d×%d] kernel %d stride %d → [%d×%d]", l.Length, l.InCh, l.Kernel, l.Stride, l.Positions(), l.OutCh)
			}
			params += len(l.Weights) + len(l.Bias)
			lo, hi := minMax(l.WScales)
			slo, shi := slices.Min(l.Shift), slices.Max(l.Shift)
			fmt.Fprintf(w, " act %v weight scales [%.3g, %.3g] shifts [%d, %d]\n", l.Act, lo, hi, slo, shi)
		case model.Softmax:
			fmt.Fprintf(w, " beta %g multiplier %d left shift %d diff_min %d\n", l.Beta, l.SMMult, l.SMShift, l.SMDiffMn)
		}
	}
	fmt.Fprintf(w, "params    %d\ngolden    %d vectors, all reproduced at load\n", params, len(m.Golden))
	return nil
}

func minMax(v []float32) (float32, float32) {
	if len(v) == 0 {
		return 0, 0
	}
	return slices.Min(v), slices.Max(v)
}

type jsonQuant struct {
	Scale     float32 `json:"scale"`
	ZeroPoint int8    `json:"zero_point"`
}

type jsonLayer struct {
	Index        int       `json:"index"`
	Kind         string    `json:"kind"`
	In           int       `json:"in"`
	Out          int       `json:"out"`
	Input        jsonQuant `json:"input"`
	Output       jsonQuant `json:"output"`
	Activation   string    `json:"activation,omitempty"`
	Weights      []int8    `json:"weights,omitempty"`
	WeightScales []float32 `json:"weight_scales,omitempty"`
	Bias         []int32   `json:"bias,omitempty"`
	Multipliers  []int32   `json:"multipliers,omitempty"`
	Shifts       []int8    `json:"shifts,omitempty"`
	Beta         float32   `json:"beta,omitempty"`
	InputMult    int32     `json:"input_multiplier,omitempty"`
	InputShift   int8      `json:"input_left_shift,omitempty"`
	DiffMin      int32     `json:"diff_min,omitempty"`
	Length       int       `json:"length,omitempty"`
	InChannels   int       `json:"in_channels,omitempty"`
	OutChannels  int       `json:"out_channels,omitempty"`
	KernelSize   int       `json:"kernel_size,omitempty"`
	Stride       int       `json:"stride,omitempty"`
}

type jsonModel struct {
	Name          string      `json:"name"`
	Version       uint64      `json:"version"`
	FormatVersion int         `json:"format_version"`
	SHA256        string      `json:"sha256"`
	Signed        bool        `json:"signed"`
	PublicKey     string      `json:"public_key,omitempty"`
	Rounding      string      `json:"rounding"`
	Features      []string    `json:"features"`
	Mean          []float32   `json:"mean"`
	Std           []float32   `json:"std"`
	InputQuant    jsonQuant   `json:"input_quantization"`
	Labels        []string    `json:"labels"`
	Layers        []jsonLayer `json:"layers"`
	Golden        []jsonGold  `json:"golden"`
}

type jsonGold struct {
	Input  []float32 `json:"input"`
	Output []int8    `json:"output"`
}

func dump(m *model.Model) jsonModel {
	j := jsonModel{Name: m.Name, Version: m.Version, FormatVersion: model.FormatVersion, SHA256: hex.EncodeToString(m.Digest[:]),
		Signed: m.Signed, PublicKey: hex.EncodeToString(m.PublicKey), Rounding: m.Rounding.String(),
		Features: m.Input.Names, Mean: m.Input.Mean, Std: m.Input.Std, InputQuant: jsonQuant{m.Input.Quant.Scale, m.Input.Quant.Zero},
		Labels: m.Output.Labels}
	for i, l := range m.Layers {
		jl := jsonLayer{Index: i, Kind: l.Kind.String(), In: l.In, Out: l.Out, Input: jsonQuant{l.Input.Scale, l.Input.Zero}, Output: jsonQuant{l.Output.Scale, l.Output.Zero}}
		switch l.Kind {
		case model.FullyConnected, model.Conv1D:
			jl.Activation = l.Act.String()
			jl.Length, jl.InChannels, jl.OutChannels, jl.KernelSize, jl.Stride = l.Length, l.InCh, l.OutCh, l.Kernel, l.Stride
			jl.Weights, jl.WeightScales, jl.Bias, jl.Multipliers, jl.Shifts = l.Weights, l.WScales, l.Bias, l.Mult, l.Shift
		case model.Softmax:
			jl.Beta, jl.InputMult, jl.InputShift, jl.DiffMin = l.Beta, l.SMMult, l.SMShift, l.SMDiffMn
		}
		j.Layers = append(j.Layers, jl)
	}
	for _, g := range m.Golden {
		j.Golden = append(j.Golden, jsonGold{g.Input, g.Output})
	}
	return j
}

type runResult struct {
	Row    int       `json:"row"`
	Logits []int8    `json:"logits"`
	ProbsQ []int8    `json:"probs_int8,omitempty"`
	Probs  []float32 `json:"probs,omitempty"`
	Class  int       `json:"class"`
	Label  string    `json:"label,omitempty"`
}

func cmdRun(_ context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlags("run", stderr)
	quantized := fs.Bool("quantized", false, "rows are already-quantized int8 inputs")
	kernel := fs.String("kernel", "", "kernel to use (default: fastest)")
	if err := parse(fs, args, 1, "model.sgm"); err != nil {
		return err
	}
	m, err := loadModel(fs.Arg(0), nil)
	if err != nil {
		return fmt.Errorf("run: %w", err)
	}
	var opts []model.SessionOption
	if *kernel != "" {
		opts = append(opts, model.WithKernel(*kernel))
	}
	s, err := m.NewSessionWith(opts...)
	if err != nil {
		return fmt.Errorf("run: %v: %w", err, ErrUsage)
	}
	enc := json.NewEncoder(stdout)
	last := m.Layers[len(m.Layers)-1]
	q := make([]int8, m.Features())
	row := 0
	return readRows(stdin, m.Features(), func(line int, vals []float64) error {
		var out model.Output
		var err error
		if *quantized {
			for i, v := range vals {
				if v != math.Trunc(v) || v < -128 || v > 127 {
					return fmt.Errorf("run: line %d value %d: %v is not an int8: %w", line, i+1, v, model.ErrInput)
				}
				q[i] = int8(v)
			}
			out, err = s.InferQuantized(q)
		} else {
			f := make([]float32, len(vals))
			for i, v := range vals {
				f[i] = float32(v)
			}
			out, err = s.Infer(f)
		}
		if err != nil {
			return fmt.Errorf("run: line %d: %w", line, err)
		}
		r := runResult{Row: row, Logits: out.Logits, ProbsQ: out.Probs, Class: out.Class}
		if out.Probs != nil {
			r.Probs = make([]float32, len(out.Probs))
			model.Dequantize(r.Probs, out.Probs, last.Output)
		}
		if out.Class < len(m.Output.Labels) {
			r.Label = m.Output.Labels[out.Class]
		}
		row++
		return enc.Encode(r)
	})
}

// readRows reads feature rows as CSV or JSON lines (an array of numbers,
// or an object with a "features" array), one row per line; a first CSV
// line that is not numeric is skipped as a header. A trailing label column
// (one more field than features) is ignored.
func readRows(r io.Reader, n int, fn func(line int, vals []float64) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" {
			continue
		}
		var vals []float64
		switch text[0] {
		case '[':
			if err := json.Unmarshal([]byte(text), &vals); err != nil {
				return fmt.Errorf("run: line %d: %v: %w", line, err, model.ErrInput)
			}
		case '{':
			var obj struct {
				Features []float64 `json:"features"`
			}
			if err := json.Unmarshal([]byte(text), &obj); err != nil {
				return fmt.Errorf("run: line %d: %v: %w", line, err, model.ErrInput)
			}
			vals = obj.Features
		default:
			rec, err := csv.NewReader(strings.NewReader(text)).Read()
			if err != nil {
				return fmt.Errorf("run: line %d: %v: %w", line, err, model.ErrInput)
			}
			header := false
			for i, f := range rec {
				v, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
				if err != nil {
					if i == len(rec)-1 && len(rec) == n+1 {
						break // a label column
					}
					if line == 1 && i == 0 {
						header = true
						break
					}
					return fmt.Errorf("run: line %d field %d: %q is not a number: %w", line, i+1, f, model.ErrInput)
				}
				vals = append(vals, v)
			}
			if header {
				continue
			}
		}
		if len(vals) == n+1 {
			vals = vals[:n]
		}
		if len(vals) != n {
			return fmt.Errorf("run: line %d: %d values, model takes %d features: %w", line, len(vals), n, model.ErrInput)
		}
		if err := fn(line, vals); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("run: read: %w", err)
	}
	return nil
}
