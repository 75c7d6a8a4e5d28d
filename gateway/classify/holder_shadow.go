package classify

import (
	"fmt"
	"slices"
	"time"
)

// Recent returns up to n of the most recent windows the recorder keeps,
// across plates, oldest first (by change time).
func (w *WindowRecorder) Recent(n int) [][]float32 {
	return w.collect(n, time.Time{})
}

// Since returns up to n windows of changes after t, oldest first: the live
// changes a model has seen since it was swapped in.
func (w *WindowRecorder) Since(t time.Time, n int) [][]float32 {
	return w.collect(n, t)
}

func (w *WindowRecorder) collect(n int, after time.Time) [][]float32 {
	w.mu.Lock()
	var all []recorded
	for _, rs := range w.plates {
		for _, r := range rs {
			if after.IsZero() || r.at.After(after) {
				all = append(all, r)
			}
		}
	}
	w.mu.Unlock()
	slices.SortStableFunc(all, func(a, b recorded) int { return a.at.Compare(b.at) })
	if !after.IsZero() {
		all = all[:min(n, len(all))] // the first n after t
	} else if len(all) > n {
		all = all[len(all)-n:] // the last n
	}
	out := make([][]float32, len(all))
	for i, r := range all {
		out[i] = r.x
	}
	return out
}

// ShadowResult is a candidate plate model compared with a reference model
// on the same windows.
type ShadowResult struct {
	Windows   int           // windows compared
	Agreeing  int           // windows where both named the same class label
	Failed    int           // windows the candidate could not infer (error)
	Agreement float64       // Agreeing/Windows; 1 when Windows is 0
	Latency   time.Duration // mean candidate inference time per window
}

// Shadow runs cand and ref on each window and compares their top-1 class
// by label (position bin or none), so models whose classes are ordered
// differently still compare fairly. Latency is the candidate's mean
// inference time per window (measured on one zero window when there are
// none). An error is returned only when a model cannot start a session.
func Shadow(cand, ref *Loaded, windows [][]float32) (ShadowResult, error) {
	cs, err := cand.M.NewSessionWith()
	if err != nil {
		return ShadowResult{}, fmt.Errorf("classify: shadow: candidate %q v%d: %w", cand.M.Name, cand.Version, err)
	}
	rs, err := ref.M.NewSessionWith()
	if err != nil {
		return ShadowResult{}, fmt.Errorf("classify: shadow: reference %q v%d: %w", ref.M.Name, ref.Version, err)
	}
	var res ShadowResult
	var spent time.Duration
	for _, x := range windows {
		res.Windows++
		t0 := time.Now()
		co, cerr := cs.Infer(x)
		spent += time.Since(t0)
		if cerr != nil {
			res.Failed++
			continue
		}
		ro, rerr := rs.Infer(x)
		if rerr != nil {
			continue // the reference cannot judge this window: no agreement counted
		}
		if cand.M.Output.Labels[co.Class] == ref.M.Output.Labels[ro.Class] {
			res.Agreeing++
		}
	}
	if res.Windows == 0 {
		x := make([]float32, cand.M.Features())
		t0 := time.Now()
		_, _ = cs.Infer(x)
		spent = time.Since(t0)
		res.Agreement, res.Latency = 1, spent
		return res, nil
	}
	res.Agreement = float64(res.Agreeing) / float64(res.Windows)
	res.Latency = spent / time.Duration(res.Windows)
	return res, nil
}
