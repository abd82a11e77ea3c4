/* test_artifact.c - unpack policy, limits, digests, signatures and resume over loopback HTTP. */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <zlib.h>

#include "artifact.h"
#include "fs.h"
#include "halt.h"
#include "http.h"
#include "util.h"
#include "tap.h"

static char	*tmp;		/* the test's scratch directory */
static int	 nout;
static int	 have_openssl;	/* keys and signatures made with the openssl CLI */

/* Archives built with Python's tarfile, which writes any entry we ask for. */
static const char fixtures_py[] =
"import io, os, sys, tarfile\n"
"d = sys.argv[1]\n"
"T = 1000000000\n"
"KINDS = {'f': tarfile.REGTYPE, 'd': tarfile.DIRTYPE, 'l': tarfile.SYMTYPE,\n"
"    'h': tarfile.LNKTYPE, 'c': tarfile.CHRTYPE, 'b': tarfile.BLKTYPE,\n"
"    'p': tarfile.FIFOTYPE}\n"
"def mk(name, entries, mode='w', fmt=tarfile.GNU_FORMAT, **kw):\n"
"    with tarfile.open(os.path.join(d, name), mode, format=fmt, **kw) as t:\n"
"        for e in entries:\n"
"            e = list(e) + [None] * (5 - len(e))\n"
"            n, k, data, m, link = e\n"
"            ti = tarfile.TarInfo(n)\n"
"            ti.type = KINDS[k]\n"
"            ti.mode = m if m is not None else 0o644\n"
"            ti.mtime = T\n"
"            ti.linkname = link or ''\n"
"            if k in 'cb':\n"
"                ti.devmajor, ti.devminor = 1, 3\n"
"            if k == 'f':\n"
"                data = data or b''\n"
"                ti.size = len(data)\n"
"                t.addfile(ti, io.BytesIO(data))\n"
"            else:\n"
"                t.addfile(ti)\n"
"big = bytes((i * 7919 + (i >> 9)) & 0xff for i in range(300000))\n"
"open(os.path.join(d, 'big.bin'), 'wb').write(big)\n"
"good = [\n"
"    ('app/', 'd', None, 0o750),\n"
"    ('app/bin/', 'd', None, 0o755),\n"
"    ('app/bin/run', 'f', b'#!/bin/sh\\necho hi\\n', 0o4755),\n"
"    ('app/etc/conf', 'f', b'k=v\\n', 0o640),\n"
"    ('./app/lib/libx.so.1', 'f', b'ELF', 0o755),\n"
"    ('app/lib/libx.so', 'l', None, 0o777, 'libx.so.1'),\n"
"    ('app/bin/conf', 'l', None, 0o777, '../etc/conf'),\n"
"    ('app/hard', 'h', None, 0o640, 'app/etc/conf'),\n"
"    ('app/sgid', 'f', b'g', 0o2711),\n"
"    ('app/tmp/', 'd', None, 0o1777),\n"
"    ('app/empty', 'f', b'', 0o600),\n"
"    ('app/big', 'f', big, 0o644),\n"
"    ('top', 'f', b'top\\n', 0o644),\n"
"]\n"
"mk('good.tar.gz', good, 'w:gz')\n"
"mk('good.tar', good, 'w', tarfile.PAX_FORMAT)\n"
"mk('other.tar.gz', good[:4], 'w:gz')\n"
"bad = {\n"
"    'dotdot': [('../evil', 'f', b'x')],\n"
"    'abs': [('/abs', 'f', b'x')],\n"
"    'midup': [('a/../../x', 'f', b'x')],\n"
"    'inner': [('a/../b', 'f', b'x')],\n"
"    'symabs': [('a', 'l', None, 0o777, '/etc')],\n"
"    'symetc': [('ok', 'f', b'x'), ('a', 'l', None, 0o777, '/etc'),\n"
"        ('a/passwd', 'f', b'root::0:0::/:/bin/sh\\n')],\n"
"    'symup': [('d/', 'd'), ('d/l', 'l', None, 0o777, '../../x')],\n"
"    'symthru': [('sub/', 'd'), ('a', 'l', None, 0o777, 'sub'), ('a/f', 'f', b'x')],\n"
"    'symtrick': [('d/', 'd'), ('d/up', 'l', None, 0o777, '..'),\n"
"        ('x', 'l', None, 0o777, 'd/up/..')],\n"
"    'symover': [('l', 'l', None, 0o777, 'f'), ('l', 'f', b'x')],\n"
"    'hardout': [('h', 'h', None, 0o644, '../outside')],\n"
"    'hardabs': [('h', 'h', None, 0o644, '/etc/passwd')],\n"
"    'hardsym': [('f', 'f', b'x'), ('s', 'l', None, 0o777, 'f'),\n"
"        ('h', 'h', None, 0o644, 's')],\n"
"    'hardmiss': [('h', 'h', None, 0o644, 'nothere')],\n"
"    'chr': [('dev', 'c')],\n"
"    'blk': [('blk', 'b')],\n"
"    'fifo': [('fifo', 'p')],\n"
"    'dup': [('f', 'f', b'1'), ('f', 'f', b'2')],\n"
"    'filedir': [('f', 'f', b'1'), ('f/x', 'f', b'2')],\n"
"}\n"
"for k, v in bad.items():\n"
"    mk(k + '.tar.gz', v, 'w:gz')\n"
"mk('many.tar.gz', [('f%d' % i, 'f', b'x') for i in range(50)], 'w:gz')\n"
"mk('deep.tar.gz', [('d%d/' % i + 'a/' * 30 + 'f', 'f', b'x') for i in range(3)], 'w:gz')\n"
"mk('bomb.tar.gz', [('z%d' % i, 'f', bytes(1 << 20)) for i in range(30)], 'w:gz',\n"
"    compresslevel=1)\n"
"mk('empty.tar', [], 'w')\n"
"mk('resume.tar.gz', [('blob', 'f', os.urandom(2 << 20))], 'w:gz')\n"
"g = open(os.path.join(d, 'good.tar.gz'), 'rb').read()\n"
"b = bytearray(g)\n"
"for i in range(len(b) // 2, len(b) // 2 + 64):\n"
"    b[i] ^= 0x55\n"
"open(os.path.join(d, 'corrupt.tar.gz'), 'wb').write(bytes(b))\n"
"open(os.path.join(d, 'trunc.tar.gz'), 'wb').write(g[:len(g) // 2])\n"
"t = open(os.path.join(d, 'good.tar'), 'rb').read()\n"
"open(os.path.join(d, 'trunc.tar'), 'wb').write(t[:len(t) // 2])\n"
"open(os.path.join(d, 'trailing.tar.gz'), 'wb').write(g + b'trailing bytes\\n')\n"
"open(os.path.join(d, 'garbage.tar.gz'), 'wb').write(os.urandom(5000))\n"
"open(os.path.join(d, 'zero.tar.gz'), 'wb').close()\n"
"import gzip, zlib\n"
"def put(name, data):\n"
"    open(os.path.join(d, name), 'wb').write(data)\n"
"put('badcrc.tar.gz', g[:-8] + bytes([g[-8] ^ 0xff]) + g[-7:])\n"
"put('badlen.tar.gz', g[:-4] + bytes([g[-4] ^ 0xff]) + g[-3:])\n"
"put('notrailer.tar.gz', g[:-4])\n"
"put('multi.tar.gz', gzip.compress(t[:10000]) + gzip.compress(t[10000:]))\n"
"put('junk.tar', t + b'junk' * 100)\n"
"z = gzip.compress(t, compresslevel=0, mtime=0)\n"
"for pos in range(len(z) // 2, len(z)):\n"
"    b = bytearray(z)\n"
"    b[pos] ^= 1\n"
"    try:\n"
"        o = zlib.decompressobj(-15)\n"
"        if o.decompress(bytes(b[10:-8])) != t and o.eof:\n"
"            break\n"
"    except zlib.error:\n"
"        pass\n"
"put('stored.tar.gz', bytes(b))\n";

