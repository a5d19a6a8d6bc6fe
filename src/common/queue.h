/*
 * An intrusive circular doubly linked list, in the manner of libuv's queue.h:
 * the link lives inside its owner and container_of finds the owner again.
 */
#ifndef COMMON_QUEUE_H
#define COMMON_QUEUE_H

#include <stddef.h>

#ifndef container_of
#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))
#endif

struct queue {
    struct queue *next, *prev;
};

static inline void queue_init(struct queue *q)
{
    q->next = q->prev = q;
}

static inline int queue_empty(const struct queue *q)
{
    return q->next == q;
}

static inline void queue_insert_tail(struct queue *h, struct queue *q)
{
    q->next = h;
    q->prev = h->prev;
    h->prev->next = q;
    h->prev = q;
}

static inline void queue_insert_head(struct queue *h, struct queue *q)
{
    q->next = h->next;
    q->prev = h;
    h->next->prev = q;
    h->next = q;
}

static inline void queue_remove(struct queue *q)
{
    q->prev->next = q->next;
    q->next->prev = q->prev;
    q->next = q->prev = q;
}

static inline struct queue *queue_head(const struct queue *h)
{
    return h->next;
}

#define queue_foreach(q, h) for ((q) = (h)->next; (q) != (h); (q) = (q)->next)

#endif
