/* rollhist.h - the history of rollouts on the groups' tags: read, pruned, looked up, listed. */
#ifndef ASG_ROLLHIST_H
#define ASG_ROLLHIST_H

#include <stddef.h>
#include <stdio.h>

struct aws;
struct history;
struct rollgrp;

/* Every group's history entries, *hist to be cleared and freed by the caller (on error too). */
int		 rollhist_all(struct aws *, struct history **hist, size_t *nhist, char **);
int		 rollhist_prune(struct aws *, const struct rollgrp *, char **);
/* The sha256 of the newest rollout of version in the groups' history, or NULL. */
const char	*rollhist_digest(const struct rollgrp *const *, size_t, const char *version);
/* Sorts the entries by start time. */
void		 rollhist_print(FILE *out, int json, struct history *, size_t);

#endif
