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

// macsPerIteration: a 4-row loop covers 4 rows × the bytes one vector load
// of x brings in (16 on arm64, 32 with AVX2).
func macsPerIteration(path string) int {
	if strings.Contains(path, "amd64") {
		return 4 * 32
	}
	return 4 * 16
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
	base := float64(amdLoops[0].total) / float64(macsPerIteration(amdPath))
	fmt.Printf("# amd64 %s: %d instructions per %d MACs:%v\n", amdLoops[0].label, amdLoops[0].total, macsPerIteration(amdPath), amdLoops[0])
	for _, l := range armLoops {
		per := float64(l.total) / float64(macsPerIteration(arm64Path))
		fmt.Printf("# arm64 %s: %d instructions per %d MACs:%v\n", l.label, l.total, macsPerIteration(arm64Path), l)
		name := strings.TrimSuffix(l.label, "_loop4")
		fmt.Printf("FIGURE model_arm64_%s_instr_per_mac=%.4g unit=instr/MAC baseline=%.4g ratio=%.3g\n", name, per, base, per/base)
	}
	return nil
}