static int
run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int
run(const char *fmt, ...)
{
	va_list	 ap;
	char	*cmd;
	int	 r;

	va_start(ap, fmt);
	cmd = xvasprintf(fmt, ap);
	va_end(ap);
	r = system(cmd);
	free(cmd);
	return r == 0 ? 0 : -1;
}

static char *
path(const char *name)
{
	return xasprintf("%s/%s", tmp, name);
}

static char *
fresh_dest(void)
{
	return xasprintf("%s/out%d", tmp, ++nout);
}

static int
exists(const char *p)
{
	struct stat	sb;

	return lstat(p, &sb) == 0;
}

static char *
slurp(const char *p, size_t *lenp)
{
	struct buf	 b = { NULL, 0, 0 };
	char		 chunk[8192];
	ssize_t		 n;
	int		 fd;

	if ((fd = open(p, O_RDONLY)) == -1)
		return NULL;
	while ((n = read(fd, chunk, sizeof chunk)) > 0)
		buf_add(&b, chunk, (size_t)n);
	close(fd);
	if (lenp != NULL)
		*lenp = b.len;
	return buf_take(&b);
}

/* The file dir/name holds want: one test point. */
static int
check_file(const char *dir, const char *name, const char *want, const char *what)
{
	char	*p, *got;
	int	 ok;

	p = xasprintf("%s/%s", dir, name);
	got = slurp(p, NULL);
	ok = tap_str(got, want, "%s (%s)", what, name);
	free(got);
	free(p);
	return ok;
}

/* A refused unpack or fetch: -1, a cause saying want, nothing left at dest. */
static void
check_failed(int r, const char *cause, const char *want, const char *dest, const char *what)
{
	tap_int(r, -1, "%s fails: %s", what, cause != NULL ? cause : "(no cause)");
	tap_has(cause, want, "%s: the cause says why", what);
	tap_true(!exists(dest), "%s: dest removed", what);
}

static int
mode_of(const char *dir, const char *name)
{
	struct stat	 sb;
	char		*p;
	int		 r;

	p = xasprintf("%s/%s", dir, name);
	r = lstat(p, &sb) == 0 ? (int)(sb.st_mode & 07777) : -1;
	free(p);
	return r;
}

/* The digest as sha256sum computes it, independently of the code under test. */
static char *
sha_of(const char *p)
{
	char	*cmd, out[65];
	FILE	*f;

	cmd = xasprintf("sha256sum '%s'", p);
	f = popen(cmd, "r");
	free(cmd);
	if (f == NULL || fread(out, 1, 64, f) != 64) {
		if (f != NULL)
			pclose(f);
		return xstrdup("");
	}
	pclose(f);
	out[64] = '\0';
	return xstrdup(out);
}

struct file_reader {
	int	fd;
	size_t	max;		/* bytes per read at most (0: as asked) */
};

static ssize_t
file_read(void *arg, void *p, size_t len, char **cause)
{
	struct file_reader	*r = arg;
	ssize_t			 n;

	if (r->max > 0 && len > r->max)
		len = r->max;
	if ((n = read(r->fd, p, len)) == -1)
		return set_cause(cause, "read: %s", strerror(errno));
	return n;
}

static int
unpack_file(const char *name, const struct artifact_spec *spec, const char *dest,
    size_t chunk, struct artifact_result *res, char **cause)
{
	struct file_reader	 r;
	char			*p;
	int			 ret;

	p = path(name);
	r.fd = open(p, O_RDONLY);
	r.max = chunk;
	free(p);
	if (r.fd == -1)
		return set_cause(cause, "no fixture %s", name);
	ret = artifact_unpack(file_read, &r, spec, dest, res, cause);
	close(r.fd);
	return ret;
}

static void
check_reject(const char *name, const char *want)
{
	struct artifact_spec	 spec;
	struct artifact_result	 res;
	char			*dest, *cause = NULL, *file;
	int			 r;

	tap_case("reject %s", name);
	memset(&spec, 0, sizeof spec);
	dest = fresh_dest();
	file = xasprintf("%s.tar.gz", name);
	r = unpack_file(file, &spec, dest, 0, &res, &cause);
	check_failed(r, cause, want, dest, file);
	artifact_result_free(&res);
	free(cause);
	free(file);
	free(dest);
}

