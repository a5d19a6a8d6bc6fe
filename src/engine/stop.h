/*
 * A clean stop on SIGINT and SIGTERM, for the runs that ask for one
 * (ocisync_copy_opts.handle_signals): the signal is noted once for the whole
 * process, and every event loop that watches for it aborts what it has in
 * flight at once (requests, backoffs, layer builds), so that the run ends
 * within moments, commits nothing half-done and reports OCISYNC_EINTERRUPTED.
 *
 * Between loops (a build joining its layer thread, a sync between listing
 * and copying) a handler of our own only notes the signal; the next step
 * sees it with engine_stop_requested() and does not start.
 */
#ifndef ENGINE_STOP_H
#define ENGINE_STOP_H

#include <stdbool.h>
#include <uv.h>

/*
 * Brackets a library call that handles signals (nested calls count): the
 * outermost one forgets an earlier signal on entry, and restores the
 * previous dispositions of SIGINT and SIGTERM on leaving. Main thread only.
 */
void engine_stop_enter(void);
void engine_stop_leave(void);

/* The signal that asked the run to stop (SIGINT or SIGTERM), or 0. */
int engine_stop_requested(void);
/* "SIGINT" or "SIGTERM", for messages. */
const char *engine_stop_name(void);

struct engine_stop_watch;
typedef void (*engine_stop_cb)(struct engine_stop_watch *w);

/* Watches one loop for the signals; embedded in its owner. */
struct engine_stop_watch {
    uv_signal_t sig[2];
    uv_timer_t late; /* calls cb at once when the signal came before the watch started */
    engine_stop_cb cb;
    void *data;
    bool active;
    bool fired;
};

/*
 * Starts watching on uv (within engine_stop_enter/leave): cb runs once, on the
 * loop's thread, when SIGINT or SIGTERM arrives, or soon after starting if
 * one already did. Returns 0 or a libuv error.
 */
int engine_stop_watch_start(struct engine_stop_watch *w, uv_loop_t *uv, engine_stop_cb cb,
                            void *data);
/* Stops watching and closes the handles (the loop must run once more to free them). */
void engine_stop_watch_close(struct engine_stop_watch *w);

#endif
