// SPDX-License-Identifier: GPL-2.0
/*
 * memfd_luo_abi - the memfd_luo.abi= policy and the memfd-v3 format.
 *
 * Stage 1 (needs the "memfd-v3" feature, else everything is a SKIP):
 *  - /sys/module/memfd_luo/parameters/abi holds v2 (the default) or v3,
 *    refuses an unknown value ("auto", which an earlier version of the
 *    series took, and "v4") with EINVAL and reads back what was written;
 *  - with abi=v2 it preserves token 1: 1 MiB of data in a 4 MiB file,
 *    mode 0640;
 *  - with abi=v3 it preserves token 2: the same shape, mode 0640, plus
 *    scattered single pages; token 3: an MFD_NOEXEC_SEAL memfd (mode 0666,
 *    seals F_SEAL_EXEC); token 4: an empty file;
 *  - then it restores the policy it found.
 * Stage 2 retrieves all four from one session: the data, sizes, positions
 * and holes of both formats must match, the memfd-v3 files keep their
 * mode (0640, 0666), and the memfd-v2 file comes back with the default mode
 * 0777 (memfd-v2 has no mode field). If the session does not exist, stage 1
 * ran on a kernel without memfd-v3 and stage 2 reports SKIPs. On a kernel
 * without memfd-v3 after a patched stage 1, /dev/liveupdate cannot be
 * opened (EIO, the documented failure of a memfd-v3 handover); that is a
 * SKIP too.
 *
 * Build: gcc -static -O2 -I<kernel>/usr/include memfd_luo_abi.c
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

#ifndef MFD_NOEXEC_SEAL
#define MFD_NOEXEC_SEAL 0x0008U
#endif
#ifndef F_SEAL_EXEC
#define F_SEAL_EXEC 0x0020
#endif

#define SESSION		"memfd-luo-abi"
#define ABI_PARAM	"/sys/module/memfd_luo/parameters/abi"
#define TOKEN_V2	1
#define TOKEN_V3	2
#define TOKEN_NOEXEC	3
#define TOKEN_EMPTY	4
#define FILE_SIZE	(4UL << 20)
#define PAGE		4096UL
#define NR_SCATTER	5

#include "memfd_luo_test.h"

/* Whether the kernel command line holds @word. */
static int cmdline_has(const char *word)
{
	char buf[4096];
	ssize_t n;
	int fd = open("/proc/cmdline", O_RDONLY);

	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	return strstr(buf, word) != NULL;
}

static const unsigned long scatter[NR_SCATTER] = { 3, 101, 257, 700, 1023 };

static int read_abi(char *buf, size_t len)
{
	int fd = open(ABI_PARAM, O_RDONLY);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = 0;
	if (n && buf[n - 1] == '\n')
		buf[n - 1] = 0;
	return 0;
}

static int write_abi(const char *val)
{
	int fd = open(ABI_PARAM, O_WRONLY);
	int err = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, val, strlen(val)) < 0)
		err = -errno;
	close(fd);
	return err;
}

static uint8_t pattern_byte(int token, unsigned long off)
{
	uint64_t x = (off / 8 + 1) * 0x9e3779b97f4a7c15ULL + token;

	x ^= x >> 29;
	x *= 0xbf58476d1ce4e5b9ULL;
	return (uint8_t)(x >> (8 * (off % 8)));
}

static void fill(uint8_t *buf, int token, unsigned long off, size_t len)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = pattern_byte(token, off + i);
}

/* 1 MiB at 1 MiB, plus (with @scattered) single pages far apart. */
static int make_file(int token, mode_t mode, int scattered)
{
	static uint8_t buf[1 << 20];
	int fd = memfd_create("luo-abi", MFD_ALLOW_SEALING);

	if (fd < 0)
		bail("memfd_create");
	if (fchmod(fd, mode) || ftruncate(fd, FILE_SIZE))
		bail("fchmod/ftruncate");
	fill(buf, token, 1UL << 20, sizeof(buf));
	if (pwrite(fd, buf, sizeof(buf), 1UL << 20) != sizeof(buf))
		bail("pwrite");
	for (int i = 0; scattered && i < NR_SCATTER; i++) {
		unsigned long off = scatter[i] * PAGE;

		if (off >= (1UL << 20) && off < (2UL << 20))
			continue;
		fill(buf, token, off, PAGE);
		if (pwrite(fd, buf, PAGE, off) != PAGE)
			bail("pwrite page");
	}
	if (lseek(fd, 12345, SEEK_SET) != 12345)
		bail("lseek");
	return fd;
}

