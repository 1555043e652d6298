// Package pool runs independent VM jobs in parallel, bounded by a number
// of slots (cores) and a memory budget.
package pool

import (
	"context"
	"sync"
)

// Job is one unit of work and the guest memory it needs.
type Job struct {
	MemoryMB int
	Run      func(ctx context.Context)
}

// Limits bound how much runs at once.
type Limits struct {
	// Slots is the number of jobs at once (at least 1).
	Slots int
	// MemoryMB is the total guest memory at once; a job larger than
	// the budget still runs, alone.
	MemoryMB int
}

// Run executes jobs, starting them in order as slots and memory allow,
// and returns when all have finished or ctx is cancelled (jobs not yet
// started are then skipped).
func Run(ctx context.Context, l Limits, jobs []Job) {
	if l.Slots < 1 {
		l.Slots = 1
	}
	var (
		mu      sync.Mutex
		cond    = sync.NewCond(&mu)
		running int
		usedMB  int
		wg      sync.WaitGroup
	)
	stop := context.AfterFunc(ctx, func() {
		mu.Lock()
		cond.Broadcast()
		mu.Unlock()
	})
	defer stop()
	for _, j := range jobs {
		mu.Lock()
		for ctx.Err() == nil && running > 0 && (running >= l.Slots || (l.MemoryMB > 0 && usedMB+j.MemoryMB > l.MemoryMB)) {
			cond.Wait()
		}
		if ctx.Err() != nil {
			mu.Unlock()
			break
		}
		running++
		usedMB += j.MemoryMB
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			j.Run(ctx)
			mu.Lock()
			running--
			usedMB -= j.MemoryMB
			cond.Broadcast()
			mu.Unlock()
		}()
	}
	wg.Wait()
}

// Shard returns the items of shard i (1-based) of n: every n-th item,
// so shards of a sorted list are balanced and deterministic.
func Shard[T any](items []T, i, n int) []T {
	if n <= 1 {
		return items
	}
	var out []T
	for k, it := range items {
		if k%n == i-1 {
			out = append(out, it)
		}
	}
	return out
}
