/*
 * libFuzzer target for the Dockerfile parser and the word expander: the
 * input is parsed as a Dockerfile; every raw word, pair and heredoc of
 * every instruction is then expanded with a few variables set, the way the
 * frontend expands them.
 */
#include "oci/dockerfile.h"
#include "ocisync.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char *lookup(void *arg, const char *name, size_t len)
{
    (void)arg;
    if (len == 1 && name[0] == 'A')
        return "alpha beta";
    if (len == 4 && memcmp(name, "PATH", 4) == 0)
        return "/usr/bin:/bin";
    if (len == 5 && memcmp(name, "EMPTY", 5) == 0)
        return "";
    return NULL;
}

static void expand_one(const char *raw, char escape)
{
    char *out = NULL, **words = NULL, err[256];
    size_t n = 0;

    if (oci_df_expand(raw, escape, lookup, NULL, &out, err, sizeof(err)) == 0)
        free(out);
    if (oci_df_expand_words(raw, escape, lookup, NULL, &words, &n, err, sizeof(err)) == 0)
        oci_df_words_free(words, n);
}

static void instr(const struct oci_df_instr *in, char escape)
{
    for (size_t i = 0; i < in->n_args; i++)
        expand_one(in->args[i], escape);
    for (size_t i = 0; i < in->n_flags; i++)
        if (in->flags[i].value != NULL)
            expand_one(in->flags[i].value, escape);
    for (size_t i = 0; i < in->n_pairs; i++) {
        expand_one(in->pairs[i].key, escape);
        if (in->pairs[i].value != NULL)
            expand_one(in->pairs[i].value, escape);
    }
    for (size_t i = 0; i < in->n_heredocs; i++) {
        char *out = NULL, err[256];
        if (oci_df_expand_heredoc(in->heredocs[i].content, lookup, NULL, &out, err, sizeof(err)) ==
            0)
            free(out);
        if (oci_df_chomp(in->heredocs[i].content, &out) == 0)
            free(out);
    }
    if (in->sub != NULL)
        instr(in->sub, escape);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct oci_df df;
    char err[512];

    if (oci_df_parse(&df, (const char *)data, size, err, sizeof(err)) == 0) {
        for (size_t i = 0; i < df.n_instrs; i++)
            instr(&df.instrs[i], df.escape);
    }
    oci_df_free(&df);
    return 0;
}
