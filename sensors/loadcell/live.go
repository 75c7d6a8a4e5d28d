package loadcell

import (
	"fmt"
	"math"
	"strings"
	"sync/atomic"
)

// RecentCodes is how many raw codes each channel keeps for CollectRecent.
const RecentCodes = 64

// live is the part of a channel that other goroutines may touch while Run
// samples: a calibration waiting to be applied by the sampling goroutine,
// the calibration in use, and the last raw codes read (under cell.mu).
type live struct {
	pending atomic.Pointer[calib] // applied by the sampler before its next code
	applied atomic.Pointer[calib] // in use
	recent  [RecentCodes]int32    // ring of raw codes, guarded by cell.mu
	nrecent int                   // codes written to recent so far, guarded by cell.mu
}

type calib struct {
	offset int32
	cpg    float64
}

// find returns the channel of bin: Channel.Bin, or Stream without its
// "loadcell/" prefix when Bin is empty.
func (s *Source) find(bin string) (*cell, error) {
	for _, c := range s.cells {
		b := c.ch.Bin
		if b == "" {
			b = strings.TrimPrefix(string(c.ch.Stream), "loadcell/")
		}
		if b == bin {
			return c, nil
		}
	}
	return nil, fmt.Errorf("loadcell: %s: no channel for bin %q", s.name, bin)
}

// SetCalibration makes the channel of bin convert codes with offset and
// countsPerGram from its next code on (a live tare or recalibration). It is
// safe to call while Run runs; auto-zero tracking starts again from zero.
func (s *Source) SetCalibration(bin string, offset int32, countsPerGram float64) error {
	c, err := s.find(bin)
	if err != nil {
		return err
	}
	if countsPerGram == 0 || math.IsNaN(countsPerGram) || math.IsInf(countsPerGram, 0) {
		return fmt.Errorf("loadcell: bin %s: counts_per_gram is %v", bin, countsPerGram)
	}
	if offset < MinCode || offset > MaxCode {
		return fmt.Errorf("loadcell: bin %s: offset %d outside the 24-bit range", bin, offset)
	}
	cal := &calib{offset: offset, cpg: countsPerGram}
	c.live.pending.Store(cal)
	c.live.applied.Store(cal)
	return nil
}

// Calibration returns the offset, counts per gram and input mode the
// channel of bin converts with (the last SetCalibration, or what New was
// given).
func (s *Source) Calibration(bin string) (offset int32, countsPerGram float64, mode Mode, err error) {
	c, err := s.find(bin)
	if err != nil {
		return 0, 0, 0, err
	}
	cal := c.live.applied.Load()
	return cal.offset, cal.cpg, c.ch.Mode, nil
}

// CollectRecent returns up to the last RecentCodes raw codes read from the
// channel of bin (spurious -1 codes excluded), oldest first.
func (s *Source) CollectRecent(bin string) ([]int32, error) {
	c, err := s.find(bin)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	n := min(c.live.nrecent, RecentCodes)
	out := make([]int32, 0, n)
	for i := c.live.nrecent - n; i < c.live.nrecent; i++ {
		out = append(out, c.live.recent[i%RecentCodes])
	}
	return out, nil
}

// applyPending installs a calibration set by SetCalibration; called by the
// sampling goroutine, which owns c.ch, the filter and auto-zero.
func (s *Source) applyPending(c *cell) {
	p := c.live.pending.Swap(nil)
	if p == nil {
		return
	}
	c.ch.Offset, c.ch.CountsPerGram = p.offset, p.cpg
	if s.opts.SpikeGrams >= 0 {
		c.flt.floor = s.opts.SpikeGrams * math.Abs(p.cpg)
	}
	c.az.drift, c.az.settled = 0, false
}
