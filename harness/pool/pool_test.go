package pool

import (
	"context"
	"sync"
	"testing"
	"time"
)

func TestRunRespectsLimits(t *testing.T) {
	tests := []struct {
		name      string
		limits    Limits
		mem       []int
		wantPeak  int
		wantPeakM int
	}{
		{"slots", Limits{Slots: 2}, []int{1, 1, 1, 1, 1}, 2, 0},
		{"memory", Limits{Slots: 4, MemoryMB: 3000}, []int{1024, 1024, 1024, 1024}, 2, 2048},
		{"oversized runs alone", Limits{Slots: 4, MemoryMB: 1000}, []int{3072, 512}, 1, 3072},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			cur, peak, curM, peakM, done := 0, 0, 0, 0, 0
			var jobs []Job
			for _, m := range tc.mem {
				jobs = append(jobs, Job{MemoryMB: m, Run: func(context.Context) {
					mu.Lock()
					cur++
					curM += m
					peak, peakM = max(peak, cur), max(peakM, curM)
					mu.Unlock()
					time.Sleep(20 * time.Millisecond)
					mu.Lock()
					cur--
					curM -= m
					done++
					mu.Unlock()
				}})
			}
			Run(context.Background(), tc.limits, jobs)
			if done != len(jobs) {
				t.Fatalf("%d of %d jobs ran", done, len(jobs))
			}
			if peak != tc.wantPeak {
				t.Errorf("peak concurrency %d, want %d", peak, tc.wantPeak)
			}
			if tc.wantPeakM != 0 && peakM != tc.wantPeakM {
				t.Errorf("peak memory %d, want %d", peakM, tc.wantPeakM)
			}
		})
	}
}

func TestShard(t *testing.T) {
	items := []int{0, 1, 2, 3, 4, 5, 6}
	seen := map[int]int{}
	for i := 1; i <= 3; i++ {
		for _, x := range Shard(items, i, 3) {
			seen[x]++
		}
	}
	if len(seen) != len(items) {
		t.Errorf("shards cover %d of %d items", len(seen), len(items))
	}
	for x, n := range seen {
		if n != 1 {
			t.Errorf("item %d in %d shards", x, n)
		}
	}
	if got := Shard(items, 2, 3); len(got) != 2 || got[0] != 1 || got[1] != 4 {
		t.Errorf("Shard(2/3) = %v, want [1 4]", got)
	}
}
