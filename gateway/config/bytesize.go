package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// ByteSize is a size in bytes written as 2GiB, 500MB, 64KiB or a plain number.
type ByteSize int64

var units = []struct {
	suffix string
	mult   int64
}{
	{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10},
	{"TB", 1e12}, {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}, {"kB", 1e3}, {"B", 1},
}

// ParseByteSize parses a size such as "2GiB".
func ParseByteSize(s string) (ByteSize, error) {
	orig := s
	s = strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	switch {
	case err != nil || math.IsNaN(f) || math.IsInf(f, 0):
		return 0, fmt.Errorf("%q is not a size (e.g. 512MiB, 2GiB)", orig)
	case f < 0:
		return 0, fmt.Errorf("%q is negative; a size is 0 or more (e.g. 512MiB, 2GiB)", orig)
	case f*float64(mult) > 1<<62:
		return 0, fmt.Errorf("%q is too large", orig)
	}
	return ByteSize(f * float64(mult)), nil
}

// UnmarshalYAML accepts "2GiB" or a number of bytes. A bad size is a
// *yaml.TypeError, so decoding goes on and the other fields' problems are
// reported with it.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: a size must be a value like 512MiB, not %s", n.Line, yamlKind(strings.TrimPrefix(n.Tag, "!!")))}}
	}
	v, err := ParseByteSize(n.Value)
	if err != nil {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %v", n.Line, err)}}
	}
	*b = v
	return nil
}

func (b ByteSize) String() string {
	for _, u := range units[:4] {
		if int64(b) >= u.mult && int64(b)%u.mult == 0 {
			return strconv.FormatInt(int64(b)/u.mult, 10) + u.suffix
		}
	}
	return strconv.FormatInt(int64(b), 10) + "B"
}