static void
test_good(const char *name, const char *format, size_t chunk)
{
	struct artifact_spec	 spec;
	struct artifact_result	 res;
	struct stat		 a, b;
	char			*dest, *cause = NULL, *p, *q, *big, *want, *sha;
	size_t			 blen, wlen;
	char			 link[64];
	ssize_t			 n;
	int			 r;

	tap_case("unpack %s, %s reads", name, chunk ? "tiny" : "large");
	memset(&spec, 0, sizeof spec);
	memset(&a, 0, sizeof a);
	memset(&b, 0, sizeof b);
	dest = fresh_dest();
	p = path(name);
	sha = sha_of(p);
	free(p);
	r = unpack_file(name, &spec, dest, chunk, &res, &cause);
	tap_int(r, 0, "unpacks: %s", cause != NULL ? cause : "ok");
	tap_str(res.format, format, "format is named");
	tap_int(res.entries, 13, "13 entries");
	tap_ll(res.unpacked, 300000 + 18 + 4 + 3 + 1 + 4, "unpacked bytes counted");
	tap_str(res.sha256, sha, "sha256 of the bytes read is reported");
	tap_true(!res.digest_ok && !res.signature_ok, "nothing claimed verified without a spec");
	check_file(dest, "app/etc/conf", "k=v\n", "file contents");
	check_file(dest, "top", "top\n", "file contents");
	check_file(dest, "app/bin/run", "#!/bin/sh\necho hi\n", "file contents");
	check_file(dest, "app/empty", "", "file contents");
	p = xasprintf("%s/app/big", dest);
	q = path("big.bin");
	big = slurp(p, &blen);
	want = slurp(q, &wlen);
	tap_mem(big, blen, want, wlen, "a large file arrives intact");
	free(big);
	free(want);
	free(q);
	free(p);
	tap_int(mode_of(dest, "app/bin/run"), 0755, "setuid dropped (0%o)",
	    mode_of(dest, "app/bin/run"));
	tap_int(mode_of(dest, "app/sgid"), 0711, "setgid dropped (0%o)",
	    mode_of(dest, "app/sgid"));
	tap_int(mode_of(dest, "app/etc/conf"), 0640, "file modes kept (0%o)",
	    mode_of(dest, "app/etc/conf"));
	tap_int(mode_of(dest, "app/empty"), 0600, "file modes kept (0%o)",
	    mode_of(dest, "app/empty"));
	tap_int(mode_of(dest, "app"), 0750, "directory modes kept (0%o)", mode_of(dest, "app"));
	tap_int(mode_of(dest, "app/tmp"), 0755, "a shared 01777 directory lands as 0755 (0%o)",
	    mode_of(dest, "app/tmp"));
	tap_int(mode_of(dest, "app/etc"), 0755, "implicit directories are 0755 (0%o)",
	    mode_of(dest, "app/etc"));
	p = xasprintf("%s/app/lib/libx.so", dest);
	n = readlink(p, link, sizeof link - 1);
	link[n > 0 ? n : 0] = '\0';
	tap_str(link, "libx.so.1", "symlink target kept");
	free(p);
	check_file(dest, "app/bin/conf", "k=v\n", "a symlink up and across resolves");
	p = xasprintf("%s/app/hard", dest);
	q = xasprintf("%s/app/etc/conf", dest);
	tap_true(stat(p, &a) == 0 && stat(q, &b) == 0, "the hardlink and its target are there");
	tap_size(a.st_ino, b.st_ino, "hardlink shares the inode");
	tap_ll(a.st_mtime, 1000000000, "file mtime kept");
	free(q);
	free(p);
	p = xasprintf("%s/app", dest);
	tap_ll(stat(p, &a) == 0 ? a.st_mtime : -1, 1000000000,
	    "directory mtime kept after writing into it");
	free(p);
	r = fs_rmtree(dest, NULL);
	tap_int(r, 0, "rmtree removes it");
	tap_true(!exists(dest), "... and it is gone");
	artifact_result_free(&res);
	free(sha);
	free(cause);
	free(dest);
}

static void
test_digest(void)
{
	struct artifact_spec	 spec;
	struct artifact_result	 res;
	char			*dest, *cause = NULL, *p, *sha, *c;
	size_t			 len;
	int			 r;

	memset(&spec, 0, sizeof spec);
	p = path("good.tar.gz");
	sha = sha_of(p);
	free(p);

	spec.sha256 = sha;
	dest = fresh_dest();
	r = unpack_file("good.tar.gz", &spec, dest, 0, &res, &cause);
	tap_int(r, 0, "digest match: %s", r == 0 ? "ok" : cause);
	tap_true(res.digest_ok, "digest match: digest_ok set");
	artifact_result_free(&res);
	free(dest);

	for (c = sha; *c != '\0'; c++)
		*c = (char)toupper((unsigned char)*c);
	dest = fresh_dest();
	r = unpack_file("good.tar.gz", &spec, dest, 0, &res, &cause);
	tap_int(r, 0, "an upper-case digest: %s", r == 0 ? "ok" : cause);
	tap_true(res.digest_ok, "digest compared case-insensitively");
	artifact_result_free(&res);
	free(dest);

	sha[10] = sha[10] == 'A' ? 'B' : 'A';
	dest = fresh_dest();
	r = unpack_file("good.tar.gz", &spec, dest, 0, &res, &cause);
	tap_int(r, -1, "digest mismatch at the end fails: %s", cause);
	tap_true(cause != NULL && strncmp(cause, "sha256 mismatch: expected ", 26) == 0,
	    "the cause starts 'sha256 mismatch: expected '");
	tap_true(!res.digest_ok, "digest mismatch: digest_ok not set");
	tap_true(!exists(dest), "digest mismatch at the end removes dest");
	artifact_result_free(&res);
	free(dest);

	spec.sha256 = "abc";
	dest = fresh_dest();
	r = unpack_file("good.tar.gz", &spec, dest, 0, &res, &cause);
	check_failed(r, cause, "not 64 hex digits", dest, "a malformed expected digest");
	free(dest);
	spec.sha256 = "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz";
	dest = fresh_dest();
	r = unpack_file("good.tar.gz", &spec, dest, 0, &res, &cause);
	check_failed(r, cause, "not 64 hex digits", dest, "64 non-hex characters");
	free(dest);

	/* Trailing bytes after the gzip stream are read and hashed. */
	free(sha);
	p = path("trailing.tar.gz");
	sha = sha_of(p);
	free(slurp(p, &len));
	free(p);
	spec.sha256 = sha;
	dest = fresh_dest();
	r = unpack_file("trailing.tar.gz", &spec, dest, 0, &res, &cause);
	tap_int(r, 0, "bytes after the gzip stream: %s", r == 0 ? "ok" : cause);
	tap_true(res.digest_ok, "trailing bytes are part of the digest");
	tap_ll(res.bytes, (long long)len, "trailing bytes are read");
	artifact_result_free(&res);
	free(dest);
	free(sha);
	free(cause);
}

