/* test_release.c - version names, commit, the current link, presence markers, pruning. */
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fs.h"
#include "release.h"
#include "util.h"
#include "tap.h"

static char	*state;

static const char SHA_A[] =
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
static const char SHA_B[] =
    "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB";

static int	exists(const char *, ...) __attribute__((format(printf, 1, 2)));
static int	count_entries(const char *, ...) __attribute__((format(printf, 1, 2)));
static char	*read_at(const char *, ...) __attribute__((format(printf, 1, 2)));

static int
exists(const char *fmt, ...)
{
	struct stat	 sb;
	va_list		 ap;
	char		*p;
	int		 r;

	va_start(ap, fmt);
	p = xvasprintf(fmt, ap);
	va_end(ap);
	r = lstat(p, &sb) == 0;
	free(p);
	return r;
}

static int
count_entries(const char *fmt, ...)
{
	struct dirent	*de;
	va_list		 ap;
	DIR		*d;
	char		*p;
	int		 n = 0;

	va_start(ap, fmt);
	p = xvasprintf(fmt, ap);
	va_end(ap);
	d = opendir(p);
	free(p);
	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			n++;
	}
	closedir(d);
	return n;
}

static void
write_at(const char *dir, const char *name, const char *data)
{
	char	*p;
	int	 fd;

	p = xasprintf("%s/%s", dir, name);
	if ((fd = open(p, O_WRONLY|O_CREAT|O_TRUNC, 0644)) != -1) {
		if (write(fd, data, strlen(data)) == -1)
			tap_diag("write %s: %s", p, strerror(errno));
		close(fd);
	}
	free(p);
}

static char *
read_at(const char *fmt, ...)
{
	va_list	 ap;
	char	*p, buf[256];
	ssize_t	 n;
	int	 fd;

	va_start(ap, fmt);
	p = xvasprintf(fmt, ap);
	va_end(ap);
	fd = open(p, O_RDONLY);
	free(p);
	if (fd == -1)
		return NULL;
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	return xstrdup(buf);
}

/* Stage a tree holding one file, then commit it as version with digest sha. */
static int
install(const char *version, const char *content, const char *sha, char **cause)
{
	char	*staging = NULL;
	int	 ret = -1;

	if (release_staging(state, version, &staging, cause) != 0)
		goto out;
	if (mkdir(staging, 0755) == -1) {
		set_cause(cause, "mkdir %s: %s", staging, strerror(errno));
		goto out;
	}
	write_at(staging, "VERSION", content);
	ret = release_commit(state, version, staging, sha, cause);
out:
	free(staging);
	return ret;
}

static void
test_versions(void)
{
	static const char *const good[] = {
		"1", "1.2.3", "v1.0-rc1+build.5", "A_b", "2024-01-01_1234", "1..2"
	};
	static const char *const bad[] = {
		"", ".", "..", ".hidden", "../../etc", "a/b", "/abs", "a b", "a\nb",
		"caf\xc3\xa9", "a:b", "a*", "a\\b"
	};
	char	 longest[130];
	size_t	 i;
	char	*d;
	int	 ok;

	for (ok = 1, i = 0; i < nitems(good); i++) {
		if (!release_version_ok(good[i])) {
			tap_diag("refused '%s'", good[i]);
			ok = 0;
		}
	}
	tap_true(ok, "good versions accepted");
	for (ok = 1, i = 0; i < nitems(bad); i++) {
		if (release_version_ok(bad[i])) {
			tap_diag("accepted '%s'", bad[i]);
			ok = 0;
		}
	}
	tap_true(ok, "bad versions refused");
	tap_true(!release_version_ok(NULL), "NULL refused");
	memset(longest, 'a', 128);
	longest[128] = '\0';
	tap_true(release_version_ok(longest), "128 characters accepted");
	longest[128] = 'a';
	longest[129] = '\0';
	tap_true(!release_version_ok(longest), "129 characters refused");

	d = release_dir("/var/lib/x", "1.2.3");
	tap_str(d, "/var/lib/x/releases/1.2.3", "release_dir");
	free(d);
	tap_null(release_dir("/var/lib/x", "../../etc"), "release_dir refuses bad versions");
}

