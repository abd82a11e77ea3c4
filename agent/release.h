/* release.h - releases under state_dir/releases, the atomic current link, pruning. */
#ifndef ASG_RELEASE_H
#define ASG_RELEASE_H

/* A version string is safe as a directory name: [A-Za-z0-9._+-], 1..128, no leading '.'. */
int	release_version_ok(const char *);
/* state_dir/releases/VERSION (allocated). */
char	*release_dir(const char *state_dir, const char *version);
/*
 * A fresh staging directory on the same file system as the releases; what
 * the staging dir held is removed (the caller holds the state dir's lock).
 */
int	release_staging(const char *state_dir, const char *version, char **path, char **);
/*
 * Move a verified staging dir into place as releases/VERSION, recording its
 * digest, and fsync. An existing release of that version is replaced only
 * after the new one is complete.
 */
int	release_commit(const char *state_dir, const char *version, const char *staging,
	    const char *sha256, char **);
/* Point state_dir/current at releases/VERSION atomically (symlink + rename) and fsync. */
int	release_activate(const char *state_dir, const char *version, char **);
/* The version current points at, or NULL (no error) when there is none. */
int	release_current(const char *state_dir, char **version, char **);
enum release_presence {
	RELEASE_ABSENT = 0,
	RELEASE_PRESENT = 1,
	/* Installed by an agent that kept the archive's group/world-write bits: not to be reused. */
	RELEASE_LOOSE = 2,
};

/*
 * Whether releases/VERSION is complete, and its recorded digest (allocated,
 * may be NULL when it was installed unverified).
 */
enum release_presence release_present(const char *state_dir, const char *version,
	    char **sha256);
/* Keep the newest keep releases (and always current); remove the others and stale staging. */
int	release_prune(const char *state_dir, int keep, char **);

#endif
