package plan

import "testing"

func TestCheckApplies(t *testing.T) {
	caps := map[string]bool{"sparse": true, "hugetlb": true, "prev:hugetlb": true}
	for _, tc := range []struct {
		when string
		want bool
	}{
		{"", true},
		{"sparse", true},
		{"!sparse", false},
		{"memfd-v3", false},
		{"!memfd-v3", true},
		{"hugetlb&prev:hugetlb", true},
		{"hugetlb&!prev:hugetlb", false},
		{"hugetlb&memfd-v3", false},
		{"!memfd-v3&sparse&hugetlb", true},
	} {
		if got := (Check{When: tc.when}).Applies(caps); got != tc.want {
			t.Errorf("When %q: Applies = %v, want %v", tc.when, got, tc.want)
		}
	}
}

// Expectation takes the first ExpectByCap whose condition holds, with the
// same conditions as checks.
func TestExpectation(t *testing.T) {
	st := Step{Expect: "ENOENT", ExpectByCap: []CapExpect{
		{Cap: "hugetlb&!memfd-v3", Expect: "EIO"},
		{Cap: "hugetlb", Expect: "ok"},
	}}
	for _, tc := range []struct {
		caps map[string]bool
		want string
	}{
		{map[string]bool{}, "ENOENT"},
		{map[string]bool{"hugetlb": true}, "EIO"},
		{map[string]bool{"hugetlb": true, "memfd-v3": true}, "ok"},
	} {
		if got := st.Expectation(tc.caps); got != tc.want {
			t.Errorf("caps %v: Expectation = %q, want %q", tc.caps, got, tc.want)
		}
	}
}
