/* release.c - releases under state_dir/releases, the atomic current link, pruning. */
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs.h"
#include "log.h"
#include "manifest.h"
#include "release.h"
#include "util.h"

/* renameat2(2) has no libc wrapper in musl 1.2.3; the flag is Linux's. */
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE	(1 << 1)
#endif

/*
 * Layout under state_dir:
 *
 *	releases/VERSION/		an unpacked release
 *	releases/.VERSION.complete	its marker: the sha256 (or the pinned
 *					"manifest:HEX") or "unverified", then
 *					"modes 0755"; a release is present only
 *					with a valid marker
 *	staging/VERSION.XXXXXX		where a release is unpacked before commit
 *	current -> releases/VERSION	relative, swapped with rename
 *
 * A version never starts with '.', so markers and temporary files cannot
 * collide with release directories.
 */

#define VERSION_MAX	128
#define MARKER_MAX	128
#define UNVERIFIED	"unverified"
/* The marker's second line: unpacked with modes at most 0755 (agents before wrote none). */
#define MASKED		"modes 0755"

struct found {
	char		*name;
	struct timespec	 committed;	/* the marker's mtime */
};

int
release_version_ok(const char *v)
{
	size_t	i;

	if (v == NULL || *v == '\0' || *v == '.')
		return 0;
	for (i = 0; v[i] != '\0'; i++) {
		if (i >= VERSION_MAX)
			return 0;
		if (!isalnum((unsigned char)v[i]) && strchr("._+-", v[i]) == NULL)
			return 0;
		if ((unsigned char)v[i] >= 0x80)
			return 0;
	}
	return 1;
}

char *
release_dir(const char *state_dir, const char *version)
{
	if (!release_version_ok(version))
		return NULL;
	return xasprintf("%s/releases/%s", state_dir, version);
}

/* What a marker may record: a sha256, or the manifest pin it was verified with. */
static int
digest_ok(const char *s)
{
	const char	*hex = manifest_pin(s);

	return hex64_ok(hex != NULL ? hex : s);
}

static char *
marker_path(const char *state_dir, const char *version)
{
	return xasprintf("%s/releases/.%s.complete", state_dir, version);
}

static int
make_dir(const char *path, char **cause)
{
	struct stat	sb;

	/* chmod too: under UMask=0077 a non-root app unit could not read its release. */
	if (mkdir(path, 0755) == 0)
		return chmod(path, 0755) == 0 ? 0 :
		    set_cause(cause, "chmod %s: %s", path, strerror(errno));
	if (errno != EEXIST)
		return set_cause(cause, "mkdir %s: %s", path, strerror(errno));
	if (lstat(path, &sb) == -1)
		return set_cause(cause, "%s: %s", path, strerror(errno));
	if (!S_ISDIR(sb.st_mode))
		return set_cause(cause, "%s: not a directory", path);
	return 0;
}

static int	clear_dir(const char *, const char *, char **);

int
release_staging(const char *state_dir, const char *version, char **path, char **cause)
{
	char	*releases = NULL, *staging = NULL, *tmpl = NULL, *why = NULL;
	int	 ret = -1;

	*path = NULL;
	if (!release_version_ok(version)) {
		set_cause(cause, "bad version '%s'", version);
		goto out;
	}
	releases = xasprintf("%s/releases", state_dir);
	staging = xasprintf("%s/staging", state_dir);
	if (make_dir(state_dir, cause) != 0 || make_dir(releases, cause) != 0 ||
	    make_dir(staging, cause) != 0)
		goto out;
	/* The caller holds the state dir's lock: anything here is a crashed unpack's, taking space. */
	if (clear_dir(staging, "", &why) != 0)
		log_debug("release: clearing %s: %s", staging, why);
	/*
	 * artifact_fetch makes the directory itself (and removes it on failure),
	 * so only reserve a unique name. Should anything take it meanwhile, its
	 * mkdir fails: nothing is ever unpacked into a directory it did not make.
	 */
	tmpl = xasprintf("%s/%s.XXXXXX", staging, version);
	if (mkdtemp(tmpl) == NULL || rmdir(tmpl) == -1) {
		set_cause(cause, "mkdtemp %s: %s", tmpl, strerror(errno));
		goto out;
	}
	*path = tmpl;
	tmpl = NULL;
	ret = 0;
out:
	free(why);
	free(tmpl);
	free(staging);
	free(releases);
	return ret;
}

