package compat

import (
	"bytes"
	"compress/gzip"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// image builds the bytes of a fake kernel: compatible strings the way a
// real one holds them (a struct's char array after a pointer, or a string
// of its own), and mentions that are not compatibles.
func image(compat ...string) []byte {
	var b bytes.Buffer
	b.WriteString("\x7fELF\x02\x01\x01")
	b.WriteString("\x00could not register the memfd-v9 handler, memfd-v8 only\x00")
	b.WriteString("retrieve-cleanup,sparse,memfd-v7\x00")
	for _, c := range compat {
		b.Write([]byte{0xe8, 0x2f, 0x82, 0xff, 0xff, 0xff, 0xff}) // ops pointer
		b.WriteString(c)
		b.WriteString("\x00\x00\x00")
	}
	return b.Bytes()
}

func TestCompatStrings(t *testing.T) {
	got := compatStrings(image("kho-v4", "luo-v5", "memfd-v2", "memfd-v3", "memblock-v1", "kho-vx"))
	want := "kho-v4 luo-v5 memfd-v2 memfd-v3 memblock-v1"
	if strings.Join(got, " ") != want {
		t.Fatalf("compatStrings = %q, want %q (mentions in messages and lists are not compatibles)", got, want)
	}
}

var (
	stock      = []string{"kho-v4", "luo-v5", "memfd-v2"}
	series     = []string{"kho-v4", "luo-v5", "memfd-v2", "memfd-v3"}
	hugeSeries = []string{"kho-v4", "luo-v5", "memfd-v2", "memfd-v3", "hugetlb-pool-v1"}
	newLUO     = []string{"kho-v4", "luo-v6", "memfd-v2", "memfd-v3"}
	newKHO     = []string{"kho-v5", "luo-v5", "memfd-v2"}
	noLUO      = []string{"kho-v4"}
	onlyV3     = []string{"kho-v4", "luo-v5", "memfd-v3"}
	withMem    = []string{"kho-v4", "luo-v5", "memfd-v2", "memblock-v1"}
)

func TestPredict(t *testing.T) {
	for _, tc := range []struct {
		name       string
		a, b       []string
		polA       Policy
		keeps      bool
		summary    string
		whyHas     string
		writes     string
		writesWhy  string
		lossesWant int
	}{
		{name: "stock to stock", a: stock, b: stock, keeps: true, summary: "keeps every session", writes: "memfd-v2", writesWhy: "only memfd handler"},
		{name: "stock to series", a: stock, b: series, keeps: true, writes: "memfd-v2"},
		{name: "series default to stock", a: series, b: stock, polA: Policy{SourceDefault: "v2"}, keeps: true, writes: "memfd-v2", writesWhy: "default policy of its source"},
		{name: "series without source is assumed v2", a: series, b: stock, keeps: true, writes: "memfd-v2", writesWhy: "assumed"},
		{name: "series abi=v3 to stock", a: series, b: stock, polA: Policy{Cmdline: "quiet memfd_luo.abi=v3"}, keeps: false,
			summary: "loses every session (EIO)", whyHas: "no memfd-v3 handler", writes: "memfd-v3", lossesWant: 1},
		{name: "series default v3 source to stock", a: series, b: stock, polA: Policy{SourceDefault: "v3"}, keeps: false, writes: "memfd-v3", lossesWant: 1},
		{name: "last abi= wins", a: series, b: stock, polA: Policy{Cmdline: "memfd_luo.abi=v3 memfd_luo.abi=v2"}, keeps: true, writes: "memfd-v2"},
		{name: "abi= unknown to the kernel", a: series, b: stock, polA: Policy{Cmdline: "memfd_luo.abi=v9", SourceDefault: "v2"}, keeps: true, writes: "memfd-v2", writesWhy: "refuses the parameter"},
		{name: "abi= on stock has no effect", a: stock, b: stock, polA: Policy{Cmdline: "memfd_luo.abi=v3"}, keeps: true, writes: "memfd-v2", writesWhy: "no effect"},
		{name: "series abi=v3 to series", a: series, b: series, polA: Policy{Cmdline: "memfd_luo.abi=v3"}, keeps: true, writes: "memfd-v3"},
		{name: "LUO ABI differs", a: series, b: newLUO, keeps: false, whyHas: "LUO ABI luo-v5, target reads luo-v6", lossesWant: 1},
		{name: "KHO differs", a: stock, b: newKHO, keeps: false, whyHas: "KHO tree kho-v4", lossesWant: 1},
		{name: "no LUO in the source", a: noLUO, b: stock, keeps: false, whyHas: "no KHO or no LUO", lossesWant: 1},
		{name: "no LUO in the target", a: stock, b: noLUO, keeps: false, whyHas: "target kernel has no LUO", lossesWant: 1},
		{name: "target reads only v3", a: stock, b: onlyV3, keeps: false, whyHas: "no memfd-v2 handler", lossesWant: 1},
		{name: "subsystem missing loses its data only", a: withMem, b: stock, keeps: true, summary: "keeps every session", whyHas: "no memblock-v1", lossesWant: 1},
		{name: "stock cannot preserve hugetlb", a: stock, b: hugeSeries, keeps: true, whyHas: "cannot be preserved by the source (preserve: ENOENT)"},
		{name: "hugetlb not preserved under the default policy", a: hugeSeries, b: stock, polA: Policy{SourceDefault: "v2"}, keeps: true, whyHas: "need memfd_luo.abi=v3, which this target does not read"},
		{name: "hugetlb in memfd-v3 to stock", a: hugeSeries, b: stock, polA: Policy{Cmdline: "memfd_luo.abi=v3"}, keeps: false, summary: "loses every session (EIO)", lossesWant: 1},
		{name: "hugetlb to a series without hugetlb", a: hugeSeries, b: series, polA: Policy{Cmdline: "memfd_luo.abi=v3"}, keeps: true, whyHas: "LOST hugetlb memfds", lossesWant: 1},
		{name: "hugetlb to hugetlb", a: hugeSeries, b: hugeSeries, polA: Policy{Cmdline: "memfd_luo.abi=v3"}, keeps: true, whyHas: "boot pool of huge pages", lossesWant: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pa, pb := FromStrings(tc.a, tc.polA), FromStrings(tc.b, Policy{})
			pr := Predict(pa, pb)
			if pr.KeepsSessions != tc.keeps {
				t.Errorf("KeepsSessions = %v, want %v\n%s", pr.KeepsSessions, tc.keeps, pr)
			}
			if tc.summary != "" && pr.Summary() != tc.summary {
				t.Errorf("Summary = %q, want %q", pr.Summary(), tc.summary)
			}
			if len(pr.Losses) != tc.lossesWant {
				t.Errorf("%d losses, want %d\n%s", len(pr.Losses), tc.lossesWant, pr)
			}
			if tc.whyHas != "" && !strings.Contains(pr.String(), tc.whyHas) {
				t.Errorf("prediction does not say %q:\n%s", tc.whyHas, pr)
			}
			if tc.writes != "" || tc.writesWhy != "" {
				if pa.Writes != tc.writes {
					t.Errorf("Writes = %q, want %q (%s)", pa.Writes, tc.writes, pa.WritesWhy)
				}
				if !strings.Contains(pa.WritesWhy, tc.writesWhy) {
					t.Errorf("WritesWhy = %q, want it to say %q", pa.WritesWhy, tc.writesWhy)
				}
			}
		})
	}
}

