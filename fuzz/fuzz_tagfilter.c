/*
 * libFuzzer target for oci_semver_parse, oci_semver_cmp, oci_semver_range_parse
 * and the tag filter. Input: one flags byte, then lines: a semver range, an
 * include regex, an exclude regex, and tags (at most 64).
 */
#include "oci/tagfilter.h"
#include "ocisync.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TAGS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf, *lines[3 + MAX_TAGS];
    const char *tags[MAX_TAGS];
    struct oci_semver vers[MAX_TAGS];
    int ok[MAX_TAGS];
    size_t n_lines = 0, n_tags, sel[MAX_TAGS], n_sel;
    struct oci_semver_range r;
    struct oci_tagfilter f;
    struct oci_tagfilter_spec spec;
    char err[256];
    uint8_t flags;

    if (size == 0)
        return 0;
    flags = data[0];
    buf = malloc(size);
    memcpy(buf, data + 1, size - 1);
    buf[size - 1] = '\0';
    for (char *p = buf; n_lines < 3 + MAX_TAGS;) {
        lines[n_lines++] = p;
        p = strchr(p, '\n');
        if (p == NULL)
            break;
        *p++ = '\0';
    }
    while (n_lines < 3)
        lines[n_lines++] = "";
    n_tags = n_lines - 3;
    for (size_t i = 0; i < n_tags; i++) {
        tags[i] = lines[3 + i];
        ok[i] = oci_semver_parse(tags[i], &vers[i]) == 0;
        if (!ok[i] && (vers[i].major || vers[i].minor || vers[i].patch || vers[i].pre[0]))
            __builtin_trap();
        if (ok[i] && oci_semver_cmp(&vers[i], &vers[i]) != 0)
            __builtin_trap();
    }
    for (size_t i = 0; i < n_tags; i++)
        for (size_t j = 0; j < n_tags; j++)
            if (ok[i] && ok[j] &&
                oci_semver_cmp(&vers[i], &vers[j]) != -oci_semver_cmp(&vers[j], &vers[i]))
                __builtin_trap();

    memset(err, 'x', sizeof(err));
    int rc = oci_semver_range_parse(lines[0], &r, err, sizeof(err));
    if (memchr(err, '\0', sizeof(err)) == NULL)
        __builtin_trap();
    if (rc != 0) {
        if (err[0] == '\0' || r.terms != NULL || r.n_terms != 0)
            __builtin_trap();
    } else {
        for (size_t i = 0; i < n_tags; i++)
            if (ok[i])
                (void)oci_semver_range_match(&r, &vers[i]);
    }
    oci_semver_range_free(&r);

    const char *inc[1] = {lines[1]}, *exc[1] = {lines[2]};
    memset(&spec, 0, sizeof(spec));
    spec.include_regex = inc;
    spec.n_include = flags & 1;
    spec.exclude_regex = exc;
    spec.n_exclude = (flags >> 1) & 1;
    spec.semver = (flags & 4) ? lines[0] : NULL;
    spec.latest = (flags >> 3) & 3;
    memset(err, 'x', sizeof(err));
    rc = oci_tagfilter_init(&f, &spec, err, sizeof(err));
    if (memchr(err, '\0', sizeof(err)) == NULL)
        __builtin_trap();
    if (rc != 0) {
        if (err[0] == '\0' || f.include != NULL || f.exclude != NULL || f.has_semver)
            __builtin_trap();
    } else {
        if (oci_tagfilter_apply(&f, tags, n_tags, sel, &n_sel) != 0)
            __builtin_trap();
        if (n_sel > n_tags || (spec.latest && n_sel > spec.latest))
            __builtin_trap();
        int by_version = spec.semver != NULL || spec.latest > 0;
        for (size_t i = 0; i < n_sel; i++) {
            if (sel[i] >= n_tags)
                __builtin_trap();
            if (by_version && !ok[sel[i]])
                __builtin_trap();
            for (size_t j = 0; j < i; j++)
                if (sel[j] == sel[i])
                    __builtin_trap();
            if (i > 0) {
                int c = by_version ? oci_semver_cmp(&vers[sel[i - 1]], &vers[sel[i]]) : 0;
                if (c < 0 || (c == 0 && strcmp(tags[sel[i - 1]], tags[sel[i]]) > 0))
                    __builtin_trap();
            }
        }
    }
    oci_tagfilter_free(&f);
    free(buf);
    return 0;
}
