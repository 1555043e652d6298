package kernelsrc

import "strings"

// UpstreamOf returns the upstream part of a Debian package version:
// without epoch, Debian revision and backport suffix ("1:7.2.12-1~bpo13+1"
// gives "7.2.12").
func UpstreamOf(v string) string {
	if i := strings.IndexByte(v, ':'); i >= 0 {
		v = v[i+1:]
	}
	if i := strings.LastIndexByte(v, '-'); i >= 0 {
		v = v[:i]
	}
	if i := strings.IndexByte(v, '~'); i >= 0 {
		v = v[:i]
	}
	return v
}

// CompareVersions orders two Debian package versions as dpkg does
// (deb-version(7)): epoch numerically, then upstream version and Debian
// revision, each compared as alternating runs of non-digits (letters
// before other characters, '~' before everything, even the end) and
// numbers. It returns -1, 0 or 1.
func CompareVersions(a, b string) int {
	ea, ua, ra := splitVersion(a)
	eb, ub, rb := splitVersion(b)
	if c := compareNumbers(ea, eb); c != 0 {
		return c
	}
	if c := compareFragment(ua, ub); c != 0 {
		return c
	}
	return compareFragment(ra, rb)
}

func splitVersion(v string) (epoch, upstream, revision string) {
	epoch = "0"
	if i := strings.IndexByte(v, ':'); i >= 0 {
		epoch, v = v[:i], v[i+1:]
	}
	if i := strings.LastIndexByte(v, '-'); i >= 0 {
		return epoch, v[:i], v[i+1:]
	}
	return epoch, v, ""
}

// order is the weight of one character of a non-digit run.
func order(c byte) int {
	switch {
	case c == '~':
		return -1
	case c >= '0' && c <= '9':
		return 0
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		return int(c)
	}
	return int(c) + 256
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func compareFragment(a, b string) int {
	for a != "" || b != "" {
		// Non-digit runs, character by character; the end of a run
		// weighs 0, so "~" sorts before it and letters after it.
		for (a != "" && !isDigit(a[0])) || (b != "" && !isDigit(b[0])) {
			ca, cb := 0, 0
			if a != "" && !isDigit(a[0]) {
				ca, a = order(a[0]), a[1:]
			}
			if b != "" && !isDigit(b[0]) {
				cb, b = order(b[0]), b[1:]
			}
			if ca != cb {
				return sign(ca - cb)
			}
		}
		var na, nb string
		na, a = digits(a)
		nb, b = digits(b)
		if c := compareNumbers(na, nb); c != 0 {
			return c
		}
	}
	return 0
}

func digits(s string) (run, rest string) {
	i := 0
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	return s[:i], s[i:]
}

// compareNumbers compares two runs of decimal digits of any length.
func compareNumbers(a, b string) int {
	a, b = strings.TrimLeft(a, "0"), strings.TrimLeft(b, "0")
	if len(a) != len(b) {
		return sign(len(a) - len(b))
	}
	return strings.Compare(a, b)
}

func sign(n int) int {
	switch {
	case n < 0:
		return -1
	case n > 0:
		return 1
	}
	return 0
}