static void
test_commit(void)
{
	struct stat	 sb;
	char		*cause = NULL, *sha = NULL, *v = NULL, *staging = NULL, *s, *link;
	char		 buf[256];
	ssize_t		 n;
	int		 r;

	r = release_current(state, &v, &cause);
	tap_int(r, 0, "release_current works before the first release");
	tap_null(v, "no current yet");
	tap_int(release_present(state, "1.0", &sha), 0, "nothing present yet");
	tap_null(sha, "and no digest");

	r = release_staging(state, "1.0", &staging, &cause);
	tap_int(r, 0, "staging: a fresh name: %s", staging != NULL ? staging : cause);
	tap_true(staging != NULL && !exists("%s", staging),
	    "staging: not yet made, for artifact_fetch to create");
	tap_true(exists("%s/releases", state), "staging: the releases directory is made");
	s = xasprintf("%s/staging/", state);
	tap_true(staging != NULL && strncmp(staging, s, strlen(s)) == 0 &&
	    strncmp(staging + strlen(s), "1.0.", 4) == 0 && strlen(staging + strlen(s)) == 10,
	    "staging is state_dir/staging/VERSION.XXXXXX (%s)", staging);
	free(s);
	r = release_staging(state, "../x", &s, &cause);
	tap_int(r, -1, "staging refuses a bad version: %s", cause);
	tap_null(s, "... and names no directory");
	free(staging);

	r = install("1.0", "one\n", SHA_A, &cause);
	tap_int(r, 0, "commit 1.0: %s", r == 0 ? "ok" : cause);
	tap_int(release_present(state, "1.0", &sha), 1, "1.0 present");
	tap_str(sha, SHA_A, "... with its digest");
	free(sha);
	s = read_at("%s/releases/%s/VERSION", state, "1.0");
	tap_str(s, "one\n", "the tree is at releases/1.0");
	free(s);

	r = release_activate(state, "1.0", &cause);
	tap_int(r, 0, "activate 1.0: %s", r == 0 ? "ok" : cause);
	link = xasprintf("%s/current", state);
	n = readlink(link, buf, sizeof buf - 1);
	buf[n > 0 ? n : 0] = '\0';
	tap_str(buf, "releases/1.0", "current is a relative symlink");
	r = release_current(state, &v, &cause);
	tap_int(r, 0, "release_current: %s", r == 0 ? "ok" : cause);
	tap_str(v, "1.0", "release_current says 1.0");
	free(v);
	s = read_at("%s/current/VERSION", state);
	tap_str(s, "one\n", "current resolves to the tree");
	free(s);

	/* A second commit of the same version replaces the tree atomically. */
	r = install("1.0", "one again\n", SHA_B, &cause);
	tap_int(r, 0, "re-commit 1.0: %s", r == 0 ? "ok" : cause);
	s = read_at("%s/current/VERSION", state);
	tap_str(s, "one again\n", "the new tree replaced the old one");
	free(s);
	tap_int(release_present(state, "1.0", &sha), 1, "1.0 still present");
	tap_str(sha, "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
	    "the digest is replaced too, in lower case");
	free(sha);
	tap_int(count_entries("%s/staging", state), 0,
	    "the old tree and the staging dirs are gone after the swap");

	r = install("2.0", "two\n", NULL, &cause);
	tap_int(r, 0, "commit 2.0 unverified: %s", r == 0 ? "ok" : cause);
	tap_int(release_present(state, "2.0", &sha), 1, "an unverified release is present");
	tap_null(sha, "... without a digest");
	s = read_at("%s/releases/.%s.complete", state, "2.0");
	tap_str(s, "unverified\nmodes 0755\n", "its marker says unverified, modes masked");
	free(s);

	r = release_activate(state, "2.0", &cause);
	r |= release_current(state, &v, &cause);
	tap_int(r, 0, "activate 2.0 and read current: %s", r == 0 ? "ok" : cause);
	tap_str(v, "2.0", "activate switches current");
	free(v);
	tap_true(lstat(link, &sb) == 0 && S_ISLNK(sb.st_mode), "current is still a symlink");
	tap_true(!exists("%s/current.tmp-%ld", state, (long)getpid()),
	    "... and its temporary name is gone");

	r = release_activate(state, "3.0", &cause);
	tap_int(r, -1, "activating an absent release fails: %s", cause);
	tap_has(cause, "not installed", "... saying it is not installed");
	r = release_current(state, &v, &cause);
	tap_int(r, 0, "release_current after the failed activation");
	tap_str(v, "2.0", "... and current is untouched");
	free(v);
	r = release_commit(state, "../evil", "/nonexistent", NULL, &cause);
	tap_int(r, -1, "commit refuses a bad version: %s", cause);
	r = release_commit(state, "4.0", "/nonexistent", NULL, &cause);
	tap_int(r, -1, "commit of a missing staging dir fails: %s", cause);
	tap_int(release_present(state, "4.0", NULL), 0, "... and 4.0 is not present");
	r = release_commit(state, "4.0", state, "xyz", &cause);
	tap_int(r, -1, "commit refuses a bad digest: %s", cause);
	free(link);
	free(cause);
}

