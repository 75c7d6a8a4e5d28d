package modelcli

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	simdata "github.com/shelfgate/shelfgate/firmware-sim/dataset"
	"github.com/shelfgate/shelfgate/firmware-sim/warehouse"
	"github.com/shelfgate/shelfgate/model"
	"github.com/shelfgate/shelfgate/model/features"
	"github.com/shelfgate/shelfgate/model/quantize"
	"github.com/shelfgate/shelfgate/model/train"
)

func init() {
	commands["train"] = cmdTrain
	commands["synth"] = cmdSynth
	commands["windows"] = cmdWindows
	commands["quantize"] = cmdQuantize
	commands["eval"] = cmdEval
	commands["inspect"] = cmdInspect
	commands["run"] = cmdRun
	commands["bench"] = cmdBench
}

// newFlags returns a flag set whose parse errors are usage errors.
func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("shelfctl model "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

func parse(fs *flag.FlagSet, args []string, nargs int, argsUsage string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return fmt.Errorf("%s: help requested: %w", fs.Name(), ErrUsage)
		}
		return fmt.Errorf("%s: %v: %w", fs.Name(), err, ErrUsage)
	}
	if nargs >= 0 && fs.NArg() != nargs {
		fmt.Fprintf(fs.Output(), "usage: %s [flags] %s\n", fs.Name(), argsUsage)
		fs.PrintDefaults()
		return fmt.Errorf("%s: want %d argument(s) (%s), got %d: %w", fs.Name(), nargs, argsUsage, fs.NArg(), ErrUsage)
	}
	return nil
}

// cancellable runs fn, which cannot be interrupted (model/train takes no
// context), and returns early with ctx's error when ctx is done first; fn
// then finishes in the background, and the command's process exits.
func cancellable(ctx context.Context, fn func() error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- fn() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func openIn(path string, stdin io.Reader) (io.ReadCloser, error) {
	if path == "-" {
		return io.NopCloser(stdin), nil
	}
	return os.Open(path)
}

// writeFile writes data atomically: a temporary file renamed over path.
func writeFile(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// readDataset reads a CSV or, when it starts with the dataset file magic, a
// features dataset file (as shelfdata writes it). labels, when given, fix
// the class numbering.
func readDataset(path string, labels []string, stdin io.Reader) (*train.Dataset, error) {
	f, err := openIn(path, stdin)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	br := bufio.NewReader(f)
	if magic, _ := br.Peek(len(features.DatasetMagic)); string(magic) != features.DatasetMagic {
		return train.ReadCSV(br, labels)
	}
	d, err := features.ReadDataset(br)
	if err != nil || len(labels) == 0 {
		return d, err
	}
	index := map[string]int{}
	for i, l := range labels {
		index[l] = i
	}
	for i, y := range d.Y {
		c, ok := index[d.Labels[y]]
		if !ok {
			return nil, fmt.Errorf("%s: row %d: unknown label %q: %w", path, i, d.Labels[y], features.ErrData)
		}
		d.Y[i] = c
	}
	d.Labels = append([]string(nil), labels...)
	return d, nil
}

func loadModel(ctx context.Context, path string, trusted []string) (*model.Model, error) {
	return loadModelWith(ctx, path, trusted, "")
}

// loadModelWith loads with kernel (when not empty) checking the golden
// vectors.
func loadModelWith(ctx context.Context, path string, trusted []string, kernel string) (*model.Model, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	opts := model.DecodeOptions{Kernel: kernel}
	for _, k := range trusted {
		b, err := hex.DecodeString(strings.TrimSpace(k))
		if err != nil || len(b) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("trusted key %q: want %d hex-encoded bytes: %w", k, ed25519.PublicKeySize, ErrUsage)
		}
		opts.TrustedKeys = append(opts.TrustedKeys, b)
	}
	m, err := model.LoadContext(ctx, f, opts)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

func loadFloat(path string) (*train.MLP, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return train.LoadMLP(bufio.NewReader(f))
}

// readKey reads an ed25519 private key file: the hex-encoded 32-byte seed or
// 64-byte private key.
func readKey(path string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	raw, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, fmt.Errorf("key %s: not hex: %w", path, err)
	}
	switch len(raw) {
	case ed25519.SeedSize:
		return ed25519.NewKeyFromSeed(raw), nil
	case ed25519.PrivateKeySize:
		return ed25519.PrivateKey(raw), nil
	}
	return nil, fmt.Errorf("key %s: %d bytes, want a %d-byte seed or %d-byte key", path, len(raw), ed25519.SeedSize, ed25519.PrivateKeySize)
}

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

func parseInts(s string) ([]int, error) {
	var out []int
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		n, err := strconv.Atoi(p)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%q is not a positive integer", p)
		}
		out = append(out, n)
	}
	return out, nil
}

