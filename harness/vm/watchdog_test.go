package vm

import (
	"testing"
	"time"
)

func TestOverLimit(t *testing.T) {
	s := time.Second
	for _, tc := range []struct {
		name                            string
		elapsed, quiet, timeout, silent time.Duration
		want                            string
	}{
		{"within both", 5 * s, 1 * s, 10 * s, 2 * s, ""},
		{"at the timeout", 10 * s, 0, 10 * s, 2 * s, "timeout"},
		{"at the silence limit, not over it", 5 * s, 2 * s, 10 * s, 2 * s, ""},
		{"over the silence limit", 5 * s, 2*s + 1, 10 * s, 2 * s, "silence"},
		{"late and silent is late", 11 * s, 5 * s, 10 * s, 2 * s, "timeout"},
		{"no limits", time.Hour, time.Hour, 0, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			why, cause := overLimit(tc.elapsed, tc.quiet, tc.timeout, tc.silent)
			wantCause := map[string]error{"": nil, "timeout": errTimeout, "silence": errSilent}[tc.want]
			if why != tc.want || cause != wantCause {
				t.Errorf("overLimit = %q, %v; want %q", why, cause, tc.want)
			}
		})
	}
}
