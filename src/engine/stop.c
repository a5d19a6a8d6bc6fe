#include "engine/stop.h"

#include "common/log.h"

#include <signal.h>
#include <string.h>

static volatile sig_atomic_t stop_signal;
static unsigned depth;    /* engine_stop_enter calls not yet left */
static unsigned watching; /* watches started and not closed */
static uv_mutex_t lock;   /* depth, watching and the dispositions they decide */
static uv_once_t lock_once = UV_ONCE_INIT;
static struct sigaction saved[2];

static const int signals[2] = {SIGINT, SIGTERM};

static void init_lock(void)
{
    uv_mutex_init(&lock);
}

/* Between loops: only note the signal; the next step sees it and does not start. */
static void note_signal(int signum)
{
    stop_signal = signum;
}

static void install_fallback(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = note_signal;
    sigemptyset(&sa.sa_mask);
    for (int i = 0; i < 2; i++)
        sigaction(signals[i], &sa, NULL);
}

void engine_stop_enter(void)
{
    uv_once(&lock_once, init_lock);
    uv_mutex_lock(&lock);
    if (depth++ == 0) {
        stop_signal = 0;
        for (int i = 0; i < 2; i++)
            sigaction(signals[i], NULL, &saved[i]);
        if (watching == 0)
            install_fallback();
    }
    uv_mutex_unlock(&lock);
}

void engine_stop_leave(void)
{
    uv_mutex_lock(&lock);
    if (depth > 0 && --depth == 0 && watching == 0)
        for (int i = 0; i < 2; i++)
            sigaction(signals[i], &saved[i], NULL);
    uv_mutex_unlock(&lock);
}

int engine_stop_requested(void)
{
    return stop_signal;
}

const char *engine_stop_name(void)
{
    return stop_signal == SIGINT ? "SIGINT" : "SIGTERM";
}

static void fire(struct engine_stop_watch *w)
{
    if (w->fired || !w->active)
        return;
    w->fired = true;
    w->cb(w);
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct engine_stop_watch *w = h->data;
    if (stop_signal == 0)
        stop_signal = signum;
    LOG_DEBUG("%s: stopping", signum == SIGINT ? "SIGINT" : "SIGTERM");
    fire(w);
}

static void on_late(uv_timer_t *t)
{
    fire(t->data);
}

int engine_stop_watch_start(struct engine_stop_watch *w, uv_loop_t *uv, engine_stop_cb cb,
                            void *data)
{
    int err = 0;
    memset(w, 0, sizeof(*w));
    w->cb = cb;
    w->data = data;
    uv_once(&lock_once, init_lock);
    uv_mutex_lock(&lock);
    /* Watching does not keep the loop alive: it runs as long as its work does. */
    for (int i = 0; i < 2; i++) {
        uv_signal_init(uv, &w->sig[i]);
        w->sig[i].data = w;
        if (err == 0)
            err = uv_signal_start(&w->sig[i], on_signal, signals[i]);
        uv_unref((uv_handle_t *)&w->sig[i]);
    }
    uv_timer_init(uv, &w->late);
    uv_unref((uv_handle_t *)&w->late);
    w->late.data = w;
    w->active = true;
    watching++;
    uv_mutex_unlock(&lock);
    if (stop_signal != 0)
        uv_timer_start(&w->late, on_late, 0, 0);
    return err;
}

void engine_stop_watch_close(struct engine_stop_watch *w)
{
    if (!w->active)
        return;
    uv_mutex_lock(&lock);
    w->active = false;
    for (int i = 0; i < 2; i++)
        uv_close((uv_handle_t *)&w->sig[i], NULL);
    uv_close((uv_handle_t *)&w->late, NULL);
    /*
     * libuv puts the default disposition back when its last watcher of a
     * signal goes; within a run that handles signals, ours takes over.
     */
    if (--watching == 0 && depth > 0)
        install_fallback();
    uv_mutex_unlock(&lock);
}
