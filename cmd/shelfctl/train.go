package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/shelfgate/shelfgate/gateway/classify"
	"github.com/shelfgate/shelfgate/gateway/modelsync"
	"github.com/shelfgate/shelfgate/gateway/wire/shelfv1"
	"github.com/shelfgate/shelfgate/model"
	"github.com/shelfgate/shelfgate/model/features"
	"github.com/shelfgate/shelfgate/model/modelcli"
	"github.com/shelfgate/shelfgate/model/quantize"
	"github.com/shelfgate/shelfgate/model/train"
)

// plateLabels are a plate model's classes in the order the shipped model
// and `shelfctl eval --windows` use: none, then the position bins.
func plateLabels() []string {
	ls := []string{classify.NoneLabel}
	for b := range classify.PositionBins {
		ls = append(ls, classify.BinLabel(b))
	}
	return ls
}

// modelCmd is `shelfctl model`: `model train --from DIR` retrains a plate
// model from collected samples here (it needs the gateway's plate window
// and key loaders, which model/modelcli must not import); everything else
// is modelcli's.
func modelCmd(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "train" && slices.ContainsFunc(args[1:], func(a string) bool {
		return a == "--from" || a == "-from" || strings.HasPrefix(a, "--from=") || strings.HasPrefix(a, "-from=")
	}) {
		return trainFromSamples(ctx, args[1:], stdout, stderr)
	}
	return modelcli.Main(ctx, args, stdin, stdout, stderr)
}

const trainSynopsis = "train --from DIR [--warm-start FLOAT.json] [--sim FILE.sgds ...] [--holdout F] [--epochs N] [--patience N] [--sign-key KEY] [--name N] [--version V] -o MODEL.sgm"

