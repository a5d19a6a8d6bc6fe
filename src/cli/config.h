/*
 * The configuration file of `ocisync sync`, read with libyaml in one of two
 * formats:
 *
 * 1. skopeo sync's YAML (`skopeo sync --src yaml`), accepted as-is: a
 *    mapping from registry ("docker.io", "reg.example:5000", or a registry
 *    with a namespace such as "quay.io/coreos") to its `images`,
 *    `images-by-tag-regex`, `images-by-semver`, `credentials`, `tls-verify`
 *    and `cert-dir`. Each image named under one of the three `images*` keys
 *    becomes one entry; the destination comes from the command line.
 *
 * 2. ocisync's own, recognised by its top-level keys (`mirrors`, with the
 *    optional `registries` and `jobs`): a list of mirrors, each from a
 *    source repository (or a prefix with `repositories`) to a destination,
 *    with tag filters and platforms, plus per-registry settings.
 *
 * The file is treated as untrusted: size, entry count, list lengths and
 * string lengths are capped, YAML anchors, aliases, explicit tags other than
 * !!str and multiple documents are refused, and every field is type-checked.
 * Regular expressions and semver ranges are kept as strings; the module that
 * applies them validates them.
 */
#ifndef CLI_CONFIG_H
#define CLI_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

/* The largest configuration file read. */
#define CLI_SYNC_MAX_FILE (4u << 20)
/* The most entries a file may produce, after `repositories` lists are expanded. */
#define CLI_SYNC_MAX_ENTRIES 100000
/* The most registries (skopeo top-level keys, or `registries` entries). */
#define CLI_SYNC_MAX_REGISTRIES 10000
/* The most items in one list (tags, regexes, platforms, repositories of one mirror). */
#define CLI_SYNC_MAX_LIST 10000
/* The longest string value, in bytes. */
#define CLI_SYNC_MAX_STRING 4096
/*
 * The most bytes of strings a configuration may hold once parsed. Expanding
 * `repositories` copies a mirror's filters into every entry, so this, not the
 * file size, is what bounds memory.
 */
#define CLI_SYNC_MAX_BYTES (64u << 20)
/* Upper bounds of the integer settings. */
#define CLI_SYNC_MAX_JOBS 1024
#define CLI_SYNC_MAX_LATEST 100000

/* How to reach one registry. Strings are NULL when unset. */
struct cli_registry_conf {
    /*
     * Format 1: the top-level key as written ("docker.io", "quay.io/coreos").
     * Format 2: the registry host[:port], normalised ("index.docker.io" is
     * "docker.io").
     */
    char *name;
    int tls_verify; /* -1 unset, 0 or 1 */
    char *cert_dir;
    char *username, *password;
    char *identity_token;     /* skopeo's `credentials: {identitytoken: ...}` */
    unsigned max_concurrency; /* requests in flight to this registry; 0 unset */
    unsigned line;            /* where it was written, for messages */
};

/*
 * One thing to synchronise. All tags of source are wanted when there are no
 * tags, no include_regex, no semver and no latest; otherwise whoever applies
 * the filters decides how they combine.
 */
struct cli_sync_entry {
    /*
     * "registry/repository", normalised the way ocisync_ref_parse normalises
     * ("docker.io/library/busybox"). With catalog set, a prefix instead:
     * "registry" or "registry/namespace".
     */
    char *source;
    /* Format 2: the destination, in the same form as source; NULL in format 1. */
    char *dest;
    bool catalog; /* every repository under source (the registry's catalog) */
    char **tags;  /* exact tags or digests ("sha256:...") */
    size_t n_tags;
    char **include_regex;
    size_t n_include;
    char **exclude_regex;
    size_t n_exclude;
    char *semver;     /* a semver range, or NULL */
    unsigned latest;  /* keep the newest N tags; 0 unset */
    char **platforms; /* "os/arch[/variant]" as written; none means all */
    size_t n_platforms;
    /* The source registry's settings, or NULL; points into the config's registries. */
    const struct cli_registry_conf *src_conf;
    unsigned line; /* where the entry was written, for messages */
};

enum cli_sync_format {
    CLI_SYNC_SKOPEO = 1,
    CLI_SYNC_OCISYNC,
};

/* A parsed configuration; owns everything it points to. */
struct cli_sync_config {
    enum cli_sync_format format;
    struct cli_sync_entry *entries;
    size_t n_entries;
    struct cli_registry_conf *registries; /* skopeo: one per top-level key */
    size_t n_registries;
    unsigned jobs; /* transfers in flight overall; 0 unset */
};

/*
 * Reads and parses the file at path (at most CLI_SYNC_MAX_FILE bytes; a pipe
 * is fine, a directory is not). Returns 0, a UV_E* code when the file cannot
 * be read (UV_ENOENT, UV_EISDIR, UV_EACCES...), or what
 * cli_sync_config_parse returns. On error cfg is left empty (nothing to
 * free) and err holds a sentence naming the file.
 */
int cli_sync_config_load(const char *path, struct cli_sync_config *cfg, char *err, size_t errlen);

/*
 * Parses a configuration from data (len bytes, need not be NUL-terminated).
 * name is the file name used in messages ("sync.yml:12: ..."). Returns 0,
 * OCISYNC_EUSAGE for an invalid configuration (YAML syntax, wrong types,
 * unknown or duplicate keys, invalid references, tags or platforms, anchors,
 * aliases, tags, several documents), OCISYNC_ETOOBIG when a CLI_SYNC_MAX_*
 * limit is exceeded, or UV_ENOMEM. On error cfg is left empty and err holds
 * "name:line: what: why"; on success err is "".
 */
int cli_sync_config_parse(const char *data, size_t len, const char *name,
                          struct cli_sync_config *cfg, char *err, size_t errlen);

/* Releases everything cfg owns and zeroes it; safe on a zeroed or already freed config. */
void cli_sync_config_free(struct cli_sync_config *cfg);

/*
 * The settings for the registry called name (as in cli_registry_conf.name;
 * "docker.io" and "index.docker.io" are one registry), or the first of them,
 * or NULL. In format 1 several keys may share a host ("quay.io/a",
 * "quay.io/b"), so for a source prefer its entry's src_conf.
 */
const struct cli_registry_conf *cli_sync_config_registry(const struct cli_sync_config *cfg,
                                                         const char *name);

#endif