/* Flush a whole unpacked tree at once: one syncfs beats an fsync per file. */
static int
sync_tree(const char *path, char **cause)
{
	int	fd, ret = -1;

	if ((fd = open(path, O_RDONLY|O_DIRECTORY|O_NOFOLLOW|O_CLOEXEC)) == -1) {
		set_cause(cause, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (syncfs(fd) == -1) {
		set_cause(cause, "syncfs %s: %s", path, strerror(errno));
		goto out;
	}
	ret = 0;
out:
	if (fd != -1)
		close(fd);
	return ret;
}

int
release_commit(const char *state_dir, const char *version, const char *staging,
    const char *sha256, char **cause)
{
	struct stat	 sb;
	char		*releases = NULL, *dir = NULL, *marker = NULL, *old = NULL;
	char		*content = NULL, *c;
	int		 exists, ret = -1;

	if (!release_version_ok(version)) {
		set_cause(cause, "bad version '%s'", version);
		goto out;
	}
	if (sha256 != NULL && !digest_ok(sha256)) {
		set_cause(cause, "bad sha256 '%s'", sha256);
		goto out;
	}
	if (lstat(staging, &sb) == -1 || !S_ISDIR(sb.st_mode)) {
		set_cause(cause, "%s: not a directory", staging);
		goto out;
	}
	releases = xasprintf("%s/releases", state_dir);
	dir = xasprintf("%s/%s", releases, version);
	marker = marker_path(state_dir, version);
	if (make_dir(releases, cause) != 0 || sync_tree(staging, cause) != 0)
		goto out;

	/* No longer present while it changes: a crash from here on means absent, not torn. */
	if (unlink(marker) == -1 && errno != ENOENT) {
		set_cause(cause, "unlink %s: %s", marker, strerror(errno));
		goto out;
	}
	exists = lstat(dir, &sb) == 0;
	if (exists) {
		if (dir_sync(releases, cause) != 0)
			goto out;
		/* Swap in one step so releases/VERSION (and current) never dangles. */
		if (syscall(SYS_renameat2, AT_FDCWD, staging, AT_FDCWD, dir,
		    RENAME_EXCHANGE) == 0) {
			old = xstrdup(staging);
		} else if (errno == EINVAL || errno == ENOSYS) {
			old = xasprintf("%s.old", staging);
			if (rename(dir, old) == -1) {
				set_cause(cause, "rename %s: %s", dir, strerror(errno));
				free(old);
				old = NULL;
				goto out;
			}
			if (rename(staging, dir) == -1) {
				set_cause(cause, "rename %s: %s", staging, strerror(errno));
				(void)rename(old, dir);
				free(old);
				old = NULL;
				goto out;
			}
		} else {
			set_cause(cause, "rename %s: %s", staging, strerror(errno));
			goto out;
		}
	} else if (rename(staging, dir) == -1) {
		set_cause(cause, "rename %s: %s", staging, strerror(errno));
		goto out;
	}

	content = xasprintf("%s\n" MASKED "\n", sha256 != NULL ? sha256 : UNVERIFIED);
	for (c = content; *c != '\n'; c++)
		*c = (char)tolower((unsigned char)*c);
	if (file_replace(marker, content, strlen(content), 0644, cause) != 0)
		goto out;
	ret = 0;
out:
	/* The old tree is a leftover either way; should this fail, prune retries. */
	if (old != NULL)
		(void)fs_rmtree(old, NULL);
	free(content);
	free(old);
	free(marker);
	free(dir);
	free(releases);
	return ret;
}

enum release_presence
release_present(const char *state_dir, const char *version, char **sha256)
{
	struct stat		 sb;
	char			*marker = NULL, *dir = NULL, *line, buf[MARKER_MAX];
	ssize_t			 n;
	size_t			 len;
	enum release_presence	 kind, ret = RELEASE_ABSENT;
	int			 fd = -1;

	if (sha256 != NULL)
		*sha256 = NULL;
	if (!release_version_ok(version))
		goto out;
	marker = marker_path(state_dir, version);
	dir = xasprintf("%s/releases/%s", state_dir, version);
	if (lstat(dir, &sb) == -1 || !S_ISDIR(sb.st_mode))
		goto out;
	if ((fd = open(marker, O_RDONLY|O_NOFOLLOW|O_CLOEXEC)) == -1)
		goto out;
	if ((n = read(fd, buf, sizeof buf - 1)) <= 0)
		goto out;
	buf[n] = '\0';
	len = (size_t)n;
	if (buf[len - 1] != '\n')
		goto out;
	buf[--len] = '\0';
	kind = RELEASE_LOOSE;
	if ((line = strchr(buf, '\n')) != NULL) {
		*line++ = '\0';
		if (strcmp(line, MASKED) != 0)
			goto out;
		kind = RELEASE_PRESENT;
	}
	if (strcmp(buf, UNVERIFIED) == 0)
		ret = kind;
	else if (digest_ok(buf)) {
		if (sha256 != NULL)
			*sha256 = xstrdup(buf);
		ret = kind;
	}
out:
	if (fd != -1)
		close(fd);
	free(dir);
	free(marker);
	return ret;
}

int
release_activate(const char *state_dir, const char *version, char **cause)
{
	char	*target = NULL, *tmp = NULL, *cur = NULL;
	int	 ret = -1;

	if (!release_version_ok(version)) {
		set_cause(cause, "bad version '%s'", version);
		goto out;
	}
	if (!release_present(state_dir, version, NULL)) {
		set_cause(cause, "release %s is not installed", version);
		goto out;
	}
	target = xasprintf("releases/%s", version);
	tmp = xasprintf("%s/current.tmp-%ld", state_dir, (long)getpid());
	cur = xasprintf("%s/current", state_dir);
	if (unlink(tmp) == -1 && errno != ENOENT) {
		set_cause(cause, "unlink %s: %s", tmp, strerror(errno));
		goto out;
	}
	if (symlink(target, tmp) == -1) {
		set_cause(cause, "symlink %s: %s", tmp, strerror(errno));
		goto out;
	}
	if (rename(tmp, cur) == -1) {
		set_cause(cause, "rename %s: %s", tmp, strerror(errno));
		(void)unlink(tmp);
		goto out;
	}
	if (dir_sync(state_dir, cause) != 0)
		goto out;
	ret = 0;
out:
	free(cur);
	free(tmp);
	free(target);
	return ret;
}

/* readlink into an allocated string, however long. */
static char *
read_link(const char *path)
{
	char	*s = NULL;
	size_t	 size = 128;
	ssize_t	 n;

	for (;;) {
		s = xrealloc(s, size);
		if ((n = readlink(path, s, size)) == -1) {
			free(s);
			return NULL;
		}
		if ((size_t)n < size) {
			s[n] = '\0';
			return s;
		}
		size *= 2;
	}
}

int
release_current(const char *state_dir, char **version, char **cause)
{
	char	*cur, *target = NULL;
	int	 ret = -1;

	*version = NULL;
	cur = xasprintf("%s/current", state_dir);
	if ((target = read_link(cur)) == NULL) {
		if (errno == ENOENT)
			ret = 0;
		else
			set_cause(cause, "%s: %s", cur, strerror(errno));
		goto out;
	}
	if (strncmp(target, "releases/", 9) != 0 || !release_version_ok(target + 9)) {
		set_cause(cause, "%s points at '%s', not at releases/VERSION", cur, target);
		goto out;
	}
	*version = xstrdup(target + 9);
	ret = 0;
out:
	free(target);
	free(cur);
	return ret;
}

static int
found_cmp(const void *a, const void *b)
{
	const struct found	*fa = a, *fb = b;

	/* Newest first; ties by name so the order is stable. */
	if (fa->committed.tv_sec != fb->committed.tv_sec)
		return fa->committed.tv_sec > fb->committed.tv_sec ? -1 : 1;
	if (fa->committed.tv_nsec != fb->committed.tv_nsec)
		return fa->committed.tv_nsec > fb->committed.tv_nsec ? -1 : 1;
	return strcmp(fb->name, fa->name);
}

/* Remove a release: marker first, so a crash half-way leaves it absent, not torn. */
static int
remove_release(const char *state_dir, const char *version, char **cause)
{
	char	*marker, *dir, *releases;
	int	 ret = -1;

	marker = marker_path(state_dir, version);
	dir = xasprintf("%s/releases/%s", state_dir, version);
	releases = xasprintf("%s/releases", state_dir);
	if (unlink(marker) == -1 && errno != ENOENT) {
		set_cause(cause, "unlink %s: %s", marker, strerror(errno));
		goto out;
	}
	/* On disk before the tree goes: a file system may reorder them. */
	if (dir_sync(releases, cause) != 0 || fs_rmtree(dir, cause) != 0)
		goto out;
	ret = 0;
out:
	free(releases);
	free(dir);
	free(marker);
	return ret;
}

/* Whether name is a marker or temporary file with no release directory of its own. */
static int
stray_file(const char *releases, const char *name)
{
	struct stat	 sb;
	const char	*suffix = ".complete";
	char		*version, *dir;
	size_t		 len = strlen(name), slen = strlen(suffix);
	int		 stray;

	if (name[0] != '.')
		return 0;
	if (len > 4 && strcmp(name + len - 4, ".tmp") == 0)
		return 1;
	if (len <= slen + 1 || strcmp(name + len - slen, suffix) != 0)
		return 0;
	version = xstrndup(name + 1, len - slen - 1);
	if (!release_version_ok(version)) {
		free(version);
		return 0;
	}
	dir = xasprintf("%s/%s", releases, version);
	stray = lstat(dir, &sb) == -1 || !S_ISDIR(sb.st_mode);
	free(dir);
	free(version);
	return stray;
}

/* Remove everything in dir whose name starts with prefix (all of it for ""). */
static int
clear_dir(const char *dir, const char *prefix, char **cause)
{
	struct dirent	*de;
	DIR		*d;
	char		*path, *why = NULL;
	int		 ret = 0;

	if ((d = opendir(dir)) == NULL) {
		if (errno == ENOENT)
			return 0;
		return set_cause(cause, "%s: %s", dir, strerror(errno));
	}
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (strncmp(de->d_name, prefix, strlen(prefix)) != 0)
			continue;
		path = xasprintf("%s/%s", dir, de->d_name);
		if (fs_rmtree(path, &why) != 0 && ret == 0) {
			ret = set_cause(cause, "%s", why);
		}
		free(path);
	}
	free(why);
	closedir(d);
	return ret;
}

int
release_prune(const char *state_dir, int keep, char **cause)
{
	struct found	*v = NULL;
	struct stat	 sb;
	struct dirent	*de;
	DIR		*d = NULL;
	char		*releases = NULL, *staging = NULL, *cur = NULL, *path, *why = NULL;
	size_t		 n = 0, i, kept = 0;
	int		 failed = 0, ret = -1;

	if (release_current(state_dir, &cur, cause) != 0)
		goto out;
	releases = xasprintf("%s/releases", state_dir);
	staging = xasprintf("%s/staging", state_dir);
	if ((d = opendir(releases)) == NULL && errno != ENOENT) {
		set_cause(cause, "%s: %s", releases, strerror(errno));
		goto out;
	}
	while (d != NULL && (de = readdir(d)) != NULL) {
		path = xasprintf("%s/%s", releases, de->d_name);
		if (stray_file(releases, de->d_name)) {
			if (unlink(path) == -1 && errno != ENOENT && !failed++)
				set_cause(cause, "unlink %s: %s", path, strerror(errno));
		} else if (release_version_ok(de->d_name) && lstat(path, &sb) == 0 &&
		    S_ISDIR(sb.st_mode)) {
			v = xrealloc(v, (n + 1) * sizeof *v);
			v[n].name = xstrdup(de->d_name);
			v[n].committed.tv_sec = -1;
			v[n].committed.tv_nsec = 0;
			free(path);
			path = marker_path(state_dir, de->d_name);
			if (release_present(state_dir, de->d_name, NULL) &&
			    stat(path, &sb) == 0)
				v[n].committed = sb.st_mtim;
			n++;
		}
		free(path);
	}
	if (n > 0)
		qsort(v, n, sizeof *v, found_cmp);
	for (i = 0; i < n; i++) {
		/* Incomplete releases (no marker) sort last and are never kept for keep. */
		if (v[i].committed.tv_sec != -1 && keep > 0 && kept < (size_t)keep) {
			kept++;
			continue;
		}
		if (cur != NULL && strcmp(v[i].name, cur) == 0)
			continue;
		if (remove_release(state_dir, v[i].name, &why) != 0 && !failed++)
			set_cause(cause, "%s", why);
	}
	if (clear_dir(staging, "", &why) != 0 && !failed++)
		set_cause(cause, "%s", why);
	if (clear_dir(state_dir, "current.tmp-", &why) != 0 && !failed++)
		set_cause(cause, "%s", why);
	ret = failed ? -1 : 0;
out:
	if (d != NULL)
		closedir(d);
	for (i = 0; i < n; i++)
		free(v[i].name);
	free(v);
	free(why);
	free(cur);
	free(staging);
	free(releases);
	return ret;
}
