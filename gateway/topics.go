package gateway

import (
	"fmt"
	"strings"
)

// ValidTopicLevel reports whether s can be used as one topic level (site or
// gateway id): non-empty, at most 64 bytes, letters, digits, '-', '_' or '.'.
func ValidTopicLevel(s string) error {
	if s == "" {
		return fmt.Errorf("is empty")
	}
	if len(s) > 64 {
		return fmt.Errorf("%q is longer than 64 bytes", s)
	}
	if i := strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.')
	}); i >= 0 {
		return fmt.Errorf("%q has %q at byte %d; use letters, digits, '-', '_' or '.'", s, s[i], i)
	}
	return nil
}
