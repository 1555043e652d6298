// SPDX-License-Identifier: GPL-2.0
/*
 * memfd_luo_retrieve_fail - a failed retrieve gives all preserved memory
 * back once the session is finished.
 *
 * Stage 1 preserves a fully written 64 MiB memfd (token 1) and a 1 MiB
 * control memfd (token 2).
 *
 * Stage 2 reads MemTotal (preserved memory is not counted in it until it is
 * restored), then makes the retrieve of token 1 fail:
 *  - with failslab fault injection, if the kernel has it
 *    (/sys/kernel/debug/failslab): the allocation of the new file fails,
 *    which is the path that leaked on unpatched kernels;
 *  - otherwise by retrieving from a child in a memory cgroup limited to
 *    1 MiB, so that charging the folios fails (the child may be OOM-killed,
 *    which is fine).
 * It then retrieves token 2 (must work), checks that a second retrieve of
 * token 1 fails too, finishes the session and checks that MemTotal grew by
 * at least the 64 MiB of token 1, i.e. nothing stayed reserved.
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
#include <sys/mount.h>
#include <sys/wait.h>

#define SESSION		"memfd-luo-retrieve-fail"
#define TOKEN_BIG	1
#define TOKEN_CTL	2
#define BIG_SIZE	(64UL << 20)
#define CTL_SIZE	(1UL << 20)
#define CGROUP		"/sys/fs/cgroup/memfd_luo_retrieve_fail"
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

static int stage1(int foreground)
{
	int luo, session, big, ctl, err;

	luo = luo_open();
	session = session_create(luo, SESSION);
	luo_close(luo);
	big = make_memfd("luo-big", BIG_SIZE, 0x5a);
	ctl = make_memfd("luo-ctl", CTL_SIZE, 0xc3);

	err = preserve_fd(session, big, TOKEN_BIG);
	CHECK(!err, "preserve 64 MiB memfd (%d)", err);
	err = preserve_fd(session, ctl, TOKEN_CTL);
	CHECK(!err, "preserve control memfd (%d)", err);

	hold_and_exit(foreground);
	return 0;
}

/* Fail the retrieve with failslab. Returns the retrieve result. */
static int retrieve_failslab(int session)
{
	int fd, ret;

	if (write_file("/sys/kernel/debug/failslab/probability", "100") ||
	    write_file("/sys/kernel/debug/failslab/times", "1") ||
	    write_file("/sys/kernel/debug/failslab/interval", "1") ||
	    write_file("/sys/kernel/debug/failslab/task-filter", "Y") ||
	    write_file("/sys/kernel/debug/failslab/ignore-gfp-wait", "N"))
		return 1;	/* not usable */

	if (write_file("/proc/self/make-it-fail", "1"))
		return 1;
	fd = retrieve_fd(session, TOKEN_BIG);
	write_file("/proc/self/make-it-fail", "0");
	write_file("/sys/kernel/debug/failslab/task-filter", "N");
	write_file("/sys/kernel/debug/failslab/probability", "0");
	if (fd >= 0) {
		close(fd);
		return 0;
	}
	ret = fd;
	return ret;
}

/* Fail the retrieve with a tiny memory cgroup, from a child. */
static int retrieve_memcg(int session)
{
	int status, pipefd[2], res = 0;
	char pid[32];
	pid_t child;

	mkdir("/sys/fs/cgroup", 0755);
	if (access("/sys/fs/cgroup/cgroup.controllers", F_OK))
		mount("cgroup2", "/sys/fs/cgroup", "cgroup2", 0, NULL);
	write_file("/sys/fs/cgroup/cgroup.subtree_control", "+memory");
	rmdir(CGROUP);
	if (mkdir(CGROUP, 0755) || write_file(CGROUP "/memory.max", "1M"))
		return 1;
	write_file(CGROUP "/memory.swap.max", "0");	/* may not exist */
	if (pipe(pipefd))
		return 1;

	child = fork();
	if (child < 0)
		return 1;
	if (!child) {
		int fd;

		snprintf(pid, sizeof(pid), "%d", getpid());
		if (write_file(CGROUP "/cgroup.procs", pid))
			_exit(3);
		fd = retrieve_fd(session, TOKEN_BIG);
		res = fd >= 0 ? 0 : fd;
		if (write(pipefd[1], &res, sizeof(res)) < 0)
			_exit(4);
		_exit(0);
	}
	close(pipefd[1]);
	waitpid(child, &status, 0);
	if (read(pipefd[0], &res, sizeof(res)) != sizeof(res))
		res = -EINTR;	/* killed by the memcg OOM killer */
	close(pipefd[0]);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 3)
		return 1;
	rmdir(CGROUP);
	return res;
}

static int stage2(void)
{
	long before, after;
	int luo, session, fd, err;
	char features[128];
	const char *how;
	char *p;

	read_features(features, sizeof(features));
	printf("# stage 2, features: '%s'\n", features);

	before = memtotal_kb();
	luo = luo_open();
	session = session_retrieve(luo, SESSION);
	luo_close(luo);

	how = "failslab";
	err = 1;
	if (!access("/sys/kernel/debug/failslab", F_OK))
		err = retrieve_failslab(session);
	if (err == 1) {
		how = "memcg";
		err = retrieve_memcg(session);
	}
	if (err == 1) {
		SKIP("no failslab and no memory cgroup", "make retrieve fail");
		CHECK(!session_finish(session), "finish session");
		return finish();
	}
	CHECK(err < 0, "retrieve of 64 MiB memfd fails under %s (%d)", how, err);

	fd = retrieve_fd(session, TOKEN_BIG);
	CHECK(fd < 0, "second retrieve fails too (%d)", fd);

	fd = retrieve_fd(session, TOKEN_CTL);
	CHECK(fd >= 0, "retrieve control memfd (%d)", fd);
	if (fd >= 0) {
		p = mmap(NULL, CTL_SIZE, PROT_READ, MAP_SHARED, fd, 0);
		CHECK(p != MAP_FAILED && p[0] == (char)0xc3 &&
		      p[CTL_SIZE - 1] == (char)0xc3, "control memfd data");
		if (p != MAP_FAILED)
			munmap(p, CTL_SIZE);
		close(fd);
	}

	CHECK(!session_finish(session), "finish session");
	close(session);
	after = memtotal_kb();
	printf("# MemTotal %ld kB -> %ld kB\n", before, after);
	if (has_feature(features, "retrieve-cleanup") || !strcmp(how, "memcg"))
		CHECK(after - before >= (long)(BIG_SIZE >> 10),
		      "preserved memory returned (+%ld kB)", after - before);
	else
		SKIP("kernel lacks retrieve-cleanup",
		     "preserved memory returned (+%ld kB)", after - before);
	return finish();
}

int main(int argc, char **argv)
{
	int foreground = 0;
	int stage = parse_stage(argc, argv, &foreground);

	printf("TAP version 13\n");
	return stage == 1 ? stage1(foreground) : stage2();
}
