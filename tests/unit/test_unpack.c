/* test_unpack.c - unpack.c alone: modes, directories others own, its bookkeeping's memory. */
#include <sys/resource.h>
#include <sys/stat.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs.h"
#include "unpack.h"
#include "util.h"
#include "tap.h"

#define REPEATS		99999	/* the review's archive: this many entries, one path */
#define PIECES		8
#define OTHER_UID	65534	/* nobody: the local user who is not the agent */

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

/* Unpack what read(arg) gives into a fresh directory; the caller checks the result. */
static int
unpack_from(reader_view_fn read, void *arg, const char *dest, char **cause)
{
	struct unpack	*u;
	int		 ret;

	u = unpack_new(dest, 1LL << 40, 1000000, NULL);
	ret = unpack_open(u, cause) == 0 && unpack_entries(u, read, arg, cause) == 0 &&
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
	ret = unpack_from(repeat_read, &r, dest, &cause);
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

/* A tar in memory, a piece per entry, handed out a piece per read. */
struct tar {
	struct buf	 piece[PIECES];
	size_t		 n;
	size_t		 next;
	int		 ended;
	unsigned char	 end[1024];
	void		(*before)(struct tar *, size_t);	/* before piece i goes out */
	const char	*dest;
	int		 attacked;
};

static void
tar_add(struct tar *t, const char *name, char type, unsigned int mode, const char *data)
{
	static const unsigned char	zero[512];
	unsigned char			h[512];
	size_t				len = data != NULL ? strlen(data) : 0;

	header(h, name, type, mode, len);
	buf_add(&t->piece[t->n], h, sizeof h);
	buf_add(&t->piece[t->n], data, len);
	buf_add(&t->piece[t->n], zero, (512 - len % 512) % 512);
	t->n++;
}

static ssize_t
tar_read(void *arg, const void **p, char **cause)
{
	struct tar	*t = arg;

	(void)cause;
	if (t->next < t->n) {
		if (t->before != NULL)
			t->before(t, t->next);
		*p = t->piece[t->next].data;
		return (ssize_t)t->piece[t->next++].len;
	}
	if (t->ended)
		return 0;
	t->ended = 1;
	*p = t->end;
	return (ssize_t)sizeof t->end;
}

static void
tar_free(struct tar *t)
{
	size_t	i;

	for (i = 0; i < t->n; i++)
		buf_free(&t->piece[i]);
}

struct mode_case {
	unsigned int	mode;		/* in the archive */
	int		want;		/* on disk */
};

/* One entry of type (a file or a directory) per case: its mode lands as the case wants. */
static void
check_modes(char type, const struct mode_case *cases, size_t n)
{
	struct tar	 t;
	const char	*what = type == '5' ? "directory" : "file";
	char		*dest, *cause = NULL;
	size_t		 i;
	int		 ret;

	for (i = 0; i < n; i++) {
		memset(&t, 0, sizeof t);
		tar_add(&t, "e", type, cases[i].mode, type == '5' ? NULL : "data\n");
		dest = xasprintf("%s/mode%c%zu", tmp, type, i);
		ret = unpack_from(tar_read, &t, dest, &cause);
		tap_int(ret, 0, "0%o unpacks: %s", cases[i].mode, cause != NULL ? cause : "ok");
		tap_int(mode_of(dest, "e"), cases[i].want, "a 0%o %s lands as 0%o (got 0%o)",
		    cases[i].mode, what, cases[i].want, mode_of(dest, "e"));
		fs_rmtree(dest, NULL);
		free(dest);
		free(cause);
		cause = NULL;
		tar_free(&t);
	}
}

/*
 * No group or other write on a directory (a local user could change the
 * verified release), so no sticky bit either; set-id bits go; the owner writes.
 */
static void
test_dir_modes(void)
{
	static const struct mode_case	cases[] = {
		{ 01777, 0755 }, { 01755, 0755 }, { 07777, 0755 }, { 02775, 0755 },
		{ 04755, 0755 }, { 0555, 0755 }, { 0777, 0755 }, { 0770, 0750 },
		{ 0703, 0701 }, { 0750, 0750 }, { 0700, 0700 },
	};

	check_modes('5', cases, nitems(cases));
}

/* No group or other write on a file either; set-id bits go, the rest stays. */
static void
test_file_modes(void)
{
	static const struct mode_case	cases[] = {
		{ 0777, 0755 }, { 0666, 0644 }, { 0662, 0640 }, { 0646, 0644 },
		{ 07777, 0755 }, { 0640, 0640 }, { 0600, 0600 }, { 0400, 0400 },
	};

	check_modes('0', cases, nitems(cases));
}

/*
 * The local user's move: once the archive's "shared/" is in, and before the
 * entries below it arrive, a directory "shared/sub" of their own is there.
 */
static void
make_foreign_sub(struct tar *t, size_t i)
{
	char	*shared, *sub;

	shared = xasprintf("%s/shared", t->dest);
	sub = xasprintf("%s/sub", shared);
	if (i > 0 && !t->attacked && access(shared, F_OK) == 0) {
		if (mkdir(sub, 0777) == 0 && chown(sub, OTHER_UID, OTHER_UID) == 0)
			t->attacked = 1;
		else
			tap_diag("making %s another user's failed: %s", sub, strerror(errno));
	}
	free(sub);
	free(shared);
}

/*
 * A directory on the way that another user owns is refused, whether an entry
 * names it (explicit) or only a path through it (implicit): once the release
 * is verified and used, whatever they put there would pass as verified.
 */
static void
test_foreign_dir(void)
{
	static const char	*want = "'shared/sub' is owned by uid 65534, not by the agent's";
	struct stat		 sb;
	struct tar		 t;
	char			*dest, *f, *cause = NULL;
	int			 explicit, ret;

	for (explicit = 0; explicit <= 1; explicit++) {
		if (geteuid() != 0) {
			tap_skip("only root can give a directory to another user",
			    "a directory another user owns is refused (%s)",
			    explicit ? "named" : "on the way");
			continue;
		}
		memset(&t, 0, sizeof t);
		tar_add(&t, "shared/", '5', 01777, NULL);
		if (explicit)
			tar_add(&t, "shared/sub/", '5', 0755, NULL);
		tar_add(&t, "shared/sub/f", '0', 0644, "planted?\n");
		t.before = make_foreign_sub;
		dest = xasprintf("%s/foreign%d", tmp, explicit);
		t.dest = dest;
		ret = unpack_from(tar_read, &t, dest, &cause);
		tap_true(t.attacked, "the other user's directory was made mid-unpack");
		tap_int(ret, -1, "refused (%s)", explicit ? "named" : "on the way");
		tap_has(cause, want, "the cause names the directory and its owner");
		f = xasprintf("%s/shared/sub/f", dest);
		tap_true(lstat(f, &sb) == -1, "nothing written below it");
		free(f);
		fs_rmtree(dest, NULL);
		free(dest);
		free(cause);
		cause = NULL;
		tar_free(&t);
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
	tap_run("file modes", test_file_modes);
	tap_run("a directory another user owns", test_foreign_dir);
	tap_run("one directory named 99,999 times", test_same_dir_repeated);
	fs_rmtree(tmp, NULL);
	return tap_done();
}
