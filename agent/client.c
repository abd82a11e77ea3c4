/* client.c - the AWS side of any command: IMDS, the credential chain and the API client. */
#include <stddef.h>

#include "client.h"
#include "config.h"
#include "halt.h"

void
client_init(struct client *c, const struct config *cfg, const struct halt *halt)
{
	imds_init(&c->imds, cfg->imds_endpoint, cfg->imds_timeout);
	creds_init(&c->creds, &c->imds);
	aws_init(&c->aws, &c->imds, &c->creds, NULL, cfg->endpoint_url, cfg->api_timeout);
	c->aws.max_rate = cfg->max_rate;
	c->aws.adaptive = cfg->retry_mode == RETRY_MODE_ADAPTIVE;
	if (halt != NULL) {
		c->imds.halt = halt;
		c->aws.halt = halt;
	}
}

int
client_region(struct client *c, const struct config *cfg, char **cause)
{
	return aws_resolve_region(&c->aws, cfg->region, cause);
}

void
client_free(struct client *c)
{
	if (c == NULL)
		return;
	aws_free(&c->aws);
	creds_free(&c->creds);
	imds_free(&c->imds);
}