func cmdSynth(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	fs := newFlags("synth", stderr)
	o := train.SyntheticOptions{}
	fs.IntVar(&o.Samples, "samples", 10000, "rows")
	fs.IntVar(&o.Features, "features", 1000, "features per row")
	fs.IntVar(&o.Classes, "classes", 100, "classes")
	fs.IntVar(&o.Latent, "latent", 16, "latent dimension of the class structure")
	fs.Float64Var(&o.Noise, "noise", 0.35, "latent noise")
	fs.Uint64Var(&o.Seed, "seed", 1, "seed of the problem (classes and feature map)")
	fs.Uint64Var(&o.SampleSeed, "sample-seed", 0, "seed of the rows drawn; another value gives an independent set of the same problem")
	out := fs.String("o", "-", "output CSV (- for stdout)")
	if err := parse(fs, args, 0, ""); err != nil {
		return err
	}
	if o.Samples <= 0 || o.Features <= 0 || o.Classes < 2 {
		return fmt.Errorf("synth: samples, features must be positive and classes ≥ 2: %w", ErrUsage)
	}
	var d *train.Dataset
	if err := cancellable(ctx, func() error { d = train.Synthetic(o); return nil }); err != nil {
		return fmt.Errorf("synth: %w", err)
	}
	return writeDataset(d, *out, stdout)
}

// writeDataset writes d as CSV to path, or to stdout for "-".
func writeDataset(d *train.Dataset, path string, stdout io.Writer) error {
	var b bytes.Buffer
	if err := d.WriteCSV(&b); err != nil {
		return err
	}
	if path == "-" {
		_, err := stdout.Write(b.Bytes())
		return err
	}
	return writeFile(path, b.Bytes())
}

func cmdWindows(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	fs := newFlags("windows", stderr)
	cfg := warehouse.DefaultConfig()
	o := simdata.Options{}
	fs.Int64Var(&cfg.Seed, "seed", cfg.Seed, "simulator seed (samples and labels)")
	fs.IntVar(&cfg.Shelves, "shelves", cfg.Shelves, "shelves")
	fs.IntVar(&cfg.BinsPerShelf, "bins", cfg.BinsPerShelf, "bins per shelf")
	fs.Float64Var(&cfg.NoiseGrams, "noise", cfg.NoiseGrams, "load-cell noise, grams")
	fs.Float64Var(&cfg.PicksPerBinPerHour, "visits", cfg.PicksPerBinPerHour, "visits per bin per hour")
	fs.DurationVar(&o.Duration, "duration", 6*time.Hour, "virtual time per bin")
	samples := fs.Int("samples", 30, "window length in samples (0.5 s of them before the visit)")
	fs.Float64Var(&o.Idle, "idle", 0.5, "idle windows per visit")
	fs.Uint64Var(&o.Seed, "idle-seed", 1, "seed for placing idle windows")
	out := fs.String("o", "-", "output CSV (- for stdout)")
	if err := parse(fs, args, 0, ""); err != nil {
		return err
	}
	o.Config = cfg
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("windows: %v: %w", err, ErrUsage)
	}
	o.Window = features.DefaultWindow(cfg.SampleRate)
	o.Window.Samples = *samples
	if err := o.Window.Validate(); err != nil {
		return fmt.Errorf("windows: -samples %d: %v: %w", *samples, err, ErrUsage)
	}
	var d *train.Dataset
	err := cancellable(ctx, func() (err error) { d, err = simdata.Build(o); return err })
	if err != nil {
		return fmt.Errorf("windows: %w", err)
	}
	fmt.Fprintf(stderr, "%d windows of %d samples, classes %v\n", len(d.X), d.Features(), d.Labels)
	return writeDataset(d, *out, stdout)
}

