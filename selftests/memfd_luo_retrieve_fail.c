// SPDX-License-Identifier: GPL-2.0
/*
 * memfd_luo_retrieve_fail - a retrieve that fails, wherever it fails, gives
 * every preserved page back: nothing stays reserved.
 *
 * Stage 1 preserves NR_FILES fully written memfds of FILE_SIZE in one
 * session, as memfd-v2 where the kernel lets it choose.
 *
 * Stage 2 retrieves file 0 normally and takes the growth of MemTotal as
 * what one file costs (preserved memory is not counted in MemTotal until
 * it is restored, whether it is then used or freed). It then retrieves
 * file i of the others with the i-th slab allocation of the retrieve failing
 * (/proc/thread-self/fail-nth with failslab), so that the failures land on
 * different allocations of the retrieve path: the new file's inode and
 * struct file (memfd_alloc_file(), the path stock 7.3 leaked on), the page
 * cache's xarray nodes, and on stock kernels the page array of
 * kho_restore_vmalloc(). After FINISH, MemTotal must have grown by exactly
 * one file's cost per file, to the page; a leak shows as a shortfall of at
 * least one file's data.
 *
 * It needs failslab (CONFIG_FAILSLAB, CONFIG_FAULT_INJECTION_DEBUG_FS:
 * the debug flavour) and SKIPs without it. It does not look at the
 * features parameter: on a kernel that leaks, it fails.
 *
 * Build: gcc -static -O2 -I<kernel>/usr/include memfd_luo_retrieve_fail.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/liveupdate.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define SESSION		"memfd-luo-retrieve-fail"
#define NR_FILES	12
#define FILE_SIZE	(2UL << 20)
#define FAILSLAB	"/sys/kernel/debug/failslab"
#include "memfd_luo_test.h"


/* ---- test ---- */
static long memtotal_kb(void)
{
	char line[256];
	long kb = -1;
	FILE *f = fopen("/proc/meminfo", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "MemTotal: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

static int write_file(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY);
	int ret;

	if (fd < 0)
		return -errno;
	ret = write(fd, val, strlen(val)) < 0 ? -errno : 0;
	close(fd);
	return ret;
}

static int make_memfd(const char *name, size_t size, char c)
{
	int fd = memfd_create(name, 0);
	char *p;

	if (fd < 0 || ftruncate(fd, size))
		bail("memfd");
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		bail("mmap");
	memset(p, c, size);
	munmap(p, size);
	return fd;
}

#define ABI_PARAM	"/sys/module/memfd_luo/parameters/abi"

static int stage1(int foreground)
{
	int luo, session, fd, err, i;
	char name[32], abi[16] = "";
	int abi_fd;

	/*
	 * memfd-v2 spends exactly 16 bytes per folio, so every file costs
	 * the same; a memfd-v3 stream's length depends on where the pages
	 * are. Use memfd-v2 where there is a choice, and put the policy back
	 * afterwards: files keep the format they were preserved in.
	 */
	abi_fd = open(ABI_PARAM, O_RDWR);
	if (abi_fd >= 0 && (read(abi_fd, abi, sizeof(abi) - 1) <= 0 ||
			    pwrite(abi_fd, "v2", 2, 0) != 2))
		bail("memfd_luo.abi=v2");

	luo = luo_open();
	session = session_create(luo, SESSION);
	luo_close(luo);
	for (i = 0; i < NR_FILES; i++) {
		snprintf(name, sizeof(name), "luo-rf-%d", i);
		fd = make_memfd(name, FILE_SIZE, 0x40 + i);
		err = preserve_fd(session, fd, i + 1);
		CHECK(!err, "preserve memfd %d (%d)", i, err);
	}
	if (abi_fd >= 0) {
		if (pwrite(abi_fd, abi, strcspn(abi, "\n"), 0) < 0)
			bail("restoring memfd_luo.abi");
		close(abi_fd);
	}

	hold_and_exit(foreground);
	return 0;
}

/*
 * Make the @nth fault-injection point this thread passes fail: the next
 * slab allocations count, including GFP_KERNEL ones once failslab stops
 * ignoring them.
 */
static int arm_fail_nth(int nth)
{
	char v[16];

	if (write_file(FAILSLAB "/ignore-gfp-wait", "N"))
		return -1;
	snprintf(v, sizeof(v), "%d", nth);
	return write_file("/proc/thread-self/fail-nth", v);
}

/* Whether the armed failure happened; disarm it if not. */
static int fail_nth_fired(void)
{
	char buf[16] = "";
	int fd = open("/proc/thread-self/fail-nth", O_RDWR);
	int left;

	if (fd < 0)
		return 0;
	if (read(fd, buf, sizeof(buf) - 1) < 0)
		buf[0] = '\0';
	left = atoi(buf);
	if (left && write(fd, "0", 1) < 0)
		left = -1;
	close(fd);
	return !left;
}

static int stage2(void)
{
	long m0, m1, m_end, cost, want;
	int luo, session, fd, i, fired, failed = 0;

	/* Opening /dev/liveupdate restores LUO's own state: measure after. */
	luo = luo_open();
	session = session_retrieve(luo, SESSION);
	luo_close(luo);

	if (access(FAILSLAB, F_OK)) {
		SKIP("kernel without failslab (CONFIG_FAILSLAB, debugfs)",
		     "failed retrieves give every page back");
		CHECK(!session_finish(session), "finish session");
		return finish();
	}

	m0 = memtotal_kb();
	fd = retrieve_fd(session, 1);
	CHECK(fd >= 0, "retrieve file 0 without injection (%d)", fd);
	if (fd >= 0)
		close(fd);
	m1 = memtotal_kb();
	cost = m1 - m0;
	printf("# one %lu KiB file restores %ld kB\n", FILE_SIZE >> 10, cost);
	CHECK(cost >= (long)(FILE_SIZE >> 10), "file 0 restored its data");

	for (i = 1; i < NR_FILES; i++) {
		if (arm_fail_nth(i)) {
			SKIP("failslab or fail-nth not usable", "arm fail-nth %d", i);
			continue;
		}
		fd = retrieve_fd(session, i + 1);
		fired = fail_nth_fired();
		if (fd >= 0) {
			printf("# file %d (fail-nth %d, %s): retrieve succeeded\n",
			       i, i, fired ? "injected" : "not reached");
			close(fd);
			continue;
		}
		failed++;
		printf("# file %d (fail-nth %d, %s): retrieve failed: %s\n", i, i,
		       fired ? "injected" : "not reached", strerror(-fd));
	}
	CHECK(failed > 0, "failslab made %d of %d retrieves fail", failed,
	      NR_FILES - 1);

	CHECK(!session_finish(session), "finish session");
	close(session);
	m_end = memtotal_kb();
	want = cost * (NR_FILES - 1);
	printf("# MemTotal %ld -> %ld -> %ld kB; want +%ld kB for %d files\n",
	       m0, m1, m_end, want, NR_FILES - 1);
	CHECK(m_end - m1 >= want - 4 && m_end - m1 <= want + 4,
	      "every page of the %d failed retrieves came back (%+ld kB)",
	      failed, m_end - m1 - want);
	return finish();
}

int main(int argc, char **argv)
{
	int foreground = 0;
	int stage = parse_stage(argc, argv, &foreground);

	printf("TAP version 13\n");
	return stage == 1 ? stage1(foreground) : stage2();
}
