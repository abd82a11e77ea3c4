/* test_unpack.c - unpack.c alone: directory modes and the memory its bookkeeping takes. */
#include <sys/resource.h>
#include <sys/stat.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs.h"
#include "unpack.h"
#include "util.h"
#include "tap.h"

#define REPEATS		99999	/* the review's archive: this many entries, one path */

/* AddressSanitizer keeps freed memory in quarantine: peak RSS says nothing there. */
#if defined(__SANITIZE_ADDRESS__)
#define RSS_MEANINGFUL 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RSS_MEANINGFUL 0
#endif
#endif
#ifndef RSS_MEANINGFUL
#define RSS_MEANINGFUL 1
#endif

static char	*tmp;

/* A tar stream made of one entry's bytes repeated, then the two zero blocks. */
struct repeat {
	unsigned char	*entry;
	size_t		 len;
	long		 left;
	int		 ended;
	unsigned char	 end[1024];
};

static void
checksum(unsigned char *h)
{
	unsigned int	sum = 0;
	size_t		i;

	memset(h + 148, ' ', 8);
	for (i = 0; i < 512; i++)
		sum += h[i];
	snprintf((char *)h + 148, 8, "%06o", sum);
	h[155] = ' ';
}

/* A ustar header: name, type, mode, size, with an mtime so directory times are kept. */
static void
header(unsigned char *h, const char *name, char type, unsigned int mode, size_t size)
{
	memset(h, 0, 512);
	snprintf((char *)h, 100, "%s", name);
	snprintf((char *)h + 100, 8, "%07o", mode);
	memcpy(h + 108, "0000000", 7);
	memcpy(h + 116, "0000000", 7);
	snprintf((char *)h + 124, 12, "%011o", (unsigned int)size);
	snprintf((char *)h + 136, 12, "%011o", 1000000000U);
	h[156] = type;
	memcpy(h + 257, "ustar", 6);
	memcpy(h + 263, "00", 2);
	checksum(h);
}

/* One directory entry whose path (longer than ustar's 100) is in a pax header. */
static void
dir_entry(struct repeat *r, const char *path, unsigned int mode)
{
	char	*rec;
	size_t	 rlen, pad, n;
	int	 digits;

	/* A pax record is "LEN path=VALUE\n" where LEN counts itself. */
	n = strlen(" path=\n") + strlen(path);
	for (digits = 1; ; digits++) {
		rlen = n + (size_t)digits;
		if (snprintf(NULL, 0, "%zu", rlen) == digits)
			break;
	}
	rec = xasprintf("%zu path=%s\n", rlen, path);
	pad = (512 - rlen % 512) % 512;
	r->len = 512 + rlen + pad + 512;
	r->entry = xcalloc(1, r->len);
	header(r->entry, "PaxHeader", 'x', 0644, rlen);
	memcpy(r->entry + 512, rec, rlen);
	header(r->entry + 512 + rlen + pad, "d", '5', mode, 0);
	free(rec);
}

static ssize_t
repeat_read(void *arg, const void **p, char **cause)
{
	struct repeat	*r = arg;

	(void)cause;
	if (r->left > 0) {
		r->left--;
		*p = r->entry;
		return (ssize_t)r->len;
	}
	if (r->ended)
		return 0;
	r->ended = 1;
	*p = r->end;
	return (ssize_t)sizeof r->end;
}

static long
maxrss_kib(void)
{
	struct rusage	ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

/* Unpack r into a fresh directory; the unpacking is left to the caller to check. */
static int
unpack_repeat(struct repeat *r, const char *dest, char **cause)
{
	struct unpack	*u;
	int		 ret;

	u = unpack_new(dest, 1LL << 40, 1000000, NULL);
	ret = unpack_open(u, cause) == 0 && unpack_entries(u, repeat_read, r, cause) == 0 &&
	    unpack_finish(u, cause) == 0 ? 0 : -1;
	unpack_free(u);
	return ret;
}

/* The review's archive: 99,999 entries naming one 4 KB directory; it took 402 MiB. */
static void
test_same_dir_repeated(void)
{
	struct repeat	 r;
	struct buf	 path = { NULL, 0, 0 };
	char		*dest, *cause = NULL, comp[251];
	long		 before, grew;
	int		 i, ret;

	memset(&r, 0, sizeof r);
	memset(comp, 'a', sizeof comp - 1);
	comp[sizeof comp - 1] = '\0';
	for (i = 0; i < 16; i++) {
		buf_adds(&path, i == 0 ? "" : "/");
		buf_adds(&path, comp);
	}
	tap_size(path.len, 4015, "the path is 4 KB");
	dir_entry(&r, path.data, 0755);
	r.left = REPEATS;
	dest = xasprintf("%s/same", tmp);
	before = maxrss_kib();
	ret = unpack_repeat(&r, dest, &cause);
	grew = maxrss_kib() - before;
	tap_int(ret, 0, "unpacks: %s", cause != NULL ? cause : "ok");
	/* A copy per entry is 390 MiB; one per unique path is 4 KB. */
	if (RSS_MEANINGFUL)
		tap_true(grew < 32 * 1024, "peak memory grew by %ld KiB (< 32 MiB)", grew);
	else
		tap_skip("AddressSanitizer's quarantine", "peak memory grew by %ld KiB", grew);
	fs_rmtree(dest, NULL);
	free(dest);
	free(cause);
	free(r.entry);
	buf_free(&path);
}

static int
mode_of(const char *dest, const char *name)
{
	struct stat	 sb;
	char		*p;
	int		 r;

	p = xasprintf("%s/%s", dest, name);
	r = lstat(p, &sb) == 0 ? (int)(sb.st_mode & 07777) : -1;
	free(p);
	return r;
}

/* A shared 1777 directory keeps its sticky bit; set-id bits on directories go. */
static void
test_dir_modes(void)
{
	static const struct {
		unsigned int	mode;
		int		want;
	} cases[] = {
		{ 01777, 01777 }, { 01755, 01755 }, { 07777, 01777 }, { 02775, 0775 },
		{ 04755, 0755 }, { 0555, 0755 },
	};
	struct repeat	 r;
	char		*dest, *cause = NULL;
	size_t		 i;
	int		 ret;

	for (i = 0; i < nitems(cases); i++) {
		memset(&r, 0, sizeof r);
		dir_entry(&r, "shared", cases[i].mode);
		r.left = 1;
		dest = xasprintf("%s/mode%zu", tmp, i);
		ret = unpack_repeat(&r, dest, &cause);
		tap_int(ret, 0, "0%o unpacks: %s", cases[i].mode, cause != NULL ? cause : "ok");
		tap_int(mode_of(dest, "shared"), cases[i].want, "a 0%o directory lands as 0%o",
		    cases[i].mode, cases[i].want);
		fs_rmtree(dest, NULL);
		free(dest);
		free(cause);
		cause = NULL;
		free(r.entry);
	}
}

int
main(void)
{
	char	tmpl[] = "/tmp/test_unpack.XXXXXX";

	if (mkdtemp(tmpl) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	tmp = tmpl;
	tap_run("directory modes", test_dir_modes);
	tap_run("one directory named 99,999 times", test_same_dir_repeated);
	fs_rmtree(tmp, NULL);
	return tap_done();
}
