// SPDX-License-Identifier: GPL-2.0
/*
 * memfd_luo_sparse - a sparse memfd survives a live update without being
 * populated.
 *
 * Stage 1: create a 1 GiB memfd, write 8 chunks of 512 KiB spread over it,
 * preserve it, write one more chunk into a hole after preserve (exercises
 * the freeze-time catch-up), then preserve a small "meta" memfd with the
 * numbers measured here. A child keeps the session open; the parent exits.
 *
 * Stage 2: retrieve both, check size, data, holes (SEEK_DATA) and that
 * st_blocks equals what stage 1 measured after its last write, then
 * finish the session.
 *
 * Build: gcc -static -O2 -I<kernel>/usr/include memfd_luo_sparse.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/liveupdate.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define SESSION		"memfd-luo-sparse"
#define TOKEN_DATA	1
#define TOKEN_META	2
#define FILE_SIZE	(1ULL << 30)
#define NR_CHUNKS	8
#define CHUNK		(512 * 1024)
#define STRIDE		(FILE_SIZE / NR_CHUNKS)
/* written after preserve, into a hole */
#define LATE_OFF	(FILE_SIZE - 8 * 1024 * 1024)
#define META_MAGIC	0x4d4c5553504152ULL

struct meta {
	uint64_t magic;
	uint64_t blocks_written;	/* st_blocks before preserve */
	uint64_t blocks_preserved;	/* st_blocks right after preserve */
	uint64_t blocks_final;		/* st_blocks after the late write */
	char features[128];		/* stage 1 kernel's features */
};
#include "memfd_luo_test.h"

/* ---- test ---- */
static void fill(char *buf, size_t len, uint64_t off)
{
	for (size_t i = 0; i < len; i += 8) {
		uint64_t v = (off + i) * 0x9e3779b97f4a7c15ULL ^ 0x5a5a;

		memcpy(buf + i, &v, 8);
	}
}

static int write_chunk(int fd, uint64_t off)
{
	static char buf[CHUNK];

	fill(buf, CHUNK, off);
	return pwrite(fd, buf, CHUNK, off) == CHUNK ? 0 : -errno;
}

static int check_chunk(int fd, uint64_t off)
{
	static char want[CHUNK], got[CHUNK];

	fill(want, CHUNK, off);
	if (pread(fd, got, CHUNK, off) != CHUNK)
		return 0;
	return !memcmp(want, got, CHUNK);
}

static int stage1(int foreground)
{
	struct meta m = { .magic = META_MAGIC };
	int luo, session, fd, mfd, err, ok = 1;

	read_features(m.features, sizeof(m.features));
	printf("# stage 1, features: '%s'\n", m.features);

	luo = luo_open();
	session = session_create(luo, SESSION);
	luo_close(luo);

	fd = memfd_create("luo-sparse", 0);
	if (fd < 0 || ftruncate(fd, FILE_SIZE))
		bail("memfd");
	for (int i = 0; i < NR_CHUNKS; i++)
		ok &= !write_chunk(fd, i * STRIDE);
	CHECK(ok, "write %d chunks", NR_CHUNKS);
	m.blocks_written = st_blocks(fd);

	err = preserve_fd(session, fd, TOKEN_DATA);
	CHECK(!err, "preserve 1 GiB sparse memfd (%d)", err);
	if (err)
		return finish();
	m.blocks_preserved = st_blocks(fd);
	if (has_feature(m.features, "sparse"))
		CHECK(m.blocks_preserved == m.blocks_written,
		      "st_blocks unchanged by preserve (%llu -> %llu)",
		      (unsigned long long)m.blocks_written,
		      (unsigned long long)m.blocks_preserved);
	else
		SKIP("kernel fills holes", "st_blocks unchanged by preserve (%llu -> %llu)",
		     (unsigned long long)m.blocks_written,
		     (unsigned long long)m.blocks_preserved);

	err = write_chunk(fd, LATE_OFF);
	CHECK(!err, "write into a hole after preserve (%d)", err);
	m.blocks_final = st_blocks(fd);

	mfd = memfd_create("luo-sparse-meta", 0);
	if (mfd < 0 || pwrite(mfd, &m, sizeof(m), 0) != sizeof(m))
		bail("meta memfd");
	err = preserve_fd(session, mfd, TOKEN_META);
	CHECK(!err, "preserve meta memfd (%d)", err);

	hold_and_exit(foreground);
	return 0;
}

