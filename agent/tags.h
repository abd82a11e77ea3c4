/* tags.h - the instance's and its group's tags: read (IMDS, EC2, Auto Scaling), set (CI). */
#ifndef ASG_TAGS_H
#define ASG_TAGS_H

#include <stddef.h>

#include "outcome.h"

struct aws;
struct imds;

#define TAG_GROUP_NAME	"aws:autoscaling:groupName"

/*
 * The readers return an enum outcome: OUTCOME_NOT_FOUND when IMDS tags are
 * off, or the instance is not in a group yet; OUTCOME_RETRY or
 * OUTCOME_THROTTLED when there was no usable answer; OUTCOME_FATAL for a
 * final error (denied, IMDS gave up).
 */

struct tag {
	char	*key;
	char	*value;
};

struct tags {
	struct tag	*v;
	size_t		 n;
};

void	tags_free(struct tags *);
const char *tags_get(const struct tags *, const char *);
void	tags_add(struct tags *, const char *, const char *);
/* Tags with the given keys (NULL-terminated) from IMDS. */
enum outcome tags_from_imds(struct imds *, const char *const *keys, struct tags *, char **);
/* The instance's tags with the given keys, from EC2 DescribeTags. */
enum outcome tags_from_instance(struct aws *, const char *instance_id, const char *const *keys,
	    struct tags *, char **);
/* The group's own tags with the given keys, from Auto Scaling DescribeTags. */
enum outcome tags_from_group(struct aws *, const char *group, const char *const *keys,
	    struct tags *, char **);
/*
 * Set up to TAGS_SET_MAX tags on a group, each a { key, value } pair, in
 * one CreateOrUpdateTags; propagate: copied to the instances it launches.
 */
#define TAGS_SET_MAX	6
enum outcome tags_set_group(struct aws *, const char *group, const char *const kv[][2],
	    size_t n, int propagate, char **);
/* Delete up to TAGS_SET_MAX tags of a group by key, in one DeleteTags (a missing one is no error). */
enum outcome tags_delete_group(struct aws *, const char *group, const char *const *keys,
	    size_t n, char **);
/* The instance's group and lifecycle state from DescribeAutoScalingInstances. */
enum outcome tags_instance_group(struct aws *, const char *instance_id, char **group,
	    char **lifecycle_state, char **);
/* Parsers, exported for the unit tests: EC2 and Auto Scaling DescribeTags answers. */
struct xml_node;
void	tags_parse_ec2(const struct xml_node *, struct tags *);
void	tags_parse_autoscaling(const struct xml_node *, struct tags *);

#endif
