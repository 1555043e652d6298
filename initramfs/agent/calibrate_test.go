package agent

import (
	"testing"

	"github.com/memfd-luo/memfd-luo/initramfs/plan"
)

// The calibration's work is fixed (its final state is the generator's
// n-th value) and twice the steps take longer.
func TestCalibrate(t *testing.T) {
	a, b := calibrate(1000), calibrate(1000)
	if a.err != nil || a.values["calib_state"] != b.values["calib_state"] || a.values["calib_state"] == 0 {
		t.Fatalf("calibrate: %+v %+v", a, b)
	}
	if c := calibrate(1001); c.values["calib_state"] == a.values["calib_state"] {
		t.Errorf("one more step gave the same state")
	}
	small, large := calibrate(1<<16), calibrate(1<<22)
	if large.values["calib_ns"] <= small.values["calib_ns"] {
		t.Errorf("64x the work took %d ns, 1x %d ns", large.values["calib_ns"], small.values["calib_ns"])
	}
	evs := run(t, nil, []plan.Step{{Op: plan.OpCalibrate}})
	if len(evs) != 1 || !evs[0].Pass || evs[0].Values["calib_ns"] <= 0 {
		t.Errorf("calibrate step: %+v", evs)
	}
	// Every step reports its thread's CPU time, the kernel's included.
	if cpu, ok := evs[0].Values["cpu_ns"]; !ok || cpu < 0 || cpu > 10*evs[0].DurationNS+int64(20e6) {
		t.Errorf("cpu_ns %d (present %v) for a step of %d ns", cpu, ok, evs[0].DurationNS)
	}
}