/* A gzip stream of a tar holding 1 GiB of zeros, compressed only as far as it is read. */
struct bomb {
	z_stream	 z;
	unsigned char	 hdr[512];
	unsigned char	 zeros[65536];
	long long	 left;		/* zeros still to compress */
	long long	 out;		/* compressed bytes handed out */
	int		 hdr_done;
	int		 end;
};

static void
tar_header(unsigned char *h, const char *name, long long size)
{
	unsigned int	sum = 0;
	size_t		i;

	memset(h, 0, 512);
	memcpy(h, name, strlen(name));
	memcpy(h + 100, "0000644", 7);
	memcpy(h + 108, "0000000", 7);
	memcpy(h + 116, "0000000", 7);
	snprintf((char *)h + 124, 12, "%011llo", size);
	memcpy(h + 136, "00000000000", 11);
	memset(h + 148, ' ', 8);
	h[156] = '0';
	memcpy(h + 257, "ustar", 6);
	memcpy(h + 263, "00", 2);
	for (i = 0; i < 512; i++)
		sum += h[i];
	snprintf((char *)h + 148, 8, "%06o", sum);
	h[155] = ' ';
}

static ssize_t
bomb_read(void *arg, void *p, size_t len, char **cause)
{
	struct bomb	*b = arg;
	size_t		 chunk;
	int		 flush, r;

	if (len > 4096)
		len = 4096;
	b->z.next_out = p;
	b->z.avail_out = (uInt)len;
	while (b->z.avail_out > 0 && !b->end) {
		if (b->z.avail_in == 0) {
			if (!b->hdr_done) {
				b->z.next_in = b->hdr;
				b->z.avail_in = sizeof b->hdr;
				b->hdr_done = 1;
			} else if (b->left > 0) {
				chunk = b->left < (long long)sizeof b->zeros ?
				    (size_t)b->left : sizeof b->zeros;
				b->z.next_in = b->zeros;
				b->z.avail_in = (uInt)chunk;
				b->left -= (long long)chunk;
			}
		}
		flush = b->z.avail_in == 0 && b->left == 0 ? Z_FINISH : Z_NO_FLUSH;
		r = deflate(&b->z, flush);
		if (r == Z_STREAM_END)
			b->end = 1;
		else if (r != Z_OK && r != Z_BUF_ERROR)
			return set_cause(cause, "deflate: %d", r);
	}
	b->out += (long long)(len - b->z.avail_out);
	return (ssize_t)(len - b->z.avail_out);
}

static void
test_limits(void)
{
	struct artifact_spec	 spec;
	struct artifact_result	 res;
	struct bomb		*b;
	struct halt		 halt = { .stop = 1 };
	double			 t0, took;
	char			*dest, *cause = NULL;
	int			 r;

	memset(&spec, 0, sizeof spec);
	spec.max_size = 10 << 20;
	b = xcalloc(1, sizeof *b);
	tar_header(b->hdr, "zeros", 1LL << 30);
	b->left = 1LL << 30;
	deflateInit2(&b->z, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY);
	dest = fresh_dest();
	t0 = mono_now();
	r = artifact_unpack(bomb_read, b, &spec, dest, &res, &cause);
	took = mono_now() - t0;
	check_failed(r, cause, "passes the limit", dest, "gzip bomb of 1 GiB zeros");
	tap_true(took < 2, "... fast (%.3f s)", took);
	tap_true(b->out < (1 << 20), "... reading little (%lld compressed bytes)", b->out);
	deflateEnd(&b->z);
	free(b);
	free(dest);

	dest = fresh_dest();
	r = unpack_file("bomb.tar.gz", &spec, dest, 0, &res, &cause);
	check_failed(r, cause, "'z10': unpacked size passes the limit", dest,
	    "many 1 MiB files");
	tap_true(res.unpacked <= spec.max_size, "many 1 MiB files stop at max_size (%lld)",
	    res.unpacked);
	free(dest);

	memset(&spec, 0, sizeof spec);
	spec.max_entries = 10;
	dest = fresh_dest();
	r = unpack_file("many.tar.gz", &spec, dest, 0, &res, &cause);
	check_failed(r, cause, "more than 10 entries", dest, "too many entries");
	free(dest);
	spec.max_entries = 50;
	dest = fresh_dest();
	r = unpack_file("many.tar.gz", &spec, dest, 0, &res, &cause);
	tap_int(r, 0, "exactly max_entries is fine: %s", r == 0 ? "ok" : cause);
	tap_int(res.entries, 50, "all of them unpacked");
	artifact_result_free(&res);
	fs_rmtree(dest, NULL);
	free(dest);
	/* 3 entries imply 93 directories: inodes the cap counts, not just the entries. */
	spec.max_entries = 90;
	dest = fresh_dest();
	r = unpack_file("deep.tar.gz", &spec, dest, 0, &res, &cause);
	check_failed(r, cause, "more than 90 entries (with the", dest,
	    "directories a path implies count as entries");
	free(dest);
	spec.max_entries = 96;
	dest = fresh_dest();
	r = unpack_file("deep.tar.gz", &spec, dest, 0, &res, &cause);
	tap_int(r, 0, "3 entries and their 93 directories within 96: %s", r == 0 ? "ok" :
	    cause);
	artifact_result_free(&res);
	fs_rmtree(dest, NULL);
	free(dest);

	memset(&spec, 0, sizeof spec);
	spec.halt = &halt;
	dest = fresh_dest();
	r = unpack_file("good.tar.gz", &spec, dest, 0, &res, &cause);
	tap_int(r, -1, "the stop flag ends an unpack");
	tap_str(cause, "stopped", "stop flag: the cause");
	tap_true(!exists(dest), "stop flag: dest removed");
	free(dest);
	free(cause);
}

