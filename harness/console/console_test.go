package console

import "testing"

func TestClassify(t *testing.T) {
	tests := []struct {
		line      string
		want      Kind
		ok        bool
		wantTitle string
	}{
		{"[    2.1] Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000100", Panic, true, "Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000100"},
		{"[    1.0] BUG: kernel NULL pointer dereference, address: 0000000000000008", Bug, true, ""},
		{"[    1.0] kernel BUG at mm/shmem.c:901!", Bug, true, "kernel BUG at mm/shmem.c:901!"},
		{"[    1.0] Oops: general protection fault, probably for non-canonical address", Oops, true, ""},
		// KASAN
		{"[    1.0] BUG: KASAN: slab-use-after-free in memfd_luo_retrieve+0x1/0x2", KASAN, true, "BUG: KASAN: slab-use-after-free in memfd_luo_retrieve+0x1/0x2"},
		{"[   12.345678] BUG: KASAN: slab-out-of-bounds in foo", KASAN, true, "BUG: KASAN: slab-out-of-bounds in foo"},
		{"[   12.345678][    T1] BUG: KASAN: vmalloc-out-of-bounds in memfd_luo_serialize+0x4a/0x3c0", KASAN, true, "BUG: KASAN: vmalloc-out-of-bounds in memfd_luo_serialize+0x4a/0x3c0"},
		// lockdep and atomic-sleep debugging
		{"[    5.1] WARNING: possible circular locking dependency detected", Lockdep, true, "WARNING: possible circular locking dependency detected"},
		{"[    5.1] WARNING: possible recursive locking detected", Lockdep, true, "WARNING: possible recursive locking detected"},
		{"[    5.1] WARNING: inconsistent lock state", Lockdep, true, "WARNING: inconsistent lock state"},
		{"[    5.1] WARNING: HARDIRQ-safe -> HARDIRQ-unsafe lock order detected", Lockdep, true, ""},
		{"[    5.1] WARNING: suspicious RCU usage", Lockdep, true, ""},
		{"[    5.1] WARNING: bad unlock balance detected!", Lockdep, true, ""},
		{"[    5.1] BUG: sleeping function called from invalid context at mm/memfd_luo.c:321", Bug, true, "BUG: sleeping function called from invalid context at mm/memfd_luo.c:321"},
		{"[    5.1] BUG: scheduling while atomic: luoagent/1/0x00000002", Bug, true, "BUG: scheduling while atomic: luoagent/1/0x00000002"},
		// hangs
		{"[  120.0] INFO: task luoagent:1 blocked for more than 120 seconds.", HungTask, true, "INFO: task luoagent:1 blocked for more than 120 seconds."},
		{"[   61.2] INFO: task kworker/0:1:12 blocked for more than 61 seconds.", HungTask, true, ""},
		{"[   30.0] rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:", RCUStall, true, ""},
		{"[   30.0] watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [luoagent:1]", SoftLockup, true, "watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [luoagent:1]"},
		// DEBUG_VM and DEBUG_LIST
		{"[    7.7] page dumped because: VM_BUG_ON_FOLIO(!folio_test_locked(folio))", DebugVM, true, "page dumped because: VM_BUG_ON_FOLIO(!folio_test_locked(folio))"},
		{"[    7.7] BUG: Bad page state in process luoagent  pfn:1a2b3", Bug, true, ""},
		{"[    8.8] list_add corruption. next->prev should be prev (ffff888003e1c2a8), but was 0000000000000000. (next=ffff888003e1c2b8).", ListCorruption, true, ""},
		{"[    8.8] list_del corruption, ffff888003e1c2a8->next is LIST_POISON1 (dead000000000100)", ListCorruption, true, ""},
		// plain WARNINGs, old and 7.x formats
		{"[    1.0] WARNING: CPU: 1 PID: 1 at mm/memfd_luo.c:200 memfd_luo_preserve+0x10/0x20", Warning, true, "WARNING: CPU: 1 PID: 1 at mm/memfd_luo.c:200 memfd_luo_preserve+0x10/0x20"},
		{"[    1.0] WARNING: mm/memfd_luo.c:200 at memfd_luo_preserve+0x10/0x20, CPU#1: luoagent/1", Warning, true, ""},
		{"[    1.0] WARNING: at memfd_luo_preserve+0x10/0x20, CPU#1: luoagent/1", Warning, true, ""},
		{"[    1.0] ------------[ cut here ]------------", "", false, ""},
		// not trouble: ordinary boot lines, the agent, SysRq output
		{"[    0.5] luo: Retrieved live update data, liveupdate number: 1", "", false, ""},
		{"[    0.3] KHO: found kexec handover data.", "", false, ""},
		{"LUOTEST: stage 1 step 4 verify file=m0: ok", "", false, ""},
		{"LUOTEST: stage 0 step 2 exec: BUG: KASAN: from a test's output", "", false, ""},
		// The serial port interleaves kernel and agent output.
		{"LUOTEST: stage 1[   14.508533] BUG: KASAN: slab-out-of-bounds in memfd_luo_retrieve+0x1/0x2", KASAN, true, "BUG: KASAN: slab-out-of-bounds in memfd_luo_retrieve+0x1/0x2"},
		{"LUOTEST: stage 1[   14.508533] RIP: 0033:0x4879b9", "", false, ""},
		{"[  370.1] sysrq: Show Blocked State", "", false, ""},
		{"[  370.1] task:luoagent        state:D stack:0     pid:1     tgid:1     ppid:0      task_flags:0x400100 flags:0x00004002", "", false, ""},
		{"[  370.2] sysrq: Show backtrace of all active CPUs", "", false, ""},
		{"[  370.2] NMI backtrace for cpu 1", "", false, ""},
		{"[  370.2] CPU: 1 UID: 0 PID: 0 Comm: swapper/1 Not tainted 7.3.4 #1 PREEMPT(voluntary)", "", false, ""},
		{"[  370.2]  #0: ffffffff83f1c2e0 (rcu_read_lock){....}-{1:3}, at: debug_show_all_locks+0x3c/0x1c0", "", false, ""},
		{"[  370.2] Showing all locks held in the system:", "", false, ""},
		// The Go runtime's report of the agent's death, at the start
		// of a line; not the agent's own lines, nor the kernel's.
		{"panic: runtime error: index out of range [3] with length 3", AgentCrash, true, "panic: runtime error: index out of range [3] with length 3"},
		{"panic: boom [recovered]\r", AgentCrash, true, "panic: boom [recovered]"},
		{"fatal error: concurrent map writes", AgentCrash, true, ""},
		{"fatal error: all goroutines are asleep - deadlock!", AgentCrash, true, ""},
		{"\tpanic: nested", "", false, ""},
		{"LUOTEST: stack: panic({0x4c1e40?, 0x54f8a0?})", "", false, ""},
		{"LUOTEST: stage 0 step 2 out: panic: a test's output", "", false, ""},
		{"[    3.0] panic: not the Go runtime", "", false, ""},
	}
	for _, tc := range tests {
		f, ok := Classify(tc.line)
		if ok != tc.ok || f.Kind != tc.want {
			t.Errorf("Classify(%q) = %v %v, want %v %v", tc.line, f.Kind, ok, tc.want, tc.ok)
		}
		if tc.wantTitle != "" && f.Title != tc.wantTitle {
			t.Errorf("Classify(%q).Title = %q, want %q", tc.line, f.Title, tc.wantTitle)
		}
	}
}

