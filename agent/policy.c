/* policy.c - the boot's decisions as pure functions: no I/O, no clock, no globals. */
#include <stddef.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "policy.h"
#include "tags.h"

int
policy_launch_fresh(const char *saved_instance_id, const char *instance_id)
{
	return saved_instance_id == NULL || instance_id == NULL ||
	    strcmp(saved_instance_id, instance_id) != 0;
}

/* Whether tag k is set to something. */
static int
has(const struct tags *t, const char *k)
{
	const char	*v = tags_get(t, k);

	return v != NULL && *v != '\0';
}

int
policy_launch_copy(const struct config *cfg, int launch_fresh, int group_known,
    const struct tags *t)
{
	if (!cfg->version_launch_copy || !launch_fresh || !group_known)
		return 0;
	if (!has(t, cfg->version_tag))
		return 0;
	return *cfg->sha256_tag == '\0' || has(t, cfg->sha256_tag);
}

int
policy_version_source(const struct config *cfg, enum tag_origin from, int launch_copy,
    const char **name, const char **via)
{
	static const char *const where[] = {
		[TAGS_FROM_IMDS] = " (IMDS)",
		[TAGS_FROM_EC2] = " (EC2 DescribeTags)",
		[TAGS_FROM_GROUP] = "",
	};
	static const char *const copied[] = {
		[TAGS_FROM_IMDS] = " as copied at launch (IMDS)",
		[TAGS_FROM_EC2] = " as copied at launch (EC2 DescribeTags)",
		[TAGS_FROM_GROUP] = "",
	};
	int	source = cfg->version_source;

	*name = *via = NULL;
	if (from == TAGS_FROM_GROUP) {
		if (source != VERSION_SOURCE_GROUP)
			return 0;
		*name = "group tag";
	} else if (source == VERSION_SOURCE_GROUP) {
		/* The instance's tags stand for the group's only as a fresh launch copy. */
		if (!launch_copy)
			return 0;
		*name = "group tag";
		*via = copied[from];
		return 1;
	} else if (source == VERSION_SOURCE_IMDS && from != TAGS_FROM_IMDS)
		return 0;
	else
		*name = "instance tag";
	*via = where[from];
	return 1;
}

int
policy_verifiable(const struct config *cfg, const char *sha256)
{
	return sha256 != NULL || *cfg->public_key != '\0' || cfg->allow_unverified;
}

int
policy_reusable(const struct config *cfg, const char *have, const char *sha256)
{
	if (have == NULL)	/* installed unverified */
		return cfg->allow_unverified;
	if (sha256 != NULL)
		return strcasecmp(have, sha256) == 0;
	/* Verified by signature when installed; the same key still applies. */
	return *cfg->public_key != '\0' || cfg->allow_unverified;
}
