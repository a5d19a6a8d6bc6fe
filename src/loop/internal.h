/* Shared between loop.c and tls.c only. */
#ifndef LOOP_INTERNAL_H
#define LOOP_INTERNAL_H

#include "loop/loop.h"

/* tls.c */
int loop__tls_start(struct loop_conn *c, const char *host);
void loop__tls_on_read(struct loop_conn *c, ssize_t nread, const char *data);
int loop__tls_write(struct loop_conn *c, const uv_buf_t *bufs, unsigned n);
void loop__tls_read_start(struct loop_conn *c);
void loop__tls_free(struct loop_conn *c);

/* loop.c, called by tls.c */
void loop__conn_ready(struct loop_conn *c);
void loop__conn_failed(struct loop_conn *c, int err, const char *detail);
void loop__conn_close(struct loop_conn *c);
int loop__sock_read_start(struct loop_conn *c);
void loop__sock_read_stop(struct loop_conn *c);

#endif