static void
test_present(void)
{
	char	*dir, *sha = NULL, *v = NULL;

	/* A crash before the marker: the tree is there, the release is not. */
	dir = xasprintf("%s/releases/5.0", state);
	mkdir(dir, 0755);
	tap_int(release_present(state, "5.0", &sha), 0, "a tree without a marker is not present");
	tap_null(sha, "... and has no digest");
	free(dir);
	dir = xasprintf("%s/releases", state);
	write_at(dir, ".5.0.complete", "garbage\n");
	tap_int(release_present(state, "5.0", NULL), 0, "a garbage marker is not present");
	write_at(dir, ".5.0.complete", SHA_A);
	tap_int(release_present(state, "5.0", NULL), 0, "a marker without its newline is torn");
	write_at(dir, ".5.0.complete", "unverified\nmodes 0755\n");
	tap_int(release_present(state, "5.0", NULL), RELEASE_PRESENT,
	    "a complete marker makes it present");
	write_at(dir, ".5.0.complete", "unverified\n");
	tap_int(release_present(state, "5.0", NULL), RELEASE_LOOSE,
	    "a marker of one line is an older agent's: present, its modes unchecked");
	free(v);
	v = xasprintf("%s\n", SHA_A);
	write_at(dir, ".5.0.complete", v);
	tap_int(release_present(state, "5.0", &sha), RELEASE_LOOSE,
	    "... with a digest too");
	tap_str(sha, SHA_A, "... which it still reads");
	free(sha);
	free(v);
	v = xasprintf("%s\nmodes 0777\n", SHA_A);
	write_at(dir, ".5.0.complete", v);
	tap_int(release_present(state, "5.0", NULL), RELEASE_ABSENT,
	    "a second line that is not the masked modes is not present");
	free(v);
	v = xasprintf("%s\nmodes 0755\n", SHA_A);
	write_at(dir, ".5.0.complete", v);
	free(v);
	tap_int(release_present(state, "5.0", NULL), RELEASE_PRESENT,
	    "a digest and masked modes is present");
	write_at(dir, ".6.0.complete", "unverified\nmodes 0755\n");
	tap_int(release_present(state, "6.0", NULL), 0, "a marker without its tree is not");
	tap_int(release_present(state, "../releases/5.0", NULL), 0,
	    "present refuses bad versions");
	free(dir);
}