struct failing {
	int		fd;
	size_t		left;		/* bytes before failing */
};

static ssize_t
failing_read(void *arg, void *p, size_t len, char **cause)
{
	struct failing	*fr = arg;
	ssize_t		 n;

	if (fr->left == 0)
		return set_cause(cause, "boom at byte 1000");
	if (len > fr->left)
		len = fr->left;
	if ((n = read(fr->fd, p, len)) > 0)
		fr->left -= (size_t)n;
	return n;
}

static void
test_broken(void)
{
	struct artifact_spec	 spec;
	struct artifact_result	 res;
	char			*dest, *cause = NULL, *p;
	size_t			 len;
	static const struct {
		const char	*name;
		const char	*want;
	} broken[] = {
		{ "corrupt.tar.gz", "bad gzip data" },
		{ "stored.tar.gz", "bad gzip data: incorrect data check" },
		{ "badcrc.tar.gz", "bad gzip data: incorrect data check" },
		{ "badlen.tar.gz", "bad gzip data: incorrect length check" },
		{ "notrailer.tar.gz", "gzip data is truncated" },
		{ "trunc.tar.gz", "gzip data is truncated" },
		{ "trunc.tar", "Truncated tar archive" },
		{ "empty.tar", "archive has no entries" },
		{ "garbage.tar.gz", "Unrecognized archive format" },
		{ "zero.tar.gz", "Unrecognized archive format" },
	};
	size_t			 i;
	int			 r;

	memset(&spec, 0, sizeof spec);
	for (i = 0; i < nitems(broken); i++) {
		dest = fresh_dest();
		r = unpack_file(broken[i].name, &spec, dest, 0, &res, &cause);
		check_failed(r, cause, broken[i].want, dest, broken[i].name);
		artifact_result_free(&res);
		free(dest);
	}

	dest = fresh_dest();
	r = unpack_file("multi.tar.gz", &spec, dest, 0, &res, &cause);
	tap_int(r, 0, "a tar split over two gzip members unpacks: %s", r == 0 ? "ok" : cause);
	tap_int(res.entries, 13, "two gzip members: every entry");
	tap_str(res.format, "tar.gz", "two gzip members: the format");
	check_file(dest, "top", "top\n", "two gzip members: the contents");
	artifact_result_free(&res);
	fs_rmtree(dest, NULL);
	free(dest);

	p = path("junk.tar");
	free(slurp(p, &len));
	free(p);
	dest = fresh_dest();
	r = unpack_file("junk.tar", &spec, dest, 0, &res, &cause);
	tap_int(r, 0, "bytes after a plain tar's end are allowed: %s", r == 0 ? "ok" : cause);
	tap_ll(res.bytes, (long long)len, "bytes after a plain tar's end are read");
	artifact_result_free(&res);
	fs_rmtree(dest, NULL);
	free(dest);

	/* A small valid tar, then a gigabyte of zeros inside the same gzip stream. */
	{
		struct bomb	*b;

		b = xcalloc(1, sizeof *b);
		tar_header(b->hdr, "small", 0);
		b->left = 1LL << 30;
		deflateInit2(&b->z, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 9,
		    Z_DEFAULT_STRATEGY);
		dest = fresh_dest();
		r = artifact_unpack(bomb_read, b, &spec, dest, &res, &cause);
		check_failed(r, cause, "after the end of the archive", dest,
		    "a bomb after the end of the tar");
		deflateEnd(&b->z);
		free(b);
		free(dest);
	}

	dest = fresh_dest();
	mkdir(dest, 0755);
	r = unpack_file("good.tar.gz", &spec, dest, 0, &res, &cause);
	tap_int(r, -1, "an existing dest is refused: %s", cause);
	tap_has(cause, "already exists", "an existing dest: the cause says why");
	tap_true(exists(dest), "an existing dest is left alone");
	rmdir(dest);
	free(dest);

	/* A reader that fails part-way: its cause comes through as it is. */
	{
		struct failing	 fr;

		p = path("good.tar.gz");
		fr.fd = open(p, O_RDONLY);
		fr.left = 1000;
		free(p);
		dest = fresh_dest();
		r = artifact_unpack(failing_read, &fr, &spec, dest, &res, &cause);
		tap_int(r, -1, "a reader's failure fails the unpack");
		tap_str(cause, "boom at byte 1000", "a reader's failure is reported as it is");
		tap_true(!exists(dest), "a reader's failure: dest removed");
		close(fr.fd);
		free(dest);
	}

	dest = fresh_dest();
	r = unpack_file("dotdot.tar.gz", &spec, dest, 0, &res, NULL);
	tap_int(r, -1, "a NULL cause is allowed");
	tap_true(!exists(dest), "a NULL cause: dest removed");
	free(dest);

	spec.url = "s3://bucket/key.tar.gz";
	dest = fresh_dest();
	r = artifact_fetch(NULL, &spec, dest, &res, &cause);
	check_failed(r, cause, "no AWS context", dest, "an s3:// URL without AWS");
	free(dest);
	spec.url = "ftp://host/a.tar.gz";
	dest = fresh_dest();
	r = artifact_fetch(NULL, &spec, dest, &res, &cause);
	check_failed(r, cause, "not an s3://, https:// or http:// URL", dest, "an ftp:// URL");
	free(dest);
	spec.url = NULL;

	spec.public_key = "/nonexistent.pem";
	dest = fresh_dest();
	r = unpack_file("good.tar.gz", &spec, dest, 0, &res, &cause);
	tap_int(r, -1, "artifact_unpack refuses to pretend it checks signatures");
	tap_true(!exists(dest), "a public key to artifact_unpack: dest removed");
	free(dest);
	free(cause);
}

