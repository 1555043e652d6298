package bootable

import (
	"context"
	"errors"
	"testing"
)

func TestOnce(t *testing.T) {
	calls := map[string]int{}
	fail := map[string]bool{"broken": true}
	p := Once(func(_ context.Context, s string) (Kernel, error) {
		calls[s]++
		if fail[s] {
			return Kernel{}, errors.New("no")
		}
		return Kernel{Name: s, BzImage: "/k/" + s}, nil
	})
	ctx := context.Background()
	for _, tc := range []struct {
		spec      string
		wantErr   bool
		wantCalls int
	}{
		{"stock", false, 1},
		{"stock", false, 1},   // remembered
		{"patched", false, 1}, // another spec is prepared on its own
		{"broken", true, 1},
		{"broken", true, 2}, // a failure is tried again
		{"patched", false, 1},
	} {
		k, err := p(ctx, tc.spec)
		if (err != nil) != tc.wantErr {
			t.Errorf("%s: err %v, want error %v", tc.spec, err, tc.wantErr)
		}
		if !tc.wantErr && k.Name != tc.spec {
			t.Errorf("%s: got kernel %q", tc.spec, k.Name)
		}
		if calls[tc.spec] != tc.wantCalls {
			t.Errorf("%s: prepared %d times, want %d", tc.spec, calls[tc.spec], tc.wantCalls)
		}
	}
}