func TestPrimary(t *testing.T) {
	warn := Finding{Kind: Warning, Title: "WARNING: a.c:1 at f", LineNo: 10}
	lock := Finding{Kind: Lockdep, Title: "WARNING: possible circular locking dependency detected", LineNo: 20}
	kasan := Finding{Kind: KASAN, Title: "BUG: KASAN: slab-out-of-bounds in foo", LineNo: 30}
	panicF := Finding{Kind: Panic, Title: "Kernel panic - not syncing: kernel: panic_on_warn set ...", LineNo: 40}
	late := Finding{Kind: Warning, Title: "WARNING: b.c:2 at g", LineNo: 50}
	for _, tc := range []struct {
		name string
		in   []Finding
		want Finding
		ok   bool
	}{
		{"none", nil, Finding{}, false},
		{"the first report", []Finding{lock, kasan}, lock, true},
		{"the report before a panic names it", []Finding{kasan, panicF}, kasan, true},
		{"a panic alone", []Finding{panicF}, panicF, true},
		{"a report after the panic does not", []Finding{panicF, late}, panicF, true},
		{"earliest of several", []Finding{warn, lock, kasan, panicF}, warn, true},
		{"the agent's crash is no kernel report", []Finding{{Kind: AgentCrash, Title: "panic: x", LineNo: 5}, panicF}, panicF, true},
		{"the agent's crash alone", []Finding{{Kind: AgentCrash, Title: "panic: x", LineNo: 5}}, Finding{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := Primary(tc.in)
			if ok != tc.ok || got != tc.want {
				t.Errorf("Primary = %+v %v, want %+v %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestMonitorWorstAndLastLines(t *testing.T) {
	m := NewMonitor(2)
	// Line returns each line's finding as it comes, numbered.
	want := []Kind{"", Warning, "", "", Panic}
	for i, l := range []string{"boot", "WARNING: CPU: 0 PID: 1 at a.c:1 f", "", "x", "Kernel panic - not syncing: y"} {
		f, ok := m.Line(l)
		if ok != (want[i] != "") || f.Kind != want[i] || (ok && f.LineNo != i+1) {
			t.Errorf("Line(%q) = %+v %v, want kind %q at line %d", l, f, ok, want[i], i+1)
		}
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
