package console

import "testing"

func TestClassify(t *testing.T) {
	tests := []struct {
		line string
		want Kind
		ok   bool
	}{
		{"[    2.1] Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000100", Panic, true},
		{"[    1.0] BUG: kernel NULL pointer dereference, address: 0000000000000008", Bug, true},
		{"[    1.0] kernel BUG at mm/shmem.c:901!", Bug, true},
		{"[    1.0] Oops: general protection fault, probably for non-canonical address", Oops, true},
		{"[    1.0] BUG: KASAN: slab-use-after-free in memfd_luo_retrieve+0x1/0x2", KASAN, true},
		{"[    1.0] WARNING: CPU: 1 PID: 1 at mm/memfd_luo.c:200 memfd_luo_preserve+0x10/0x20", Warning, true},
		{"[  120.0] INFO: task luoagent:1 blocked for more than 120 seconds.", HungTask, true},
		{"[   30.0] rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:", RCUStall, true},
		{"[   30.0] watchdog: BUG: soft lockup - CPU#0 stuck for 22s!", SoftLockup, true},
		{"[    0.5] luo: Retrieved live update data, liveupdate number: 1", "", false},
		{"[    0.3] KHO: found kexec handover data.", "", false},
		{"LUOTEST: stage 1 step 4 verify file=m0: ok", "", false},
	}
	for _, tc := range tests {
		f, ok := Classify(tc.line)
		if ok != tc.ok || f.Kind != tc.want {
			t.Errorf("Classify(%q) = %v %v, want %v %v", tc.line, f.Kind, ok, tc.want, tc.ok)
		}
	}
}

func TestMonitorWorstAndLastLines(t *testing.T) {
	m := NewMonitor(2)
	for _, l := range []string{"boot", "WARNING: CPU: 0 PID: 1 at a.c:1 f", "", "x", "Kernel panic - not syncing: y"} {
		m.Line(l)
	}
	w, ok := m.Worst()
	if !ok || w.Kind != Panic || w.LineNo != 5 {
		t.Errorf("Worst = %+v %v, want panic at line 5", w, ok)
	}
	if got := m.LastLines(); len(got) != 2 || got[1] != "Kernel panic - not syncing: y" {
		t.Errorf("LastLines = %q", got)
	}
	if m.Lines() != 5 {
		t.Errorf("Lines = %d, want 5", m.Lines())
	}
}
