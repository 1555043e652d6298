// SPDX-License-Identifier: GPL-2.0
/*
 * memfd_luo_noexec - memfds sealed with F_SEAL_EXEC keep their mode and seals
 * across a live update.
 *
 * Stage 1 preserves two memfds:
 *  token 1: created with MFD_NOEXEC_SEAL (mode 0666, seals F_SEAL_EXEC);
 *  token 2: created executable with MFD_ALLOW_SEALING, then sealed with
 *           F_SEAL_EXEC, which implies the write seals (mode 0777).
 * Stage 2 retrieves them and checks mode, seals and writability. Kernels
 * without the "noexec-fix" feature restore token 1 write-sealed with mode
 * 0777; that check is then reported as SKIP (known bug).
 *
 * Build: gcc -static -O2 -I<kernel>/usr/include memfd_luo_noexec.c
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
#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif
#ifndef F_SEAL_EXEC
#define F_SEAL_EXEC 0x0020
#endif

#define SESSION		"memfd-luo-noexec"
#define TOKEN_NOEXEC	1
#define TOKEN_EXEC	2
#define WRITE_SEALS	(F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | \
			 F_SEAL_FUTURE_WRITE)
#include "memfd_luo_test.h"

/* ---- test ---- */
static int stage1(int foreground)
{
	int luo, session, a, b, err;
	struct stat st;

	luo = luo_open();
	session = session_create(luo, SESSION);
	luo_close(luo);

	a = memfd_create("luo-noexec", MFD_NOEXEC_SEAL);
	if (a < 0)
		bail("memfd_create(MFD_NOEXEC_SEAL)");
	CHECK(pwrite(a, "noexec", 6, 0) == 6, "write noexec memfd");
	if (fstat(a, &st))
		bail("fstat");
	CHECK((st.st_mode & 07777) == 0666, "noexec memfd mode 0%o",
	      st.st_mode & 07777);
	CHECK(fcntl(a, F_GET_SEALS) == F_SEAL_EXEC,
	      "noexec memfd seals 0x%x", fcntl(a, F_GET_SEALS));

	b = memfd_create("luo-exec-sealed", MFD_EXEC | MFD_ALLOW_SEALING);
	if (b < 0)
		bail("memfd_create(MFD_EXEC)");
	CHECK(pwrite(b, "exec", 4, 0) == 4, "write exec memfd");
	CHECK(!fcntl(b, F_ADD_SEALS, F_SEAL_EXEC), "seal exec memfd");
	CHECK(fcntl(b, F_GET_SEALS) == (F_SEAL_EXEC | WRITE_SEALS),
	      "exec memfd seals 0x%x", fcntl(b, F_GET_SEALS));

	err = preserve_fd(session, a, TOKEN_NOEXEC);
	CHECK(!err, "preserve noexec memfd (%d)", err);
	err = preserve_fd(session, b, TOKEN_EXEC);
	CHECK(!err, "preserve exec-sealed memfd (%d)", err);

	hold_and_exit(foreground);
	return 0;
}

static int stage2(void)
{
	char features[128], buf[8] = {};
	int luo, session, a, b, fixed;
	struct stat st;

	read_features(features, sizeof(features));
	printf("# stage 2, features: '%s'\n", features);
	fixed = has_feature(features, "noexec-fix");

	luo = luo_open();
	session = session_retrieve(luo, SESSION);
	luo_close(luo);

	a = retrieve_fd(session, TOKEN_NOEXEC);
	CHECK(a >= 0, "retrieve noexec memfd (%d)", a);
	if (a >= 0) {
		int ok_mode, ok_seals, ok_write;

		ok_mode = !fstat(a, &st) && (st.st_mode & 07777) == 0666;
		ok_seals = fcntl(a, F_GET_SEALS) == F_SEAL_EXEC;
		ok_write = pwrite(a, "NOEXEC", 6, 0) == 6;
		if (fixed || (ok_mode && ok_seals && ok_write)) {
			CHECK(ok_mode, "noexec memfd mode 0%o", st.st_mode & 07777);
			CHECK(ok_seals, "noexec memfd seals 0x%x",
			      fcntl(a, F_GET_SEALS));
			CHECK(ok_write, "noexec memfd writable");
		} else {
			SKIP("kernel lacks noexec-fix",
			     "noexec memfd mode 0%o seals 0x%x writable %d",
			     st.st_mode & 07777, fcntl(a, F_GET_SEALS),
			     ok_write);
		}
		CHECK(pread(a, buf, 6, 0) == 6 &&
		      (!memcmp(buf, "NOEXEC", 6) || !memcmp(buf, "noexec", 6)),
		      "noexec memfd data");
		CHECK(fcntl(a, F_ADD_SEALS, F_SEAL_SEAL) == 0,
		      "noexec memfd still accepts seals");
	}

	b = retrieve_fd(session, TOKEN_EXEC);
	CHECK(b >= 0, "retrieve exec-sealed memfd (%d)", b);
	if (b >= 0) {
		CHECK(fcntl(b, F_GET_SEALS) == (F_SEAL_EXEC | WRITE_SEALS),
		      "exec memfd seals 0x%x", fcntl(b, F_GET_SEALS));
		if (fstat(b, &st))
			bail("fstat");
		CHECK((st.st_mode & 07777) == 0777, "exec memfd mode 0%o",
		      st.st_mode & 07777);
		CHECK(pwrite(b, "x", 1, 0) < 0 && errno == EPERM,
		      "exec memfd write-sealed");
		CHECK(pread(b, buf, 4, 0) == 4 && !memcmp(buf, "exec", 4),
		      "exec memfd data");
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
