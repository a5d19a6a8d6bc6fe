/*
 * A minimal unit-test harness: each tests/unit/test_*.c file defines its tests
 * with TEST(name), lists them in TEST_MAIN(...) and becomes one executable.
 * A failed CHECK prints the file, line and values and marks the test failed;
 * the executable exits non-zero if any test failed.
 */
#ifndef OCISYNC_TEST_H
#define OCISYNC_TEST_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int test_failures_;
static int test_checks_;
/* Why the running test skipped itself (SKIP), or NULL. */
static const char *test_skipped_;

/*
 * Ends the running test as skipped: it is reported as "skip NAME: why", and
 * a program whose only non-passing tests were skipped exits with 77, which
 * ctest (SKIP_RETURN_CODE) shows as skipped rather than passed.
 */
#define SKIP(why)                                                                                  \
    do {                                                                                           \
        test_skipped_ = (why);                                                                     \
        return;                                                                                    \
    } while (0)

/* A growable byte buffer (tests only: out of memory aborts). */
struct test_buf {
    unsigned char *data;
    size_t len, cap;
};

static inline void test_buf_add(struct test_buf *b, const void *data, size_t len)
{
    if (len == 0)
        return;
    if (b->len + len > b->cap) {
        size_t ncap = b->cap ? b->cap : 65536;

        while (ncap < b->len + len)
            ncap *= 2;
        b->data = realloc(b->data, ncap);
        if (b->data == NULL)
            abort();
        b->cap = ncap;
    }
    memcpy(b->data + b->len, data, len);
    b->len += len;
}

static inline void test_buf_free(struct test_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        test_checks_++;                                                                            \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);               \
            test_failures_++;                                                                      \
        }                                                                                          \
    } while (0)

#define CHECK_INT(a, b)                                                                            \
    do {                                                                                           \
        long long a_ = (long long)(a), b_ = (long long)(b);                                        \
        test_checks_++;                                                                            \
        if (a_ != b_) {                                                                            \
            fprintf(stderr, "%s:%d: CHECK_INT failed: %s == %s (%lld != %lld)\n", __FILE__,        \
                    __LINE__, #a, #b, a_, b_);                                                     \
            test_failures_++;                                                                      \
        }                                                                                          \
    } while (0)

#define CHECK_STR(a, b)                                                                            \
    do {                                                                                           \
        const char *a_ = (a), *b_ = (b);                                                           \
        test_checks_++;                                                                            \
        if (a_ == NULL || b_ == NULL || strcmp(a_, b_) != 0) {                                     \
            fprintf(stderr, "%s:%d: CHECK_STR failed: %s == %s (\"%s\" != \"%s\")\n", __FILE__,    \
                    __LINE__, #a, #b, a_ ? a_ : "(null)", b_ ? b_ : "(null)");                     \
            test_failures_++;                                                                      \
        }                                                                                          \
    } while (0)

#define TEST(name) static void test_##name(void)

struct test_case_ {
    const char *name;
    void (*fn)(void);
};

#define T(name)                                                                                    \
    {                                                                                              \
#name, test_##name                                                                         \
    }

#define TEST_MAIN(...)                                                                             \
    int main(int argc, char **argv)                                                                \
    {                                                                                              \
        static const struct test_case_ cases[] = {__VA_ARGS__};                                    \
        size_t n = sizeof(cases) / sizeof(cases[0]);                                               \
        int failed_tests = 0, skipped_tests = 0;                                                   \
        for (size_t i = 0; i < n; i++) {                                                           \
            if (argc > 1 && strcmp(argv[1], cases[i].name) != 0)                                   \
                continue;                                                                          \
            int before = test_failures_;                                                           \
            test_skipped_ = NULL;                                                                  \
            cases[i].fn();                                                                         \
            int bad = test_failures_ != before;                                                    \
            failed_tests += bad;                                                                   \
            if (!bad && test_skipped_ != NULL) {                                                   \
                skipped_tests++;                                                                   \
                printf("skip %s: %s\n", cases[i].name, test_skipped_);                             \
                continue;                                                                          \
            }                                                                                      \
            printf("%s %s\n", bad ? "FAIL" : "ok  ", cases[i].name);                               \
        }                                                                                          \
        printf("%d checks, %d failed tests, %d skipped\n", test_checks_, failed_tests,             \
               skipped_tests);                                                                     \
        return failed_tests ? 1 : skipped_tests ? 77 : 0;                                          \
    }

#endif
