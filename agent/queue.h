/*
 * queue.h - the tail queue health.c keeps its connections in: the part of
 * BSD's <sys/queue.h> it uses, which musl does not ship.
 */
#ifndef ASG_QUEUE_H
#define ASG_QUEUE_H

#include <stddef.h>

#define TAILQ_HEAD(name, type)						\
struct name {								\
	struct type	*tqh_first;					\
	struct type	**tqh_last;	/* the last element's next pointer */ \
}

#define TAILQ_ENTRY(type)						\
struct {								\
	struct type	*tqe_next;					\
	struct type	**tqe_prev;	/* the previous element's next pointer */ \
}

#define TAILQ_FIRST(head)	((head)->tqh_first)
#define TAILQ_NEXT(elm, field)	((elm)->field.tqe_next)

#define TAILQ_INIT(head) do {						\
	(head)->tqh_first = NULL;					\
	(head)->tqh_last = &(head)->tqh_first;				\
} while (0)

#define TAILQ_INSERT_TAIL(head, elm, field) do {			\
	(elm)->field.tqe_next = NULL;					\
	(elm)->field.tqe_prev = (head)->tqh_last;			\
	*(head)->tqh_last = (elm);					\
	(head)->tqh_last = &(elm)->field.tqe_next;			\
} while (0)

#define TAILQ_REMOVE(head, elm, field) do {				\
	if ((elm)->field.tqe_next != NULL)				\
		(elm)->field.tqe_next->field.tqe_prev = (elm)->field.tqe_prev; \
	else								\
		(head)->tqh_last = (elm)->field.tqe_prev;		\
	*(elm)->field.tqe_prev = (elm)->field.tqe_next;			\
} while (0)

#endif
