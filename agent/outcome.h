/* outcome.h - what a call that may be retried came to: one type for all of them. */
#ifndef ASG_OUTCOME_H
#define ASG_OUTCOME_H

/*
 * Returned by the IMDS client, the AWS call layer and the modules above them
 * (tags, lifecycle). Only OUTCOME_RETRY and OUTCOME_THROTTLED are worth
 * asking again, after retry_pause(); the others are answers.
 */
enum outcome {
	OUTCOME_OK = 0,		/* done: the answer is there */
	OUTCOME_NOT_FOUND,	/* a definite "none": IMDS 404, IMDS tags off, the
				   instance in no group, no pending lifecycle action */
	OUTCOME_RETRY,		/* no usable answer (network, 5xx, no credentials yet):
				   ask again after a pause; see cause */
	OUTCOME_THROTTLED,	/* still throttled when the call gave up: ask again
				   after a longer pause; see cause */
	OUTCOME_FATAL,		/* a final answer (denied, invalid, IMDS disabled):
				   asking again gives the same; see cause */
};

/* Whether asking again may give another answer. */
static inline int
outcome_retryable(enum outcome o)
{
	return o == OUTCOME_RETRY || o == OUTCOME_THROTTLED;
}

/* The worse of two: a final answer, then throttled, then no answer, then anything else. */
static inline enum outcome
outcome_worse(enum outcome a, enum outcome b)
{
	if (a == OUTCOME_FATAL || b == OUTCOME_FATAL)
		return OUTCOME_FATAL;
	if (a == OUTCOME_THROTTLED || b == OUTCOME_THROTTLED)
		return OUTCOME_THROTTLED;
	if (a == OUTCOME_RETRY || b == OUTCOME_RETRY)
		return OUTCOME_RETRY;
	return OUTCOME_OK;
}

#endif
