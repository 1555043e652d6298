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

/* ---- minimal KTAP ---- */
static int t_num, t_fail;

static void ktap_result(int ok, const char *skip, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
#include <stdarg.h>
static void ktap_result(int ok, const char *skip, const char *fmt, ...)
{
	va_list ap;

	printf("%s %d ", ok ? "ok" : "not ok", ++t_num);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	if (skip)
		printf(" # SKIP %s", skip);
	printf("\n");
	fflush(stdout);
	if (!ok)
		t_fail++;
}

#define CHECK(cond, ...) ktap_result(!!(cond), NULL, __VA_ARGS__)
#define SKIP(why, ...) ktap_result(1, why, __VA_ARGS__)

static void bail(const char *what)
{
	printf("Bail out! %s: %s\n", what, strerror(errno));
	exit(1);
}

static int finish(void)
{
	printf("# totals: fail:%d of %d\n", t_fail, t_num);
	return t_fail ? 1 : 0;
}

/* ---- helpers shared by the memfd_luo tests ---- */
static void read_features(char *buf, size_t len)
{
	int fd = open("/sys/module/memfd_luo/parameters/features", O_RDONLY);
	ssize_t n = -1;

	if (fd >= 0) {
		n = read(fd, buf, len - 1);
		close(fd);
	}
	if (n < 0)
		n = 0;
	buf[n] = 0;
	if (n && buf[n - 1] == '\n')
		buf[n - 1] = 0;
}

static int has_feature(const char *features, const char *name)
{
	size_t l = strlen(name);
	const char *p = features;

	while ((p = strstr(p, name))) {
		if ((p == features || p[-1] == ',') && (!p[l] || p[l] == ','))
			return 1;
		p += l;
	}
	return 0;
}

/*
 * /dev/liveupdate can be open only once at a time. Open it just long enough
 * to create or retrieve the session, or use the fd passed with --luo-fd by
 * a caller that keeps it open.
 */
static int luo_fd_arg = -1;

static int luo_open(void)
{
	int fd = luo_fd_arg >= 0 ? luo_fd_arg : open("/dev/liveupdate", O_RDWR);

	if (fd < 0)
		bail("open /dev/liveupdate");
	return fd;
}

static void luo_close(int fd)
{
	if (fd != luo_fd_arg)
		close(fd);
}

static int session_create(int luo, const char *name)
{
	struct liveupdate_ioctl_create_session a = { .size = sizeof(a) };

	strncpy((char *)a.name, name, sizeof(a.name) - 1);
	if (ioctl(luo, LIVEUPDATE_IOCTL_CREATE_SESSION, &a))
		bail("create session");
	return a.fd;
}

static int session_retrieve(int luo, const char *name)
{
	struct liveupdate_ioctl_retrieve_session a = { .size = sizeof(a) };

	strncpy((char *)a.name, name, sizeof(a.name) - 1);
	if (ioctl(luo, LIVEUPDATE_IOCTL_RETRIEVE_SESSION, &a))
		bail("retrieve session");
	return a.fd;
}

static int preserve_fd(int session, int fd, uint64_t token)
{
	struct liveupdate_session_preserve_fd a = {
		.size = sizeof(a), .fd = fd, .token = token,
	};

	return ioctl(session, LIVEUPDATE_SESSION_PRESERVE_FD, &a) ? -errno : 0;
}

static int retrieve_fd(int session, uint64_t token)
{
	struct liveupdate_session_retrieve_fd a = {
		.size = sizeof(a), .token = token,
	};

	return ioctl(session, LIVEUPDATE_SESSION_RETRIEVE_FD, &a) ? -errno : a.fd;
}

static int session_finish(int session)
{
	struct liveupdate_session_finish a = { .size = sizeof(a) };

	return ioctl(session, LIVEUPDATE_SESSION_FINISH, &a) ? -errno : 0;
}

/* Keep the session open across the kexec: a child holds the fds. */
static void hold_and_exit(int foreground)
{
	pid_t pid;

	fflush(stdout);
	if (foreground) {
		printf("# holding session; kexec now\n");
		fflush(stdout);
		for (;;)
			pause();
	}
	pid = fork();
	if (pid < 0)
		bail("fork");
	if (pid > 0) {
		printf("# session held by pid %d; kexec now\n", pid);
		exit(finish());
	}
	setsid();
	close(0);
	close(1);
	close(2);
	for (;;)
		pause();
}

static int parse_stage(int argc, char **argv, int *foreground)
{
	int stage = 0;

	for (int i = 1; i < argc; i++) {
		if ((!strcmp(argv[i], "--stage") || !strcmp(argv[i], "-s")) &&
		    i + 1 < argc)
			stage = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--foreground"))
			*foreground = 1;
		else if (!strcmp(argv[i], "--luo-fd") && i + 1 < argc)
			luo_fd_arg = atoi(argv[++i]);
	}
	if (stage != 1 && stage != 2) {
		fprintf(stderr, "usage: %s --stage 1|2 [--foreground] [--luo-fd N]\n",
			argv[0]);
		exit(2);
	}
	return stage;
}

static __attribute__((unused)) unsigned long long st_blocks(int fd)
{
	struct stat st;

	if (fstat(fd, &st))
		bail("fstat");
	return st.st_blocks;
}

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
