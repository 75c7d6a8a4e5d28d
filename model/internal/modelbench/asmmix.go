package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// loopMix is the instruction mix of one 4-row inner loop of a kernel,
// read from its assembly source.
type loopMix struct {
	label  string
	counts map[string]int
	total  int
}

var labelRE = regexp.MustCompile(`^([A-Za-z0-9_]+):`)

// readLoops returns the instruction mix of every label whose name contains
// "loop4", up to the next label. WORD directives count as the instruction
// named in their trailing comment.
func readLoops(path string) ([]loopMix, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var loops []loopMix
	var cur *loopMix
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if m := labelRE.FindStringSubmatch(line); m != nil {
			if cur != nil {
				loops = append(loops, *cur)
				cur = nil
			}
			if strings.Contains(m[1], "loop4") {
				cur = &loopMix{label: m[1], counts: map[string]int{}}
			}
			continue
		}
		if cur == nil || line == "" || strings.HasPrefix(line, "//") || strings.HasPrefix(line, "TEXT") {
			continue
		}
		op := strings.Fields(line)[0]
		if op == "WORD" {
			if i := strings.Index(line, "//"); i >= 0 {
				op = strings.Fields(line[i+2:])[0]
			}
		}
		cur.counts[op]++
		cur.total++
		if op == "BNE" || op == "JLT" {
			loops = append(loops, *cur)
			cur = nil
		}
	}
	if cur != nil {
		loops = append(loops, *cur)
	}
	return loops, sc.Err()
}

func (l loopMix) String() string {
	var ops []string
	for op := range l.counts {
		ops = append(ops, op)
	}
	sort.Strings(ops)
	var b strings.Builder
	for _, op := range ops {
		fmt.Fprintf(&b, " %s×%d", op, l.counts[op])
	}
	return b.String()
}

// macsPerOp is how many int8 multiply-accumulates one instruction does.
var macsPerOp = map[string]int{"VPMADDUBSW": 32, "SMULL": 8, "SMLAL2": 8, "SDOT": 16}

// macs is the multiply-accumulates of one pass through the loop.
func (l loopMix) macs() int {
	n := 0
	for op, c := range l.counts {
		n += c * macsPerOp[op]
	}
	return n
}

func reportMix(arm64Path string) error {
	armLoops, err := readLoops(arm64Path)
	if err != nil {
		return err
	}
	amdPath := filepath.Join(filepath.Dir(arm64Path), "matvec_amd64.s")
	amdLoops, err := readLoops(amdPath)
	if err != nil {
		return err
	}
	if len(amdLoops) != 1 || len(armLoops) == 0 {
		return fmt.Errorf("found %d amd64 and %d arm64 4-row loops", len(amdLoops), len(armLoops))
	}
	amd := amdLoops[0]
	base := float64(amd.total) / float64(amd.macs())
	fmt.Printf("# amd64 avx2 %s: %d instructions per %d MACs:%v\n", amd.label, amd.total, amd.macs(), amd)
	for _, l := range armLoops {
		if l.macs() == 0 {
			return fmt.Errorf("%s: no multiply instructions recognised", l.label)
		}
		per := float64(l.total) / float64(l.macs())
		fmt.Printf("# arm64 %s: %d instructions per %d MACs:%v\n", l.label, l.total, l.macs(), l)
		name := strings.TrimSuffix(l.label, "_loop4")
		fmt.Printf("FIGURE model_arm64_%s_instr_per_mac=%.4g unit=instr/MAC baseline=%.4g ratio=%.3g\n", name, per, base, per/base)
	}
	return nil
}
