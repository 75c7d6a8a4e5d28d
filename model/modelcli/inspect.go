package modelcli

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/shelfgate/shelfgate/model"
)

func cmdInspect(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	fs := newFlags("inspect", stderr)
	asJSON := fs.Bool("json", false, "dump every parameter as JSON")
	var trusted listFlag
	fs.Var(&trusted, "trusted-key", "hex ed25519 public key the signature must match (repeatable)")
	if err := parse(fs, args, 1, "model.sgm"); err != nil {
		return err
	}
	m, err := loadModel(ctx, fs.Arg(0), trusted)
	if err != nil {
		return fmt.Errorf("inspect: %w", err)
	}
	def, err := model.DefaultKernel()
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
	fmt.Fprintf(w, "rounding  %v\nkernels   %v (default %s)\n", m.Rounding, model.Kernels(), def)
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
	fmt.Fprintf(w, "params    %d\nmacs      %d per inference\ngolden    %d vectors, all reproduced at load\n", params, m.MACs(), len(m.Golden))
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

func cmdRun(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlags("run", stderr)
	quantized := fs.Bool("quantized", false, "rows are already-quantized int8 inputs")
	kernel := fs.String("kernel", "", "kernel to use (default: $SHELFGATE_KERNEL, else the fastest)")
	if err := parse(fs, args, 1, "model.sgm"); err != nil {
		return err
	}
	var opts []model.SessionOption
	if *kernel != "" {
		opts = append(opts, model.WithKernel(*kernel))
	}
	m, err := loadModelWith(ctx, fs.Arg(0), nil, *kernel)
	if err != nil {
		if errors.Is(err, model.ErrKernel) && *kernel != "" {
			return fmt.Errorf("run: -kernel: %w: %w", err, ErrUsage)
		}
		return fmt.Errorf("run: %w", err)
	}
	s, err := m.NewSessionWith(opts...)
	if err != nil {
		if *kernel != "" {
			return fmt.Errorf("run: -kernel: %w: %w", err, ErrUsage)
		}
		return fmt.Errorf("run: %w", err)
	}
	enc := json.NewEncoder(stdout)
	last := m.Layers[len(m.Layers)-1]
	q := make([]int8, m.Features())
	row := 0
	err = readRows(ctx, stdin, m.Features(), m.Output.Labels, func(line int, vals []float64) error {
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
	if err != nil {
		return err
	}
	if row == 0 {
		return fmt.Errorf("run: no feature rows in the input: %w", model.ErrInput)
	}
	return nil
}

// readRows reads feature rows as CSV or JSON lines (an array of numbers,
// or an object with a "features" array), one row per line, and calls fn
// for each. Every row must have exactly n values. A CSV row may carry one
// more field, a label column, only when that last field is one of the
// model's labels (or, for a model without labels, not a number); n+1
// numbers are an error, since an index column or a stray value would shift
// or drop a feature. The first CSV line is skipped as a header only when it
// has n or n+1 fields and its first field is not a number. Each error names
// the line and the field count or value. When ctx is done, readRows returns
// its error without waiting for the reader.
func readRows(ctx context.Context, r io.Reader, n int, labels []string, fn func(line int, vals []float64) error) error {
	type scanned struct {
		text string
		err  error
		eof  bool
	}
	lines := make(chan scanned)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 1<<20), 64<<20)
		for sc.Scan() {
			select {
			case lines <- scanned{text: sc.Text()}:
			case <-stop:
				return
			}
		}
		select {
		case lines <- scanned{err: sc.Err(), eof: true}:
		case <-stop:
		}
	}()
	isLabel := func(f string) bool {
		if len(labels) == 0 {
			_, err := strconv.ParseFloat(f, 64)
			return err != nil
		}
		return slices.Contains(labels, f)
	}
	line, seen := 0, false
	for {
		var sl scanned
		select {
		case <-ctx.Done():
			return fmt.Errorf("run: after line %d: %w", line, ctx.Err())
		case sl = <-lines:
		}
		if sl.eof {
			if sl.err != nil {
				return fmt.Errorf("run: read after line %d: %w", line, sl.err)
			}
			return nil
		}
		line++
		text := strings.TrimSpace(sl.text)
		if text == "" {
			continue
		}
		first := !seen
		seen = true
		var vals []float64
		switch text[0] {
		case '[':
			if err := json.Unmarshal([]byte(text), &vals); err != nil {
				return fmt.Errorf("run: line %d: %v: %w", line, err, model.ErrInput)
			}
			if len(vals) != n {
				return fmt.Errorf("run: line %d: JSON array of %d values, model takes %d features: %w", line, len(vals), n, model.ErrInput)
			}
		case '{':
			var obj struct {
				Features []float64 `json:"features"`
			}
			if err := json.Unmarshal([]byte(text), &obj); err != nil {
				return fmt.Errorf("run: line %d: %v: %w", line, err, model.ErrInput)
			}
			vals = obj.Features
			if len(vals) != n {
				return fmt.Errorf("run: line %d: \"features\" has %d values, model takes %d: %w", line, len(vals), n, model.ErrInput)
			}
		default:
			cr := csv.NewReader(strings.NewReader(text))
			cr.FieldsPerRecord = -1
			rec, err := cr.Read()
			if err != nil {
				return fmt.Errorf("run: line %d: %v: %w", line, err, model.ErrInput)
			}
			for i := range rec {
				rec[i] = strings.TrimSpace(rec[i])
			}
			if len(rec) != n && len(rec) != n+1 {
				hint := ""
				if len(rec) == 1 {
					for _, sep := range []string{";", "\t", " "} {
						if strings.Contains(rec[0], sep) {
							hint = fmt.Sprintf("; fields are separated by commas, this line uses %q", sep)
							break
						}
					}
				}
				return fmt.Errorf("run: line %d: %d fields, model takes %d features (plus an optional label column)%s: %w", line, len(rec), n, hint, model.ErrInput)
			}
			if _, err := strconv.ParseFloat(rec[0], 64); err != nil && first {
				continue // a header: n or n+1 names
			}
			if len(rec) == n+1 {
				if !isLabel(rec[n]) {
					return fmt.Errorf("run: line %d: %d fields, model takes %d features; the last field %q is not a label of the model (an index or extra column?): %w", line, len(rec), n, rec[n], model.ErrInput)
				}
				rec = rec[:n]
			}
			for i, f := range rec {
				v, err := strconv.ParseFloat(f, 64)
				if err != nil {
					return fmt.Errorf("run: line %d field %d: %q is not a number: %w", line, i+1, f, model.ErrInput)
				}
				vals = append(vals, v)
			}
		}
		if err := fn(line, vals); err != nil {
			return err
		}
	}
}
