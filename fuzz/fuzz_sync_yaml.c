/*
 * libFuzzer target for cli_sync_config_parse (src/cli/config.c), the reader
 * of `ocisync sync` configuration files in skopeo's and ocisync's formats.
 *
 * Beyond "no crash, no leak", it checks what callers rely on: a failure
 * leaves the config empty and writes a one-line printable message that names
 * the file; a success has a source on every entry (a destination in
 * ocisync's format, none in skopeo's), counts that match their arrays and
 * stay under the caps, tags that are tags or digests, platforms in
 * os/arch[/variant] form, src_conf pointers into the registries array, and
 * sources that parse back to themselves.
 *
 *   clang -fsanitize=fuzzer,address,undefined -Iinclude -Isrc fuzz/fuzz_sync_yaml.c \
 *       src/cli/config.c src/oci/ref.c src/oci/digest.c src/common/msg.c src/common/error.c \
 *       -lyaml -ljansson -lcrypto -luv
 *   ./a.out -dict=fuzz/sync_yaml.dict fuzz/corpus/sync_yaml
 */
#include "cli/config.h"
#include "oci/digest.h"
#include "oci/ref.h"
#include "ocisync.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NAME "fuzz.yml"

static void check_printable(const char *s)
{
    for (; *s != '\0'; s++) {
        if (*s < 0x20 || *s >= 0x7f)
            __builtin_trap();
    }
}

static void check_list(char **items, size_t n)
{
    if (n > CLI_SYNC_MAX_LIST || (n > 0) != (items != NULL))
        __builtin_trap();
    for (size_t i = 0; i < n; i++) {
        if (items[i] == NULL || strlen(items[i]) > CLI_SYNC_MAX_STRING)
            __builtin_trap();
    }
}

static void check_tag(const char *s)
{
    struct oci_digest d;
    size_t n = strlen(s);

    if (strchr(s, ':') != NULL) {
        if (oci_digest_parse_str(s, &d) != 0)
            __builtin_trap();
        return;
    }
    if (n == 0 || n > 128 ||
        strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                  "0123456789_.-") != n ||
        s[0] == '.' || s[0] == '-')
        __builtin_trap();
}

static void check_platform(const char *s)
{
    size_t slashes = 0;

    for (const char *p = s; *p != '\0'; p++)
        slashes += *p == '/';
    if (slashes < 1 || slashes > 2 || s[0] == '/' || s[strlen(s) - 1] == '/' ||
        strstr(s, "//") != NULL)
        __builtin_trap();
}

/* A non-catalog source or destination is canonical: it parses back to itself. */
static void check_repo(const char *s)
{
    struct oci_ref ref;
    char buf[OCI_REF_REGISTRY_MAX + OCI_REF_REPO_MAX + 2];

    if (oci_ref_parse(s, &ref, NULL, 0) != 0)
        __builtin_trap();
    snprintf(buf, sizeof(buf), "%s/%s", ref.registry, ref.repository);
    if (strcmp(buf, s) != 0)
        __builtin_trap();
}

static void check_config(const struct cli_sync_config *cfg)
{
    if (cfg->format != CLI_SYNC_SKOPEO && cfg->format != CLI_SYNC_OCISYNC)
        __builtin_trap();
    if (cfg->n_entries > CLI_SYNC_MAX_ENTRIES || (cfg->n_entries > 0) != (cfg->entries != NULL) ||
        cfg->n_registries > CLI_SYNC_MAX_REGISTRIES ||
        (cfg->n_registries > 0) != (cfg->registries != NULL) || cfg->jobs > CLI_SYNC_MAX_JOBS)
        __builtin_trap();
    if (cfg->format == CLI_SYNC_SKOPEO && cfg->jobs != 0)
        __builtin_trap();

    for (size_t i = 0; i < cfg->n_registries; i++) {
        const struct cli_registry_conf *reg = &cfg->registries[i];

        if (reg->name == NULL || reg->name[0] == '\0' || reg->tls_verify < -1 ||
            reg->tls_verify > 1 || reg->max_concurrency > CLI_SYNC_MAX_JOBS || reg->line == 0)
            __builtin_trap();
        if (reg->password != NULL && reg->username == NULL)
            __builtin_trap();
        if (cfg->format == CLI_SYNC_SKOPEO && reg->max_concurrency != 0)
            __builtin_trap();
        if (cli_sync_config_registry(cfg, reg->name) == NULL)
            __builtin_trap();
    }

    for (size_t i = 0; i < cfg->n_entries; i++) {
        const struct cli_sync_entry *e = &cfg->entries[i];

        if (e->source == NULL || e->source[0] == '\0' || e->line == 0 ||
            e->latest > CLI_SYNC_MAX_LATEST)
            __builtin_trap();
        if (cfg->format == CLI_SYNC_OCISYNC && (e->dest == NULL || e->dest[0] == '\0'))
            __builtin_trap();
        if (cfg->format == CLI_SYNC_SKOPEO &&
            (e->dest != NULL || e->catalog || e->src_conf == NULL || e->n_exclude != 0 ||
             e->n_platforms != 0 || e->latest != 0 || e->n_include > 1))
            __builtin_trap();
        if (e->src_conf != NULL &&
            (e->src_conf < cfg->registries || e->src_conf >= cfg->registries + cfg->n_registries))
            __builtin_trap();
        check_list(e->tags, e->n_tags);
        check_list(e->include_regex, e->n_include);
        check_list(e->exclude_regex, e->n_exclude);
        check_list(e->platforms, e->n_platforms);
        for (size_t j = 0; j < e->n_tags; j++)
            check_tag(e->tags[j]);
        for (size_t j = 0; j < e->n_platforms; j++)
            check_platform(e->platforms[j]);
        if (!e->catalog) {
            check_repo(e->source);
            if (e->dest != NULL)
                check_repo(e->dest);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cli_sync_config cfg;
    char err[512];
    int rc;

    memset(err, 'x', sizeof(err));
    rc = cli_sync_config_parse((const char *)data, size, NAME, &cfg, err, sizeof(err));
    if (memchr(err, '\0', sizeof(err)) == NULL)
        __builtin_trap();
    check_printable(err);
    if (rc != 0) {
        if (rc > 0 || strncmp(err, NAME ":", strlen(NAME ":")) != 0 || cfg.entries != NULL ||
            cfg.registries != NULL || cfg.n_entries != 0 || cfg.n_registries != 0 || cfg.jobs != 0)
            __builtin_trap();
    } else {
        if (err[0] != '\0')
            __builtin_trap();
        check_config(&cfg);
    }
    cli_sync_config_free(&cfg);
    if (cfg.entries != NULL || cfg.registries != NULL)
        __builtin_trap();
    return 0;
}