static void
test_rmtree(void)
{
	char	*dir, *out, *cause = NULL;
	int	 r;

	dir = path("rm");
	out = path("rm-outside");
	run("mkdir -p '%s/a/b' '%s' && echo keep > '%s/f' && ln -s '%s' '%s/a/link' && "
	    "ln -s '%s/f' '%s/a/b/flink' && touch '%s/a/b/x' && chmod 555 '%s/a/b'",
	    dir, out, out, out, dir, out, dir, dir, dir);
	r = fs_rmtree(dir, &cause);
	tap_int(r, 0, "a tree is removed: %s", cause != NULL ? cause : "ok");
	tap_true(!exists(dir), "the tree is gone");
	check_file(out, "f", "keep\n", "rmtree does not follow symlinks");
	r = fs_rmtree(dir, &cause);
	tap_int(r, 0, "rmtree of nothing is fine");
	free(cause);
	free(out);
	free(dir);
}

/* A one-connection-at-a-time HTTP/1.1 server on 127.0.0.1 for the fetch tests. */
struct route {
	const char	*path;
	const char	*file;		/* under tmp */
	int		 cut;		/* close after half the body, once */
	int		 norange;	/* answer Range requests with 200 */
	int		 cut_done;
};

struct server {
	int		 lfd;
	int		 port;
	pthread_t	 thread;
	volatile int	 stop;
	struct route	*routes;
	size_t		 nroutes;
	int		 ranges;
};

static void
send_all(int fd, const void *p, size_t len)
{
	const char	*c = p;
	ssize_t		 n;

	while (len > 0 && (n = send(fd, c, len, MSG_NOSIGNAL)) > 0) {
		c += n;
		len -= (size_t)n;
	}
}

static void
serve(struct server *s, int fd)
{
	struct route	*rt = NULL;
	char		 req[8192], target[512], *hdr, *p, *body = NULL, *file;
	const char	*range;
	size_t		 got = 0, len = 0, i;
	long long	 from = 0;
	ssize_t		 n;

	while (got < sizeof req - 1) {
		if ((n = recv(fd, req + got, sizeof req - 1 - got, 0)) <= 0)
			return;
		got += (size_t)n;
		req[got] = '\0';
		if (strstr(req, "\r\n\r\n") != NULL)
			break;
	}
	if (sscanf(req, "GET %511s", target) != 1)
		return;
	for (i = 0; i < s->nroutes; i++) {
		if (strcmp(s->routes[i].path, target) == 0)
			rt = &s->routes[i];
	}
	if (rt != NULL) {
		file = path(rt->file);
		body = slurp(file, &len);
		free(file);
	}
	if (body == NULL) {
		hdr = xasprintf("HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n"
		    "Connection: close\r\n\r\nnot found");
		send_all(fd, hdr, strlen(hdr));
		free(hdr);
		return;
	}
	if ((range = strcasestr(req, "\r\nRange: bytes=")) != NULL) {
		s->ranges++;
		from = strtoll(range + 15, NULL, 10);
	}
	if (range != NULL && !rt->norange && from > 0 && (size_t)from < len) {
		hdr = xasprintf("HTTP/1.1 206 Partial Content\r\nContent-Length: %lld\r\n"
		    "Content-Range: bytes %lld-%zu/%zu\r\nETag: \"v1\"\r\n"
		    "Connection: close\r\n\r\n", (long long)len - from, from, len - 1, len);
		p = body + from;
		len -= (size_t)from;
	} else {
		hdr = xasprintf("HTTP/1.1 200 OK\r\nContent-Length: %zu\r\nETag: \"v1\"\r\n"
		    "Connection: close\r\n\r\n", len);
		p = body;
	}
	send_all(fd, hdr, strlen(hdr));
	if (rt->cut && !rt->cut_done && range == NULL) {
		rt->cut_done = 1;
		len /= 2;
	}
	send_all(fd, p, len);
	free(hdr);
	free(body);
}

static void *
server_main(void *arg)
{
	struct server	*s = arg;
	struct pollfd	 pfd;
	int		 fd;

	while (!s->stop) {
		pfd.fd = s->lfd;
		pfd.events = POLLIN;
		if (poll(&pfd, 1, 100) <= 0)
			continue;
		if ((fd = accept(s->lfd, NULL, NULL)) == -1)
			continue;
		serve(s, fd);
		shutdown(fd, SHUT_WR);
		close(fd);
	}
	return NULL;
}

