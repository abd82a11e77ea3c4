/* client.h - the AWS side of any command: IMDS, the credential chain and the API client. */
#ifndef ASG_CLIENT_H
#define ASG_CLIENT_H

#include "aws.h"
#include "creds.h"
#include "imds.h"

struct config;
struct halt;

/* The three point at each other: a client is set up in place and never moved. */
struct client {
	struct imds		imds;
	struct creds_provider	creds;
	struct aws		aws;
};

/* Set up from the configuration; every wait of theirs ends when halt says so (NULL: never). */
void	client_init(struct client *, const struct config *, const struct halt *);
/* Resolve the region (env, config, then IMDS); 0 or -1 with a cause. */
int	client_region(struct client *, const struct config *, char **);
void	client_free(struct client *);

#endif
