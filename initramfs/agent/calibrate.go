package agent

import (
	"time"

	"golang.org/x/sys/unix"
)

// calibrate runs n steps of a xorshift generator and reports how long
// they took (calib_ns) and the generator's final state (calib_state, so
// that the loop cannot be optimised away and a broken loop shows).
func calibrate(n int) result {
	start := time.Now()
	x := uint64(88172645463325252)
	for i := 0; i < n; i++ {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
	}
	d := time.Since(start)
	return result{values: map[string]int64{"calib_ns": d.Nanoseconds(), "calib_state": int64(x >> 1)}}
}

// threadCPU is the calling thread's user and system CPU time in ns, -1
// if the kernel does not say.
func threadCPU() int64 {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_THREAD, &ru); err != nil {
		return -1
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