static int
server_start(struct server *s)
{
	struct sockaddr_in	sin;
	socklen_t		slen = sizeof sin;
	int			one = 1;

	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((s->lfd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		return -1;
	setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(s->lfd, (struct sockaddr *)&sin, sizeof sin) == -1 ||
	    listen(s->lfd, 16) == -1 ||
	    getsockname(s->lfd, (struct sockaddr *)&sin, &slen) == -1)
		return -1;
	s->port = ntohs(sin.sin_port);
	return pthread_create(&s->thread, NULL, server_main, s) == 0 ? 0 : -1;
}

static void
server_stop(struct server *s)
{
	s->stop = 1;
	pthread_join(s->thread, NULL);
	close(s->lfd);
}

static char *
url(struct server *s, const char *p)
{
	return xasprintf("http://127.0.0.1:%d%s", s->port, p);
}

/* One artifact_fetch; returns its result, leaves the cause in *cause. */
static int
fetch(struct server *s, const char *art, const char *sha, const char *sig, const char *key,
    const char *dest, struct artifact_result *res, char **cause)
{
	struct artifact_spec	 spec;
	char			*u, *su = NULL;
	int			 r;

	memset(&spec, 0, sizeof spec);
	u = url(s, art);
	spec.url = u;
	spec.sha256 = sha;
	if (sig != NULL)
		su = url(s, sig);
	spec.signature_url = su;
	spec.public_key = key;
	r = artifact_fetch(NULL, &spec, dest, res, cause);
	free(u);
	free(su);
	return r;
}

static void
test_fetch(void)
{
	struct route		 routes[] = {
		{ "/app.tar.gz", "good.tar.gz", 0, 0, 0 },
		{ "/app.tar.gz.ecsig", "good.tar.gz.ecsig", 0, 0, 0 },
		{ "/app.tar.gz.rsasig", "good.tar.gz.rsasig", 0, 0, 0 },
		{ "/tampered.tar.gz", "other.tar.gz", 0, 0, 0 },
		{ "/cut.tar.gz", "resume.tar.gz", 1, 0, 0 },
		{ "/cut.tar.gz.sig", "resume.tar.gz.ecsig", 0, 0, 0 },
		{ "/norange.tar.gz", "resume.tar.gz", 1, 1, 0 },
		{ "/evil.tar.gz", "symetc.tar.gz", 0, 0, 0 },
	};
	struct server		 s;
	struct artifact_result	 res;
	char			*dest, *cause = NULL, *sha, *rsha, *p, *ec, *rsa, *got, *want;
	size_t			 glen, wlen;
	int			 r;

	memset(&s, 0, sizeof s);
	s.routes = routes;
	s.nroutes = nitems(routes);
	if (http_init(&cause) != 0 || server_start(&s) != 0) {
		tap_ok(0, "loopback server: %s", cause != NULL ? cause : strerror(errno));
		return;
	}
	p = path("good.tar.gz");
	sha = sha_of(p);
	free(p);
	p = path("resume.tar.gz");
	rsha = sha_of(p);
	free(p);
	ec = path("ec.pub");
	rsa = path("rsa.pub");

	dest = fresh_dest();
	r = fetch(&s, "/app.tar.gz", sha, NULL, NULL, dest, &res, &cause);
	tap_int(r, 0, "fetch over http with a digest: %s", r == 0 ? "ok" : cause);
	tap_true(res.digest_ok, "the digest checked");
	tap_true(!res.signature_ok, "no signature claimed");
	tap_int(res.resumes, 0, "no resumes");
	check_file(dest, "app/etc/conf", "k=v\n", "the release unpacked");
	tap_str(res.format, "tar.gz", "fetch names the format");
	artifact_result_free(&res);
	free(dest);

	if (!have_openssl) {
		for (r = 0; r < 19; r++)
			tap_skip("no openssl program", "signature check %d", r + 1);
		goto unsigned_tests;
	}
	dest = fresh_dest();
	r = fetch(&s, "/app.tar.gz", NULL, "/app.tar.gz.ecsig", ec, dest, &res, &cause);
	tap_int(r, 0, "fetch with an ECDSA P-256 signature: %s", r == 0 ? "ok" : cause);
	tap_true(res.signature_ok, "ECDSA P-256 signature verifies");
	tap_true(!res.digest_ok, "no digest claimed without one");
	artifact_result_free(&res);
	free(dest);

	dest = fresh_dest();
	r = fetch(&s, "/app.tar.gz", sha, "/app.tar.gz.rsasig", rsa, dest, &res, &cause);
	tap_int(r, 0, "fetch with an RSA signature and a digest: %s", r == 0 ? "ok" : cause);
	tap_true(res.signature_ok, "RSA signature verifies");
	tap_true(res.digest_ok, "and the digest");
	artifact_result_free(&res);
	free(dest);

	dest = fresh_dest();
	r = fetch(&s, "/tampered.tar.gz", NULL, "/app.tar.gz.ecsig", ec, dest, &res, &cause);
	check_failed(r, cause, "signature does not verify with", dest,
	    "a changed artifact's signature");
	free(dest);

	dest = fresh_dest();
	r = fetch(&s, "/app.tar.gz", NULL, "/app.tar.gz.ecsig", rsa, dest, &res, &cause);
	check_failed(r, cause, "signature does not verify", dest, "the wrong key");
	free(dest);

	dest = fresh_dest();
	r = fetch(&s, "/app.tar.gz", NULL, "/app.tar.gz.missing", ec, dest, &res, &cause);
	check_failed(r, cause, "signature file", dest, "a missing signature file");
	tap_has(cause, "404", "a missing signature file: the cause has the 404");
	free(dest);

	dest = fresh_dest();
	r = fetch(&s, "/app.tar.gz", NULL, "/app.tar.gz.ecsig", "/nonexistent.pem", dest, &res,
	    &cause);
	check_failed(r, cause, "public key /nonexistent.pem", dest, "a missing public key");
	free(dest);

unsigned_tests:
	dest = fresh_dest();
	r = fetch(&s, "/nothere.tar.gz", NULL, NULL, NULL, dest, &res, &cause);
	check_failed(r, cause, "HTTP 404", dest, "a missing artifact");
	free(dest);

	dest = fresh_dest();
	r = fetch(&s, "/app.tar.gz",
	    "0000000000000000000000000000000000000000000000000000000000000000", NULL, NULL,
	    dest, &res, &cause);
	check_failed(r, cause, "sha256 mismatch: expected 0000", dest,
	    "fetch with the wrong digest");
	free(dest);

	dest = fresh_dest();
	r = fetch(&s, "/evil.tar.gz", NULL, NULL, NULL, dest, &res, &cause);
	check_failed(r, cause, "unsafe entry 'a'", dest, "an unsafe archive over http");
	free(dest);

	s.ranges = 0;
	dest = fresh_dest();
	r = fetch(&s, "/cut.tar.gz", rsha, have_openssl ? "/cut.tar.gz.sig" : NULL,
	    have_openssl ? ec : NULL, dest, &res, &cause);
	tap_int(r, 0, "a transfer cut at 50%% is fetched: %s", r == 0 ? "ok" : cause);
	tap_int(res.resumes, 1, "a transfer cut at 50%% resumes once");
	tap_int(s.ranges, 1, "... with one Range request");
	tap_true(res.digest_ok, "... and its digest verifies");
	tap_int(res.signature_ok, have_openssl, "... and its signature, given openssl");
	artifact_result_free(&res);
	free(dest);

	dest = fresh_dest();
	r = fetch(&s, "/norange.tar.gz", NULL, NULL, NULL, dest, &res, &cause);
	check_failed(r, cause, "Range", dest, "a server that ignores Range");
	free(dest);

	/* artifact_fetch_file: the same checks, the bytes kept as a file. */
	{
		struct artifact_spec	 spec;
		char			*dst, *dtmp;

		memset(&spec, 0, sizeof spec);
		spec.url = url(&s, "/app.tar.gz");
		spec.sha256 = sha;
		dst = path("fetched.tar.gz");
		dtmp = path("fetched.tar.gz.tmp");
		p = path("good.tar.gz");
		r = artifact_fetch_file(NULL, &spec, dst, &res, &cause);
		got = slurp(dst, &glen);
		want = slurp(p, &wlen);
		tap_int(r, 0, "fetch_file: %s", r == 0 ? "ok" : cause);
		tap_true(res.digest_ok, "fetch_file checks the digest");
		tap_mem(got, glen, want, wlen, "fetch_file writes the verified bytes");
		tap_true(!exists(dtmp), "fetch_file leaves no temporary file");
		free(got);
		free(want);
		free(p);
		unlink(dst);
		spec.sha256 = "1111111111111111111111111111111111111111111111111111111111111111";
		r = artifact_fetch_file(NULL, &spec, dst, &res, &cause);
		check_failed(r, cause, "sha256 mismatch", dst, "fetch_file with the wrong digest");
		tap_true(!exists(dtmp), "fetch_file leaves nothing on a mismatch");
		free((char *)spec.url);
		free(dst);
		free(dtmp);
	}

	server_stop(&s);
	http_cleanup();
	free(ec);
	free(rsa);
	free(sha);
	free(rsha);
	free(cause);
}

int
main(void)
{
	char	 tmpl[] = "/tmp/test_artifact.XXXXXX", *py;
	FILE	*f;
	int	 have_zstd;

	if (mkdtemp(tmpl) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	tmp = tmpl;
	py = path("fixtures.py");
	if ((f = fopen(py, "w")) == NULL || fputs(fixtures_py, f) == EOF || fclose(f) != 0) {
		perror(py);
		return 1;
	}
	if (run("python3 '%s' '%s'", py, tmp) != 0) {
		printf("Bail out! cannot build fixtures (python3)\n");
		return 1;
	}
	have_openssl = run("cd '%s' && "
	    "openssl ecparam -name prime256v1 -genkey -noout -out ec.pem && "
	    "openssl ec -in ec.pem -pubout -out ec.pub 2>/dev/null && "
	    "openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out rsa.pem "
	    "2>/dev/null && openssl pkey -in rsa.pem -pubout -out rsa.pub && "
	    "openssl dgst -sha256 -sign ec.pem -out good.tar.gz.ecsig good.tar.gz && "
	    "openssl dgst -sha256 -sign rsa.pem -out good.tar.gz.rsasig good.tar.gz && "
	    "openssl dgst -sha256 -sign ec.pem -out resume.tar.gz.ecsig resume.tar.gz",
	    tmp) == 0;
	free(py);
	have_zstd = run("cd '%s' && zstd -q -o good.tar.zst good.tar", tmp) == 0;

	test_good("good.tar.gz", "tar.gz", 0);
	test_good("good.tar.gz", "tar.gz", 7);
	test_good("good.tar", "tar", 0);
	if (have_zstd)
		test_good("good.tar.zst", "tar.zst", 0);
	else {
		tap_case("unpack good.tar.zst");
		tap_skip("no zstd program", "tar.zst unpacks");
	}

	check_reject("dotdot", "unsafe entry '../evil': path leaves the release");
	check_reject("abs", "unsafe entry '/abs': absolute path");
	check_reject("midup", "unsafe entry 'a/../../x': path leaves the release");
	check_reject("inner", "unsafe entry 'a/../b': path has a '..' component");
	check_reject("symabs", "unsafe entry 'a': symlink target '/etc' is absolute");
	check_reject("symetc", "unsafe entry 'a': symlink target '/etc' is absolute");
	check_reject("symup", "unsafe entry 'd/l': symlink target '../../x' leaves the release");
	check_reject("symthru", "unsafe entry 'a/f': 'a' is a symlink");
	check_reject("symtrick",
	    "unsafe entry 'x': symlink target 'd/up/..' has '..' after a name");
	check_reject("symover", "unsafe entry 'l': already exists");
	check_reject("hardout", "unsafe entry 'h': hardlink target '../outside': path leaves");
	check_reject("hardabs", "unsafe entry 'h': hardlink target '/etc/passwd': absolute path");
	check_reject("hardsym", "hardlink target 's' is not an earlier regular file");
	check_reject("hardmiss", "hardlink target 'nothere' is not an earlier regular file");
	check_reject("chr", "unsafe entry 'dev': character device");
	check_reject("blk", "unsafe entry 'blk': block device");
	check_reject("fifo", "unsafe entry 'fifo': fifo");
	check_reject("dup", "unsafe entry 'f': already exists");
	check_reject("filedir", "unsafe entry 'f/x': 'f' is not a directory");

	tap_run("digest", test_digest);
	tap_run("limits", test_limits);
	tap_run("broken archives", test_broken);
	tap_run("rmtree", test_rmtree);
	tap_run("fetch", test_fetch);

	if (tap_failed == 0)
		run("rm -rf '%s'", tmp);
	else
		tap_diag("left %s for inspection", tmp);
	return tap_done();
}