/* Compare data and holes with what make_file() wrote. */
static int check_file(int fd, int token, int scattered, const char *what)
{
	static uint8_t got[PAGE], want[PAGE];
	struct stat st;
	int bad = 0;

	if (fstat(fd, &st))
		bail("fstat");
	CHECK(st.st_size == (off_t)FILE_SIZE, "%s: size %lld", what,
	      (long long)st.st_size);
	CHECK(lseek(fd, 0, SEEK_CUR) == 12345, "%s: position", what);
	for (unsigned long p = 0; p < FILE_SIZE / PAGE; p++) {
		unsigned long off = p * PAGE;
		int data = off >= (1UL << 20) && off < (2UL << 20);

		for (int i = 0; scattered && i < NR_SCATTER; i++)
			data |= scatter[i] == p;
		if (data)
			fill(want, token, off, PAGE);
		else
			memset(want, 0, PAGE);
		if (pread(fd, got, PAGE, off) != PAGE || memcmp(got, want, PAGE))
			bad++;
	}
	CHECK(!bad, "%s: data of every page (%d pages differ)", what, bad);
	/* The first hole of the file is still a hole. */
	CHECK(lseek(fd, 0, SEEK_DATA) > 0, "%s: page 0 is a hole", what);
	return 0;
}

static int stage1(int foreground)
{
	int luo, session, v2, v3, nx, empty, err;
	char features[128], abi[16] = "", back[16] = "";

	read_features(features, sizeof(features));
	printf("# stage 1, features: '%s'\n", features);
	if (!has_feature(features, "memfd-v3")) {
		SKIP("kernel has no memfd-v3", "memfd_luo.abi= policy");
		return finish();
	}

	err = read_abi(abi, sizeof(abi));
	CHECK(!err && (!strcmp(abi, "v2") || !strcmp(abi, "v3")),
	      "abi parameter reads '%s' (%d)", err ? "" : abi, err);
	if (!cmdline_has("memfd_luo.abi="))
		CHECK(!strcmp(abi, "v2"),
		      "default policy is v2, which stock kernels read ('%s')", abi);
	else
		SKIP("memfd_luo.abi= on the command line", "default policy is v2");
	err = write_abi("v4");
	CHECK(err == -EINVAL, "abi=v4 refused with EINVAL (%d)", err);
	err = write_abi("auto");
	CHECK(err == -EINVAL, "abi=auto refused with EINVAL (%d)", err);
	err = write_abi("v3");
	if (!err)
		err = read_abi(back, sizeof(back));
	CHECK(!err && !strcmp(back, "v3"), "abi=v3 reads back '%s' (%d)",
	      err ? "" : back, err);

	luo = luo_open();
	session = session_create(luo, SESSION);
	luo_close(luo);

	CHECK(!write_abi("v2"), "abi=v2");
	v2 = make_file(TOKEN_V2, 0640, 0);
	err = preserve_fd(session, v2, TOKEN_V2);
	CHECK(!err, "preserve as memfd-v2 (%d)", err);

	CHECK(!write_abi("v3"), "abi=v3");
	v3 = make_file(TOKEN_V3, 0640, 1);
	err = preserve_fd(session, v3, TOKEN_V3);
	CHECK(!err, "preserve as memfd-v3 (%d)", err);

	nx = memfd_create("luo-abi-noexec", MFD_NOEXEC_SEAL);
	if (nx < 0)
		bail("memfd_create(MFD_NOEXEC_SEAL)");
	CHECK(pwrite(nx, "noexec", 6, 0) == 6, "write noexec memfd");
	err = preserve_fd(session, nx, TOKEN_NOEXEC);
	CHECK(!err, "preserve noexec memfd as memfd-v3 (%d)", err);

	empty = memfd_create("luo-abi-empty", 0);
	if (empty < 0)
		bail("memfd_create");
	err = preserve_fd(session, empty, TOKEN_EMPTY);
	CHECK(!err, "preserve empty memfd as memfd-v3 (%d)", err);

	/* A file keeps its format: changing the policy now changes nothing. */
	CHECK(!write_abi(abi), "abi restored to '%s'", abi);

	hold_and_exit(foreground);
	return 0;
}

