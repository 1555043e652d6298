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