// trainFromSamples retrains the plate model from the CSV datasets collect
// --samples wrote under DIR (plus simulator windows with --sim): a
// held-out split for evaluation, float training (from the warm-start
// model's weights when given), percentile quantization as `make model`
// does, a signature with a key from `shelfctl keys gen`. It writes the
// model and, beside it, the float model a later run can warm-start from.
func trainFromSamples(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fl := flag.NewFlagSet("model train", flag.ContinueOnError)
	fl.SetOutput(stderr)
	from := fl.String("from", "", "directory of collected samples (shelfctl collect --samples DIR): every *.csv under it")
	warm := fl.String("warm-start", "", "float model to start from (the .float.json written beside a model by this command or `make model`)")
	var sims listFlags
	fl.Var(&sims, "sim", "simulator windows to train on too (shelfctl eval --windows FILE.sgds); repeatable")
	holdout := fl.Float64("holdout", 0.2, "fraction of the samples held out for evaluation (never trained on)")
	seed := fl.Uint64("seed", 1, "random seed (split, initialization, batches)")
	epochs := fl.Int("epochs", 60, "maximum epochs")
	patience := fl.Int("patience", 8, "epochs without validation improvement before training stops (a warm start's first epochs often do not improve)")
	hidden := fl.Int("hidden", 64, "hidden units (ignored with --warm-start)")
	keyPath := fl.String("sign-key", "", "ed25519 private key (PEM or OpenSSH, from shelfctl keys gen) to sign the model with")
	name := fl.String("name", "plates", "model name")
	version := fl.Uint64("version", 0, "model version (must be above the gateways' installed one)")
	out := fl.String("o", "", "output model file (.sgm); the float model goes to the same name + .float.json")
	if err := parseFlags(fl, args, stdout, stderr); err != nil {
		return err
	}
	switch {
	case fl.NArg() > 0:
		return fmt.Errorf("%w: model train takes no arguments, got %q", errUsage, fl.Args())
	case *from == "":
		return fmt.Errorf("%w: model train needs --from DIR", errUsage)
	case *out == "":
		return fmt.Errorf("%w: model train needs -o MODEL.sgm", errUsage)
	case *version == 0:
		return fmt.Errorf("%w: model train needs --version V (above the installed model's)", errUsage)
	case *patience < 1 || *epochs < 1:
		return fmt.Errorf("%w: --epochs %d and --patience %d must be at least 1", errUsage, *epochs, *patience)
	case !(*holdout > 0 && *holdout < 1):
		return fmt.Errorf("%w: --holdout %v must be between 0 and 1", errUsage, *holdout)
	}
	var signer ed25519.PrivateKey
	if *keyPath != "" {
		k, err := modelsync.LoadPrivateKey(*keyPath)
		if err != nil {
			return fmt.Errorf("--sign-key: %w", err)
		}
		signer = k
	}
	samples, files, err := readSampleDir(*from)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "samples: %d rows from %d files under %s %v\n", len(samples.X), files, *from, countsString(samples))
	// The held-out split is of the gateways' samples only: the figure that
	// matters is on the shelf the samples came from.
	trainSet, test := samples.Split(*holdout, *seed)
	if len(test.X) == 0 || len(trainSet.X) == 0 {
		return fmt.Errorf("%d samples leave an empty %s split at --holdout %v: collect more", len(samples.X), map[bool]string{true: "held-out", false: "training"}[len(test.X) == 0], *holdout)
	}
	parts := []*features.Dataset{trainSet}
	for _, p := range sims {
		d, err := readDatasetFile(p)
		if err != nil {
			return err
		}
		parts = append(parts, d)
		fmt.Fprintf(stdout, "simulator: %d rows from %s\n", len(d.X), p)
	}
	all, err := features.Merge(parts...)
	if err != nil {
		return fmt.Errorf("merge samples and simulator data: %w", err)
	}
	cfg := train.DefaultConfig()
	cfg.Hidden, cfg.Epochs, cfg.Seed, cfg.Patience = []int{*hidden}, *epochs, *seed, *patience
	var before *train.MLP
	if *warm != "" {
		if before, err = loadFloatModel(*warm); err != nil {
			return err
		}
		cfg.Init = before
	}
	var f *train.MLP
	var res train.Result
	if err := cancellable(ctx, func() (err error) { f, res, err = train.Fit(all, cfg); return err }); err != nil {
		return err
	}
	calib := all.X[:min(2000, len(all.X))]
	q, err := quantize.QuantizeContext(ctx, f, calib, quantize.Options{Name: *name, Version: *version, Golden: 8,
		NewObserver: func() quantize.Observer { return &quantize.Percentile{P: 99.99} }})
	if err != nil {
		return err
	}
	data, err := model.Encode(q, signer)
	if err != nil {
		return err
	}
	rep, err := quantize.CompareContext(ctx, f, q, test)
	if err != nil {
		return err
	}
	var fb bytes.Buffer
	if err := f.Save(&fb); err != nil {
		return err
	}
	if err := writeFileAtomic(*out+".float.json", fb.Bytes()); err != nil {
		return err
	}
	if err := writeFileAtomic(*out, data); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "trained on %d rows (%d samples, %d simulator): %d epochs, best %d\n", len(all.X), len(trainSet.X), len(all.X)-len(trainSet.X), res.Epochs, res.BestEpoch)
	if before != nil {
		fmt.Fprintf(stdout, "held-out %d samples: warm-start model accuracy %.2f%%\n", len(test.X), 100*before.Accuracy(test))
	}
	fmt.Fprintf(stdout, "held-out %d samples: float accuracy %.2f%%, int8 accuracy %.2f%%, top-1 agreement %.2f%%\n",
		rep.Rows, 100*rep.FloatAcc, 100*rep.Int8Acc, 100*rep.Agreement)
	fmt.Fprintf(stdout, "wrote %s (%s version %d, %d bytes, signed %v) and %s\n", *out, *name, *version, len(data), signer != nil, *out+".float.json")
	return nil
}

// readSampleDir reads every *.csv under dir as plate-window rows with the
// plate labels.
func readSampleDir(dir string) (*features.Dataset, int, error) {
	var paths []string
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !e.IsDir() && strings.HasSuffix(p, ".csv") {
			paths = append(paths, p)
		}
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("--from %s: %w", dir, err)
	}
	if len(paths) == 0 {
		return nil, 0, fmt.Errorf("--from %s: no *.csv sample files (shelfctl collect --samples %s writes them)", dir, dir)
	}
	sort.Strings(paths)
	win := classify.PlateWindow(classify.ModelRate)
	var parts []*features.Dataset
	for _, p := range paths {
		d, err := readDatasetFile(p)
		if err != nil {
			return nil, 0, err
		}
		if d.Features() != win.Len() {
			return nil, 0, fmt.Errorf("%s: %d features per row, the plate window %s has %d", p, d.Features(), win, win.Len())
		}
		d.Names = win.Names()
		parts = append(parts, d)
	}
	d, err := features.Merge(parts...)
	if err != nil {
		return nil, 0, fmt.Errorf("--from %s: %w", dir, err)
	}
	return d, len(paths), nil
}

