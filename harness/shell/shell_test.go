package shell

import (
	"os/exec"
	"testing"
)

func TestQuote(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, ""},
		{[]string{"plain"}, "plain"},
		{[]string{""}, "''"},
		{[]string{"memfd_luo.abi=v2"}, "memfd_luo.abi=v2"},
		{[]string{"a b"}, "'a b'"},
		{[]string{"it's"}, `'it'\''s'`},
		{[]string{"$HOME"}, "'$HOME'"},
		{[]string{"`id`"}, "'`id`'"},
		{[]string{"two\nlines"}, "'two\nlines'"},
		{[]string{`back\slash`}, `'back\slash'`},
		{[]string{"*.c"}, "'*.c'"},
		{[]string{"~"}, "'~'"},
		{[]string{"unix:/tmp/q.sock,server=on,wait=off", "mon:stdio", "-m", "1024"}, "unix:/tmp/q.sock,server=on,wait=off mon:stdio -m 1024"},
		{[]string{"qemu", "-append", "console=ttyS0 panic=-1"}, "qemu -append 'console=ttyS0 panic=-1'"},
	} {
		if got := Quote(tc.args...); got != tc.want {
			t.Errorf("Quote(%q) = %q, want %q", tc.args, got, tc.want)
		}
	}
}

// The shell reads every quoted argument back as it was.
func TestQuoteRoundTrip(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	args := []string{"", "a b", "it's", "$HOME", "`id`", "two\nlines", `back\slash`, `"dq"`, "*", "~", "a?", "[x]", "#c", "a;b", "a|b", "<x>", "(x)", "{a,b}", "!x", "a&b"}
	for _, a := range args {
		out, err := exec.Command(sh, "-c", "printf %s "+Quote(a)).Output()
		if err != nil {
			t.Fatalf("sh -c printf %s: %v", Quote(a), err)
		}
		if string(out) != a {
			t.Errorf("sh read %q back as %q", a, out)
		}
	}
}
