package qualify

import (
	"encoding/xml"
	"fmt"
	"io"
)

type junitSuite struct {
	XMLName  xml.Name    `xml:"testsuite"`
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Time     string      `xml:"time,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name    string        `xml:"name,attr"`
	Class   string        `xml:"classname,attr"`
	Failure *junitFailure `xml:"failure,omitempty"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Text    string `xml:",chardata"`
}

// WriteJUnit writes the qualification as one JUnit suite, a test case
// per part (upgrade, rollback, soak) and one per soak hop; each part's
// own scenarios are in its directory's results.xml.
func WriteJUnit(w io.Writer, r *Result) error {
	s := junitSuite{Name: fmt.Sprintf("qualify %s -> %s", withArgs(r.From, r.FromArgs), withArgs(r.To, r.ToArgs)), Time: fmt.Sprintf("%.1f", r.Elapsed)}
	add := func(name, class, cause string, red bool) {
		c := junitCase{Name: name, Class: class}
		if red {
			c.Failure = &junitFailure{Message: cause, Text: cause}
			s.Failures++
		}
		s.Cases = append(s.Cases, c)
		s.Tests++
	}
	for _, p := range r.Parts {
		add(p.Name, "qualify", p.Cause, p.Verdict != Green)
	}
	for _, h := range r.Hops[min(1, len(r.Hops)):] {
		add(fmt.Sprintf("hop %d (%s)", h.Hop, h.Kernel), "qualify.soak", h.Problem, h.Problem != "")
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(s); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}