func cmdTrain(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlags("train", stderr)
	c := train.DefaultConfig()
	hidden := fs.String("hidden", "64", "hidden layer sizes, comma-separated")
	fs.IntVar(&c.Epochs, "epochs", c.Epochs, "maximum epochs")
	fs.IntVar(&c.Batch, "batch", c.Batch, "mini-batch size")
	fs.Float64Var(&c.LR, "lr", c.LR, "learning rate")
	fs.StringVar(&c.Optimizer, "optimizer", c.Optimizer, "adam or sgd (with -momentum)")
	fs.Float64Var(&c.Momentum, "momentum", c.Momentum, "SGD momentum")
	fs.Float64Var(&c.WeightDecay, "weight-decay", c.WeightDecay, "L2 weight decay")
	fs.Float64Var(&c.ValFrac, "val", c.ValFrac, "validation fraction for early stopping")
	fs.IntVar(&c.Patience, "patience", c.Patience, "epochs without validation improvement before stopping")
	fs.Uint64Var(&c.Seed, "seed", c.Seed, "random seed")
	out := fs.String("o", "model.float.json", "output float model (JSON)")
	quiet := fs.Bool("q", false, "no per-epoch progress")
	if err := parse(fs, args, 1, "data.csv"); err != nil {
		return err
	}
	var err error
	if c.Hidden, err = parseInts(*hidden); err != nil {
		return fmt.Errorf("train: -hidden: %v: %w", err, ErrUsage)
	}
	if c.Optimizer != train.Adam && c.Optimizer != train.SGD {
		return fmt.Errorf("train: -optimizer %q: want adam or sgd: %w", c.Optimizer, ErrUsage)
	}
	d, err := readDataset(fs.Arg(0), nil, stdin)
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	if !*quiet {
		c.Progress = func(s train.EpochStats) {
			mark := ""
			if s.Best {
				mark = " *"
			}
			fmt.Fprintf(stderr, "epoch %3d  train loss %.4f  val loss %.4f  val acc %.4f%s\n", s.Epoch, s.TrainLoss, s.ValLoss, s.ValAcc, mark)
		}
	}
	var m *train.MLP
	var res train.Result
	if err := cancellable(ctx, func() (err error) { m, res, err = train.Fit(d, c); return err }); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	var b bytes.Buffer
	if err := m.Save(&b); err != nil {
		return err
	}
	if err := writeFile(*out, b.Bytes()); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	fmt.Fprintf(stdout, "trained %v on %d rows: %d epochs, best %d, validation loss %.4f accuracy %.4f; wrote %s\n", m.Sizes, len(d.X), res.Epochs, res.BestEpoch, res.ValLoss, res.ValAcc, *out)
	return ctx.Err()
}

func cmdQuantize(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlags("quantize", stderr)
	var o quantize.Options
	floatPath := fs.String("f", "model.float.json", "float model from train")
	observer := fs.String("observer", "percentile", "calibration observer: percentile (the default, chosen by measured int8/float agreement) or minmax")
	pct := fs.Float64("percentile", quantize.DefaultPercentile, "percentile for -observer percentile")
	rounding := fs.String("rounding", "double", "requantization rounding: double (TFLite default) or single")
	name := fs.String("name", "", "model name")
	version := fs.Uint64("version", 1, "model version (monotonic)")
	golden := fs.Int("golden", 8, "golden vectors to embed")
	rows := fs.Int("calib-rows", 2000, "calibration rows to use")
	fs.Float64Var(&o.LogitWindow, "logit-window", 0, "narrow the logit range to this far below the smallest top logit (0: off)")
	key := fs.String("sign-key", "", "ed25519 private key file (hex seed) to sign with")
	heldOut := fs.String("eval", "", "held-out CSV: report float vs int8 accuracy and top-1 agreement on it")
	out := fs.String("o", "model.sgm", "output model file")
	if err := parse(fs, args, 1, "calibration.csv"); err != nil {
		return err
	}
	o.Name, o.Version, o.Golden = *name, *version, *golden
	switch *rounding {
	case "double":
		o.Rounding = model.DoubleRounding
	case "single":
		o.Rounding = model.SingleRounding
	default:
		return fmt.Errorf("quantize: -rounding %q: %w", *rounding, ErrUsage)
	}
	switch *observer {
	case "minmax":
		o.NewObserver = func() quantize.Observer { return &quantize.MinMax{} }
	case "percentile":
		p := *pct
		if p <= 50 || p > 100 {
			return fmt.Errorf("quantize: -percentile %g: want (50, 100]: %w", p, ErrUsage)
		}
		o.NewObserver = func() quantize.Observer { return &quantize.Percentile{P: p} }
	default:
		return fmt.Errorf("quantize: -observer %q: %w", *observer, ErrUsage)
	}
	f, err := loadFloat(*floatPath)
	if err != nil {
		return fmt.Errorf("quantize: %w", err)
	}
	d, err := readDataset(fs.Arg(0), f.Labels, stdin)
	if err != nil {
		return fmt.Errorf("quantize: %w", err)
	}
	calib := d.X[:min(*rows, len(d.X))]
	q, err := quantize.QuantizeContext(ctx, f, calib, o)
	if err != nil {
		return err
	}
	var signer ed25519.PrivateKey
	if *key != "" {
		if signer, err = readKey(*key); err != nil {
			return fmt.Errorf("quantize: %w", err)
		}
	}
	data, err := model.Encode(q, signer)
	if err != nil {
		return err
	}
	if err := writeFile(*out, data); err != nil {
		return fmt.Errorf("quantize: %w", err)
	}
	fmt.Fprintf(stdout, "quantized %d layers with %d calibration rows (%s observer, %s rounding): %d bytes, sha256 %x, signed %v; wrote %s\n",
		len(q.Layers), len(calib), *observer, *rounding, len(data), q.Digest, q.Signed, *out)
	if *heldOut != "" {
		d, err := readDataset(*heldOut, f.Labels, stdin)
		if err != nil {
			return fmt.Errorf("quantize: -eval: %w", err)
		}
		rep, err := quantize.CompareContext(ctx, f, q, d)
		if err != nil {
			return fmt.Errorf("quantize: -eval: %w", err)
		}
		fmt.Fprintf(stdout, "held-out %d rows: float accuracy %.2f%%, int8 accuracy %.2f%%, drop %.2f points, top-1 agreement %.2f%%\n",
			rep.Rows, 100*rep.FloatAcc, 100*rep.Int8Acc, 100*(rep.FloatAcc-rep.Int8Acc), 100*rep.Agreement)
	}
	return nil
}

