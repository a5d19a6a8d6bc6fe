/* Debug tracing to stderr, switched on by --debug. Never pass secrets to it. */
#ifndef COMMON_LOG_H
#define COMMON_LOG_H

extern int ocisync__debug;

void ocisync__log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define LOG_DEBUG(...)                                                                             \
    do {                                                                                           \
        if (ocisync__debug)                                                                        \
            ocisync__log(__VA_ARGS__);                                                             \
    } while (0)

#endif