static int stage2(void)
{
	struct liveupdate_ioctl_retrieve_session rs = { .size = sizeof(rs) };
	int luo, session, fd;
	char features[128];
	struct stat st;
	char buf[8] = {};

	read_features(features, sizeof(features));
	printf("# stage 2, features: '%s'\n", features);

	luo = luo_fd_arg >= 0 ? luo_fd_arg : open("/dev/liveupdate", O_RDWR);
	if (luo < 0 && errno == EIO && !has_feature(features, "memfd-v3")) {
		/*
		 * Stage 1 handed over memfd-v3 files and this kernel has no
		 * handler for them: LUO refuses every session. Documented.
		 */
		SKIP("this kernel has no memfd-v3 handler (documented EIO)",
		     "no session can be opened after a memfd-v3 handover");
		return finish();
	}
	if (luo < 0)
		bail("open /dev/liveupdate");
	strncpy((char *)rs.name, SESSION, sizeof(rs.name) - 1);
	if (ioctl(luo, LIVEUPDATE_IOCTL_RETRIEVE_SESSION, &rs)) {
		int e = errno;

		luo_close(luo);
		if (e == ENOENT) {
			SKIP("stage 1 kernel had no memfd-v3",
			     "no session '%s'", SESSION);
			return finish();
		}
		errno = e;
		bail("retrieve session");
	}
	luo_close(luo);
	session = rs.fd;

	fd = retrieve_fd(session, TOKEN_V2);
	CHECK(fd >= 0, "retrieve memfd-v2 file (%d)", fd);
	if (fd >= 0) {
		check_file(fd, TOKEN_V2, 0, "memfd-v2");
		if (fstat(fd, &st))
			bail("fstat");
		CHECK((st.st_mode & 07777) == 0777,
		      "memfd-v2: default mode 0%o (no mode field)",
		      st.st_mode & 07777);
	}

	fd = retrieve_fd(session, TOKEN_V3);
	CHECK(fd >= 0, "retrieve memfd-v3 file (%d)", fd);
	if (fd >= 0) {
		check_file(fd, TOKEN_V3, 1, "memfd-v3");
		if (fstat(fd, &st))
			bail("fstat");
		CHECK((st.st_mode & 07777) == 0640,
		      "memfd-v3: mode 0%o kept", st.st_mode & 07777);
		CHECK(pwrite(fd, "w", 1, 0) == 1, "memfd-v3: writable");
	}

	fd = retrieve_fd(session, TOKEN_NOEXEC);
	CHECK(fd >= 0, "retrieve noexec memfd (%d)", fd);
	if (fd >= 0) {
		if (fstat(fd, &st))
			bail("fstat");
		CHECK((st.st_mode & 07777) == 0666,
		      "noexec: mode 0%o", st.st_mode & 07777);
		CHECK(fcntl(fd, F_GET_SEALS) == F_SEAL_EXEC, "noexec: seals 0x%x",
		      fcntl(fd, F_GET_SEALS));
		CHECK(pread(fd, buf, 6, 0) == 6 && !memcmp(buf, "noexec", 6),
		      "noexec: data");
		CHECK(pwrite(fd, "N", 1, 0) == 1, "noexec: writable");
	}

	fd = retrieve_fd(session, TOKEN_EMPTY);
	CHECK(fd >= 0, "retrieve empty memfd (%d)", fd);
	if (fd >= 0) {
		if (fstat(fd, &st))
			bail("fstat");
		CHECK(st.st_size == 0 && st.st_blocks == 0,
		      "empty: size %lld blocks %lld", (long long)st.st_size,
		      (long long)st.st_blocks);
	}

	CHECK(!session_finish(session), "finish session");
	return finish();
}

int main(int argc, char **argv)
{
	int foreground = 0;
	int stage = parse_stage(argc, argv, &foreground);

	printf("TAP version 13\n");
	return stage == 1 ? stage1(foreground) : stage2();
}