static void
test_prune(void)
{
	struct timespec	 ts = { 0, 20 * 1000 * 1000 };
	char		*cause = NULL, *v = NULL, *p;
	char		 name[16];
	int		 i, r, ok;

	/* 10..14 committed in order, so 14 is the newest. */
	for (ok = 1, i = 10; i < 15; i++) {
		snprintf(name, sizeof name, "%d.0", i);
		nanosleep(&ts, NULL);
		if (install(name, name, SHA_A, &cause) != 0) {
			tap_diag("install %s: %s", name, cause);
			ok = 0;
		}
	}
	tap_true(ok, "five more releases committed");
	r = release_activate(state, "11.0", &cause);
	tap_int(r, 0, "an old release is current");

	p = xasprintf("%s/staging/9.0.abcdef", state);
	mkdir(p, 0755);
	write_at(p, "junk", "x");
	free(p);
	p = xasprintf("%s/current.tmp-99999", state);
	if (symlink("releases/1.0", p) == -1)
		tap_diag("symlink: %s", strerror(errno));
	free(p);
	p = xasprintf("%s/releases", state);
	write_at(p, ".7.0.complete.tmp", "x");
	free(p);
	p = xasprintf("%s/releases/8.0", state);
	mkdir(p, 0755);
	free(p);

	r = release_prune(state, 2, &cause);
	tap_int(r, 0, "prune keep=2: %s", r == 0 ? "ok" : cause);
	tap_true(release_present(state, "14.0", NULL) && release_present(state, "13.0", NULL),
	    "the two newest are kept");
	tap_true(release_present(state, "11.0", NULL) && exists("%s/releases/11.0", state),
	    "current is kept");
	tap_true(!exists("%s/releases/12.0", state) && !exists("%s/releases/10.0", state) &&
	    !exists("%s/releases/1.0", state) && !exists("%s/releases/2.0", state) &&
	    !exists("%s/releases/.12.0.complete", state), "older releases and markers removed");
	tap_true(!exists("%s/releases/5.0", state) && !exists("%s/releases/8.0", state) &&
	    !exists("%s/releases/.%s.complete", state, "6.0") &&
	    !exists("%s/releases/.%s.complete.tmp", state, "7.0"),
	    "incomplete trees and stray markers removed");
	tap_true(!exists("%s/staging/%s", state, "9.0.abcdef"), "stale staging removed");
	tap_true(exists("%s/%s", state, "staging"), "... but the staging directory kept");
	tap_true(!exists("%s/%s", state, "current.tmp-99999"), "stale current.tmp removed");
	r = release_current(state, &v, &cause);
	tap_int(r, 0, "release_current after pruning");
	tap_str(v, "11.0", "current still 11.0");
	free(v);

	r = release_activate(state, "14.0", &cause);
	r |= release_prune(state, 1, &cause);
	tap_int(r, 0, "activate 14.0 and prune keep=1: %s", r == 0 ? "ok" : cause);
	tap_true(release_present(state, "14.0", NULL) && !release_present(state, "13.0", NULL) &&
	    !release_present(state, "11.0", NULL), "current among the newest counts toward keep");

	p = xasprintf("%s/current", state);
	unlink(p);
	if (symlink("/etc", p) == -1)
		tap_diag("symlink: %s", strerror(errno));
	r = release_current(state, &v, &cause);
	tap_int(r, -1, "a foreign current is an error: %s", cause);
	tap_null(v, "... naming no version");
	r = release_prune(state, 1, &cause);
	tap_int(r, -1, "prune refuses to guess when current is foreign");
	tap_true(release_present(state, "14.0", NULL), "... and removes nothing");
	unlink(p);
	free(p);
	free(cause);
}

int
main(void)
{
	char	tmpl[] = "/tmp/test_release.XXXXXX";
	char	*s;

	if (mkdtemp(tmpl) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	state = xasprintf("%s/state", tmpl);
	tap_run("versions", test_versions);
	tap_run("commit", test_commit);
	tap_run("present", test_present);
	tap_run("prune", test_prune);
	if (tap_failed == 0) {
		fs_rmtree(tmpl, NULL);
	} else
		tap_diag("left %s for inspection", tmpl);
	s = state;
	state = NULL;
	free(s);
	return tap_done();
}
