package console

import (
	"bufio"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// hostStamp is the prefix vm.Run puts on every line of console.log.
var hostStamp = regexp.MustCompile(`^\[host +[0-9.]+\] `)

type golden struct {
	Lines     int       `json:"lines"`
	Findings  []Finding `json:"findings"`
	Worst     Kind      `json:"worst,omitempty"`
	LastLines []string  `json:"last_lines"`
}

// TestGoldenConsoles classifies real console logs captured from our VMs
// (testdata/*.log) and compares with testdata/*.golden.json. After a
// deliberate change to the classifier, rerun with -update and review the
// diff.
func TestGoldenConsoles(t *testing.T) {
	logs, _ := filepath.Glob("testdata/*.log")
	if len(logs) == 0 {
		t.Fatal("no console logs in testdata")
	}
	for _, path := range logs {
		t.Run(filepath.Base(path), func(t *testing.T) {
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			m := NewMonitor(3)
			sc := bufio.NewScanner(f)
			sc.Buffer(make([]byte, 1<<20), 1<<20)
			for sc.Scan() {
				m.Line(hostStamp.ReplaceAllString(strings.TrimRight(sc.Text(), "\r"), ""))
			}
			got := golden{Lines: m.Lines(), Findings: m.Findings(), LastLines: m.LastLines()}
			if w, ok := m.Worst(); ok {
				got.Worst = w.Kind
			}
			b, _ := json.MarshalIndent(got, "", "  ")
			gpath := strings.TrimSuffix(path, ".log") + ".golden.json"
			if *update {
				if err := os.WriteFile(gpath, append(b, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(gpath)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if strings.TrimSpace(string(want)) != strings.TrimSpace(string(b)) {
				t.Errorf("classification of %s changed:\n got: %s\nwant: %s", path, b, want)
			}
		})
	}
}
