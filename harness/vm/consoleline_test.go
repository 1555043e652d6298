package vm

import (
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestLineWriter(t *testing.T) {
	long := strings.Repeat("x", maxLine)
	for _, tc := range []struct {
		name   string
		writes []string
		want   []string
	}{
		{"serial line ends", []string{"a\r\nb\n"}, []string{"a", "b"}},
		{"line across writes", []string{"Linux ver", "sion 6.18\r", "\n"}, []string{"Linux version 6.18"}},
		{"trailing partial line at close", []string{"a\r\n", "end without newline"}, []string{"a", "end without newline"}},
		{"empty lines stay", []string{"\r\n\r\na\n"}, []string{"", "", "a"}},
		{"a line at the bound is whole", []string{long + "\r\n"}, []string{long}},
		{"a longer line is cut", []string{long, "yz\n"}, []string{long, "yz"}},
		{"output without newline is cut as it comes", []string{long + long[:10]}, []string{long, long[:10]}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var log strings.Builder
			var got []string
			w := newLineWriter(time.Now(), &log, func(_ time.Duration, line string) { got = append(got, line) })
			for _, s := range tc.writes {
				if n, err := w.Write([]byte(s)); n != len(s) || err != nil {
					t.Fatalf("Write(%d bytes) = %d, %v", len(s), n, err)
				}
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("lines %.80q, want %.80q", got, tc.want)
			}
			var logged []string
			for _, l := range strings.SplitAfter(log.String(), "\n") {
				if l == "" {
					continue
				}
				m := regexp.MustCompile(`^\[host +\d+\.\d{3}\] (.*)\n$`).FindStringSubmatch(l)
				if m == nil {
					t.Fatalf("log line %.80q lacks its host time", l)
				}
				logged = append(logged, m[1])
			}
			if fmt.Sprint(logged) != fmt.Sprint(tc.want) {
				t.Errorf("log holds %.80q, want %.80q", logged, tc.want)
			}
		})
	}
}
