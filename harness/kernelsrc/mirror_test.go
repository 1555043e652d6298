package kernelsrc

import (
	"strings"
	"testing"
)

func TestPickMirror(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      string
		want    string
		errLike string
	}{
		{
			name: "labelled",
			in: "http://mirror.invalid/debian-security/ bookworm-security Debian-Security\n" +
				"http://mirror.invalid/debian/ bookworm Debian\n" +
				"http://mirror.invalid/debian/ bookworm-updates Debian\n",
			want: "http://mirror.invalid/debian/",
		},
		{
			name: "no release info",
			in: "http://mirror.invalid/debian-security/ bookworm-security $(LABEL)\n" +
				"http://mirror.invalid/debian/ bookworm $(LABEL)\n",
			want: "http://mirror.invalid/debian/",
		},
		{
			name: "two-field lines",
			in:   "http://sec.invalid/debian-security/ trixie-security\nhttp://mirror.invalid/debian/ trixie\n",
			want: "http://mirror.invalid/debian/",
		},
		{
			name: "plain release preferred over updates",
			in: "http://updates.invalid/debian/ bookworm-updates Debian\n" +
				"http://mirror.invalid/debian/ bookworm Debian\n",
			want: "http://mirror.invalid/debian/",
		},
		{
			name: "apt order otherwise",
			in:   "http://one.invalid/debian/ bookworm Debian\nhttp://two.invalid/debian/ bookworm Debian\n",
			want: "http://one.invalid/debian/",
		},
		{
			name: "third party with a Debian codename is skipped by its label",
			in: "https://vendor.invalid/linux/debian/ bookworm Vendor CE\n" +
				"https://vendor.invalid/linux/debian/ bookworm $(LABEL)\n" +
				"http://mirror.invalid/debian/ bookworm $(LABEL)\n" +
				"http://mirror.invalid/debian/ bookworm Debian\n",
			want: "http://mirror.invalid/debian/",
		},
		{
			name: "third party suites without labels",
			in: "https://tools.invalid/apt/ cloud-sdk $(LABEL)\n" +
				"https://node.invalid/node_20.x/ nodistro $(LABEL)\n" +
				"http://mirror.invalid/debian/ trixie $(LABEL)\n",
			want: "http://mirror.invalid/debian/",
		},
		{
			name: "backports label",
			in:   "http://mirror.invalid/debian/ trixie-backports Debian Backports\n",
			want: "http://mirror.invalid/debian/",
		},
		{
			name: "trailing slash added",
			in:   "http://mirror.invalid/debian bookworm Debian\n",
			want: "http://mirror.invalid/debian/",
		},
		{
			name:    "security only",
			in:      "http://mirror.invalid/debian-security/ bookworm-security Debian-Security\n",
			errLike: "none of the apt sources",
		},
		{
			name:    "ubuntu",
			in:      "http://archive.invalid/ubuntu/ noble Ubuntu\nhttp://archive.invalid/ubuntu/ noble-updates Ubuntu\n",
			errLike: "archive.invalid/ubuntu/ noble",
		},
		{
			name:    "cdrom",
			in:      "cdrom:[Debian 12]/ bookworm $(LABEL)\n",
			errLike: "none of the apt sources",
		},
		{
			name:    "empty",
			in:      "\n",
			errLike: "no sources at all",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := PickMirror(tc.in)
			if tc.errLike != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errLike) {
					t.Fatalf("PickMirror = %q, %v; want error mentioning %q", got, err, tc.errLike)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("PickMirror = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}
