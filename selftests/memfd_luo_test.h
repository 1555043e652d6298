/* SPDX-License-Identifier: GPL-2.0 */
/*
 * memfd_luo_test.h - helpers shared by the memfd_luo selftests: minimal
 * KTAP output, the memfd_luo feature list, LUO ioctl wrappers, holding a
 * session open across the kexec, and the --stage option.
 */
#ifndef MEMFD_LUO_TEST_H
#define MEMFD_LUO_TEST_H

#include <errno.h>
#include <fcntl.h>
#include <linux/liveupdate.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>


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
static __attribute__((unused)) void read_features(char *buf, size_t len)
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

static __attribute__((unused)) int has_feature(const char *features,
						 const char *name)
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

static __attribute__((unused)) int session_retrieve(int luo, const char *name)
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


#endif /* MEMFD_LUO_TEST_H */