func cmdEval(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlags("eval", stderr)
	modelPath := fs.String("m", "model.sgm", "int8 model")
	floatPath := fs.String("f", "", "float model, to report float accuracy and agreement")
	confusion := fs.String("confusion", "auto", "print the confusion matrix: auto (≤ 20 classes), always, never")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if err := parse(fs, args, 1, "test.csv"); err != nil {
		return err
	}
	q, err := loadModel(ctx, *modelPath, nil)
	if err != nil {
		return fmt.Errorf("eval: %w", err)
	}
	d, err := readDataset(fs.Arg(0), q.Output.Labels, stdin)
	if err != nil {
		return fmt.Errorf("eval: %w", err)
	}
	var rep quantize.Report
	if *floatPath != "" {
		f, err := loadFloat(*floatPath)
		if err != nil {
			return fmt.Errorf("eval: %w", err)
		}
		if rep, err = quantize.CompareContext(ctx, f, q, d); err != nil {
			return fmt.Errorf("eval: %w", err)
		}
	} else {
		if rep, err = quantize.CompareContext(ctx, nil, q, d); err != nil {
			return fmt.Errorf("eval: %w", err)
		}
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(rep)
	}
	fmt.Fprintf(stdout, "rows %d\nint8 accuracy %.2f%%\n", rep.Rows, 100*rep.Int8Acc)
	if *floatPath != "" {
		fmt.Fprintf(stdout, "float accuracy %.2f%%\naccuracy drop %.2f points\ntop-1 agreement %.2f%%\n", 100*rep.FloatAcc, 100*(rep.FloatAcc-rep.Int8Acc), 100*rep.Agreement)
	}
	if *confusion == "always" || (*confusion == "auto" && len(rep.Confusion) <= 20) {
		printConfusion(stdout, rep.Confusion, q.Output.Labels)
	}
	return nil
}

func printConfusion(w io.Writer, c [][]int, labels []string) {
	lab := func(i int) string {
		if i < len(labels) {
			return labels[i]
		}
		return strconv.Itoa(i)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "true\\pred\t")
	for j := range c {
		fmt.Fprintf(tw, "%s\t", lab(j))
	}
	fmt.Fprintln(tw)
	for i, row := range c {
		fmt.Fprintf(tw, "%s\t", lab(i))
		for _, n := range row {
			fmt.Fprintf(tw, "%d\t", n)
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
}

func cmdBench(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	fs := newFlags("bench", stderr)
	kernel := fs.String("kernel", "", "kernel to use (default: fastest; see inspect)")
	dur := fs.Duration("time", 2*time.Second, "how long to run")
	batch := fs.Int("batch", 1, "batch size")
	if err := parse(fs, args, 1, "model.sgm"); err != nil {
		return err
	}
	m, err := loadModelWith(ctx, fs.Arg(0), nil, *kernel)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if *kernel == "" {
		if *kernel, err = model.DefaultKernel(); err != nil {
			return fmt.Errorf("bench: %w", err)
		}
	}
	s, err := m.NewSessionWith(model.WithKernel(*kernel))
	if err != nil {
		return fmt.Errorf("bench: %v: %w", err, ErrUsage)
	}
	if *batch < 1 {
		return fmt.Errorf("bench: -batch %d: %w", *batch, ErrUsage)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	nf := m.Features()
	feats := make([]float32, *batch*nf)
	for i := range feats {
		feats[i] = m.Input.Mean[i%nf] + m.Input.Std[i%nf]*float32(rng.NormFloat64())
	}
	dst, classes := make([]int8, *batch*m.Classes()), make([]int, *batch)
	n := 0
	start := time.Now()
	for time.Since(start) < *dur {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		for i := 0; i < 16; i++ {
			if err := s.InferBatch(dst, classes, feats); err != nil {
				return err
			}
		}
		n += 16 * *batch
	}
	el := time.Since(start)
	fmt.Fprintf(stdout, "kernel %s batch %d: %d inferences in %v: %.2f µs/inference, %.0f inferences/s\n",
		*kernel, *batch, n, el.Round(time.Millisecond), float64(el.Microseconds())/float64(n), float64(n)/el.Seconds())
	return nil
}
