package kernelsrc

import "testing"

func TestCompareVersions(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"7.2.13-1", "7.2.12-1", 1},
		{"7.2.12-1", "7.2.12-1~bpo13+1", 1},
		{"7.2.12-1~bpo13+1", "7.2.11-1~bpo13+1", 1},
		{"7.2.9-1~bpo13+1", "7.2.11-1~bpo13+1", -1},
		{"7.2.13-1", "7.2.13-1", 0},
		{"1:7.2.1-1", "7.2.13-1", 1},
		{"7.3~rc1-1", "7.3-1", -1},
		{"7.3-1", "7.3.0-1", -1},
		{"7.3a-1", "7.3-1", 1},
		{"7.3+b1-1", "7.3a-1", 1},
		{"007.2-1", "7.2-1", 0},
		{"7.2.10", "7.2.9", 1},
		{"7.2-10", "7.2-9", 1},
	}
	for _, tc := range tests {
		if got := CompareVersions(tc.a, tc.b); got != tc.want {
			t.Errorf("CompareVersions(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
		if got := CompareVersions(tc.b, tc.a); got != -tc.want {
			t.Errorf("CompareVersions(%q, %q) = %d, want %d", tc.b, tc.a, got, -tc.want)
		}
	}
}

func TestUpstreamOf(t *testing.T) {
	for v, want := range map[string]string{
		"7.2.12-1~bpo13+1": "7.2.12",
		"7.2.13-1":         "7.2.13",
		"1:7.2.13-1":       "7.2.13",
		"7.3.4":            "7.3.4",
	} {
		if got := UpstreamOf(v); got != want {
			t.Errorf("UpstreamOf(%q) = %q, want %q", v, got, want)
		}
	}
}

func TestNewestVersion(t *testing.T) {
	out := `linux-source-7.2 |   7.2.13-1 | http://mirror.invalid/debian sid/main amd64 Packages
linux-source-7.2 | 7.2.12-1~bpo13+1 | http://mirror.invalid/debian trixie-backports/main amd64 Packages
linux-source-7.2 | 7.2.12-1 | http://mirror.invalid/debian forky/main amd64 Packages
linux-source-7.2 | 7.2.9-1~bpo13+1 | http://mirror.invalid/debian trixie-backports/main amd64 Packages
linux-source-7.20 | 7.20.1-1 | http://mirror.invalid/debian sid/main amd64 Packages
`
	vs := parseMadison(out, "linux-source-7.2")
	if len(vs) != 4 {
		t.Fatalf("parseMadison: %q", vs)
	}
	for upstream, want := range map[string]string{"": "7.2.13-1", "7.2.12": "7.2.12-1", "7.2.9": "7.2.9-1~bpo13+1", "7.2.1": ""} {
		if got := NewestVersion(vs, upstream); got != want {
			t.Errorf("NewestVersion(%q) = %q, want %q", upstream, got, want)
		}
	}
}
