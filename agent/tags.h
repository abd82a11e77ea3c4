/* tags.h - reading tags: the instance's (IMDS or EC2) and its Auto Scaling group's. */
#ifndef ASG_TAGS_H
#define ASG_TAGS_H

#include <stddef.h>

struct aws;
struct imds;

#define TAG_GROUP_NAME	"aws:autoscaling:groupName"

enum tags_result {
	TAGS_ERROR = -1,
	TAGS_OK = 0,
	TAGS_UNAVAILABLE = 1,	/* IMDS tags off, or the instance not in a group yet */
	TAGS_RETRY = 2,		/* no usable answer (throttled, 5xx, unreachable): try later */
};

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
/* Tags with the given keys (NULL-terminated) from IMDS; TAGS_UNAVAILABLE when IMDS tags are off. */
int	tags_from_imds(struct imds *, const char *const *keys, struct tags *, char **);
/* The instance's tags with the given keys, from EC2 DescribeTags. */
int	tags_from_instance(struct aws *, const char *instance_id, const char *const *keys,
	    struct tags *, char **);
/* The group's own tags with the given keys, from Auto Scaling DescribeTags. */
int	tags_from_group(struct aws *, const char *group, const char *const *keys,
	    struct tags *, char **);
/* The instance's group and lifecycle state from DescribeAutoScalingInstances. */
int	tags_instance_group(struct aws *, const char *instance_id, char **group,
	    char **lifecycle_state, char **);
/* Parsers, exported for the unit tests: EC2 and Auto Scaling DescribeTags answers. */
struct xml_node;
void	tags_parse_ec2(const struct xml_node *, struct tags *);
void	tags_parse_autoscaling(const struct xml_node *, struct tags *);

#endif
