/* policy.h - the boot's decisions as pure functions: no I/O, no clock, no globals. */
#ifndef ASG_POLICY_H
#define ASG_POLICY_H

struct config;
struct tags;

/* Where a set of tags was read. */
enum tag_origin {
	TAGS_FROM_IMDS,		/* the instance's tags in IMDS: no API quota */
	TAGS_FROM_EC2,		/* the instance's tags, EC2 DescribeTags */
	TAGS_FROM_GROUP,	/* the group's tags, DescribeTags of Auto Scaling */
};

/*
 * Whether the instance's launch-time copy of its group's tags is current:
 * only on its first boot (no saved state, or a state saved by another
 * instance, such as one baked into the AMI).
 */
int	policy_launch_fresh(const char *saved_instance_id, const char *instance_id);
/*
 * Whether tags read from the instance hold a usable launch-time copy of the
 * group's version tag: the copy is enabled and fresh, the group is known, the
 * version is there, and so is the digest when one is configured (so that the
 * two never come from different places).
 */
int	policy_launch_copy(const struct config *, int launch_fresh, int group_known,
	    const struct tags *);
/*
 * Whether tags from origin answer for the configured [version] source, and if
 * so how the status view names that source ("instance tag", " (IMDS)").
 * launch_copy is policy_launch_copy's answer for these tags.
 */
int	policy_version_source(const struct config *, enum tag_origin, int launch_copy,
	    const char **name, const char **via);
/* Whether a version with this digest (or NULL) can be verified with what is configured. */
int	policy_verifiable(const struct config *, const char *sha256);
/*
 * Whether an installed release may be used as it is, without a download:
 * have is the digest it was installed with (NULL: installed unverified),
 * sha256 the digest the tags ask for (NULL: none).
 */
int	policy_reusable(const struct config *, const char *have, const char *sha256);

#endif
