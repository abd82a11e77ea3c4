/* publish.h - asg-agent publish: an artifact, its chunk manifest and signatures to S3, for CI. */
#ifndef ASG_PUBLISH_H
#define ASG_PUBLISH_H

#include <stddef.h>
#include <stdio.h>

struct aws;

/* Exit codes of publish. */
#define PUBLISH_OK	0
#define PUBLISH_ERROR	1
#define PUBLISH_USAGE	2
#define PUBLISH_REFUSED	3	/* the version exists with other bytes */

#define PUBLISH_CHUNK_SIZE	(4 << 20)	/* the manifest's chunk-size, for up to 56 GiB */
#define PUBLISH_PART_SIZE	(8 << 20)	/* multipart above this, in parts this big */

struct publish_opts {
	const char		*file;
	const char		*version;
	const char		*url_template;	/* as [artifact] url: s3://BUCKET/KEY with {version} */
	const char		*sign_key;	/* PEM private key (ECDSA or RSA), or NULL */
	const char *const	*groups;	/* tagged with the version and digest */
	size_t			 ngroups;
	const char		*version_tag;
	const char		*sha256_tag;
	FILE			*out;		/* the digest tag value is printed here */
};

/*
 * Upload the artifact (multipart when large), then {url}.manifest, then the
 * signatures; print the digest tag value or set the tags. Returns a PUBLISH_*.
 */
int	publish_run(struct aws *, const struct publish_opts *, char **);

#endif