// bzImage wraps an ELF payload the way x86 does: a boot sector with the
// "HdrS" magic at 0x202, setup code, then the compressed kernel.
func bzImage(t *testing.T, elfImage []byte) []byte {
	t.Helper()
	b := make([]byte, 0x4000)
	copy(b[0x202:], "HdrS")
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write(elfImage)
	zw.Close()
	b = append(b, z.Bytes()...)
	return append(b, make([]byte, 64)...) // trailing data after the stream
}

func TestInspect(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		data    []byte
		want    string
		wantErr string
	}{
		{name: "vmlinux", data: image(series...), want: "kho-v4 luo-v5 memfd-v2,memfd-v3 memfd-v2"},
		{name: "bzImage", data: bzImage(t, image(stock...)), want: "kho-v4 luo-v5 memfd-v2 memfd-v2"},
		{name: "not a kernel", data: []byte("hello"), wantErr: "neither an ELF vmlinux nor an x86 bzImage"},
		{name: "bzImage without payload", data: bzImage(t, nil)[:0x4000], wantErr: "no gzip, zstd, xz or lz4 payload"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, tc.name)
			if err := os.WriteFile(p, tc.data, 0o644); err != nil {
				t.Fatal(err)
			}
			pr, err := Inspect(ctx, p, Policy{SourceDefault: "v2"})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := strings.Join([]string{pr.KHO, pr.LUO, strings.Join(pr.Memfd, ","), pr.Writes}, " ")
			if got != tc.want {
				t.Fatalf("profile %q, want %q", got, tc.want)
			}
		})
	}
	if _, err := Inspect(ctx, filepath.Join(dir, "missing"), Policy{}); err == nil {
		t.Fatal("no error for a missing image")
	}
}