// readDatasetFile reads a dataset file: .sgds (binary) or CSV, with the
// plate labels fixed.
func readDatasetFile(path string) (*features.Dataset, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if strings.HasSuffix(path, ".sgds") {
		d, err := features.ReadDataset(f)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if !slices.Equal(d.Labels, plateLabels()) {
			return nil, fmt.Errorf("%s: labels %v are not the plate labels", path, d.Labels)
		}
		return d, nil
	}
	d, err := features.ReadCSV(f, plateLabels())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return d, nil
}

func loadFloatModel(path string) (*train.MLP, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--warm-start: %w", err)
	}
	defer f.Close()
	m, err := train.LoadMLP(f)
	if err != nil {
		return nil, fmt.Errorf("--warm-start %s: %w (give the float model, the .float.json beside the .sgm)", path, err)
	}
	return m, nil
}

func countsString(d *features.Dataset) string {
	c := d.Counts()
	var parts []string
	for _, l := range d.Labels {
		if c[l] > 0 {
			parts = append(parts, l+":"+strconv.Itoa(c[l]))
		}
	}
	return "{" + strings.Join(parts, " ") + "}"
}

type listFlags []string

func (l *listFlags) String() string     { return strings.Join(*l, ",") }
func (l *listFlags) Set(s string) error { *l = append(*l, s); return nil }

// cancellable runs fn, returning ctx's error if ctx ends first (fn keeps
// running to its end in the background; the process is about to exit).
func cancellable(ctx context.Context, fn func() error) error {
	done := make(chan error, 1)
	go func() { done <- fn() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// writeFileAtomic writes data to a temporary file beside path, syncs it
// and renames it over path.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// sampleWriter keeps collected samples as CSV datasets, one file per
// gateway and model version: DIR/<site>/<gateway>/model-v<N>.csv, a header
// of the plate window's feature names and "label", then one row per sample
// with features. Every sample, trainable or not, is also appended to
// DIR/samples.jsonl.
type sampleWriter struct {
	dir   string
	files map[string]*csv.Writer
	fs    []*os.File
	jsonl *os.File
	names []string

	Rows, Untrainable int
}

func newSampleWriter(dir string) (*sampleWriter, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("--samples: %w", err)
	}
	j, err := os.OpenFile(filepath.Join(dir, "samples.jsonl"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("--samples: %w", err)
	}
	return &sampleWriter{dir: dir, files: map[string]*csv.Writer{}, jsonl: j, names: classify.PlateWindow(classify.ModelRate).Names()}, nil
}

// add keeps one sample body from site's gateway gw.
func (w *sampleWriter) add(site, gw string, body []byte) error {
	s, err := shelfv1.DecodeSample(body)
	if err != nil {
		return err
	}
	if _, err := w.jsonl.Write(append(bytes.TrimSpace(body), '\n')); err != nil {
		return err
	}
	if len(s.Features) != len(w.names) || s.Rate != classify.ModelRate || !slices.Contains(plateLabels(), s.Label) {
		w.Untrainable++
		return nil
	}
	key := filepath.Join(site, gw, fmt.Sprintf("model-v%d.csv", s.ModelVersion))
	cw, ok := w.files[key]
	if !ok {
		path := filepath.Join(w.dir, key)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		_, statErr := os.Stat(path)
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return err
		}
		w.fs = append(w.fs, f)
		cw = csv.NewWriter(f)
		if errors.Is(statErr, os.ErrNotExist) {
			cw.Write(append(append([]string(nil), w.names...), "label"))
		}
		w.files[key] = cw
	}
	rec := make([]string, 0, len(s.Features)+1)
	for _, v := range s.Features {
		rec = append(rec, strconv.FormatFloat(float64(v), 'g', -1, 32))
	}
	if err := cw.Write(append(rec, s.Label)); err != nil {
		return err
	}
	w.Rows++
	return nil
}

// flush writes what is buffered to the files and syncs them.
func (w *sampleWriter) flush() error {
	var errs []error
	for _, cw := range w.files {
		cw.Flush()
		errs = append(errs, cw.Error())
	}
	for _, f := range w.fs {
		errs = append(errs, f.Sync())
	}
	errs = append(errs, w.jsonl.Sync())
	return errors.Join(errs...)
}

func (w *sampleWriter) close() error {
	err := w.flush()
	for _, f := range w.fs {
		err = errors.Join(err, f.Close())
	}
	return errors.Join(err, w.jsonl.Close())
}