static int stage2(void)
{
	char features[128];
	int luo, session, fd, mfd, ok;
	unsigned long long before, want;
	struct meta m;
	struct stat st;

	read_features(features, sizeof(features));
	printf("# stage 2, features: '%s'\n", features);

	luo = luo_open();
	session = session_retrieve(luo, SESSION);
	luo_close(luo);

	mfd = retrieve_fd(session, TOKEN_META);
	CHECK(mfd >= 0, "retrieve meta memfd (%d)", mfd);
	if (mfd < 0 || pread(mfd, &m, sizeof(m), 0) != sizeof(m) ||
	    m.magic != META_MAGIC) {
		CHECK(0, "read meta");
		return finish();
	}
	printf("# stage 1 features: '%s'\n", m.features);

	fd = retrieve_fd(session, TOKEN_DATA);
	CHECK(fd >= 0, "retrieve data memfd (%d)", fd);
	if (fd < 0)
		return finish();

	CHECK(!fstat(fd, &st) && st.st_size == (off_t)FILE_SIZE,
	      "size is 1 GiB");
	ok = 1;
	for (int i = 0; i < NR_CHUNKS; i++)
		ok &= check_chunk(fd, i * STRIDE);
	CHECK(ok, "data of %d chunks written before preserve", NR_CHUNKS);
	CHECK(check_chunk(fd, LATE_OFF), "data written into a hole after preserve");

	CHECK(st_blocks(fd) == m.blocks_final,
	      "st_blocks as before kexec (%llu, want %llu)",
	      st_blocks(fd), (unsigned long long)m.blocks_final);

	if (has_feature(m.features, "sparse")) {
		/* the middle of the first gap must still be a hole */
		off_t hole = STRIDE / 2;
		off_t data = lseek(fd, hole, SEEK_DATA);

		CHECK(data > hole && data <= (off_t)STRIDE,
		      "hole kept (SEEK_DATA(%lld) = %lld)",
		      (long long)hole, (long long)data);
	} else {
		SKIP("stage 1 kernel fills holes", "hole kept");
	}

	CHECK(!session_finish(session), "finish session");

	/*
	 * The restored folios belong to the new file like any other: punching
	 * a restored chunk gives back exactly its blocks (and its pages, which
	 * DEBUG_VM checks as they are freed), and a write into a hole adds
	 * exactly its blocks, or none where the preserving kernel filled the
	 * holes.
	 */
	before = st_blocks(fd);
	CHECK(!fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, CHUNK),
	      "punch a restored chunk");
	CHECK(st_blocks(fd) == before - CHUNK / 512,
	      "punching it freed its %d blocks (%llu -> %llu)", CHUNK / 512,
	      before, st_blocks(fd));
	CHECK(lseek(fd, 0, SEEK_DATA) >= (off_t)CHUNK || errno == ENXIO,
	      "the punched chunk is a hole");
	before = st_blocks(fd);
	CHECK(!write_chunk(fd, STRIDE / 2), "write into a hole after finish");
	want = before + (has_feature(m.features, "sparse") ? CHUNK / 512 : 0);
	CHECK(st_blocks(fd) == want,
	      "the write into the hole added %s (%llu -> %llu, want %llu)",
	      has_feature(m.features, "sparse") ? "its blocks" : "no block (holes filled)",
	      before, st_blocks(fd), want);
	CHECK(check_chunk(fd, STRIDE / 2), "read it back");
	return finish();
}

int main(int argc, char **argv)
{
	int foreground = 0;
	int stage = parse_stage(argc, argv, &foreground);

	printf("TAP version 13\n");
	return stage == 1 ? stage1(foreground) : stage2();
}
