/*
 * Which tags `ocisync sync` copies from a repository: semantic versions,
 * version ranges and regular-expression filters, as skopeo sync
 * (images-by-tag-regex, images-by-semver) and regsync (allow / deny, latest N)
 * select them. Everything here is a pure function of its input; exact tag
 * lists are the caller's business.
 */
#ifndef OCI_TAGFILTER_H
#define OCI_TAGFILTER_H

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Room for a prerelease ("rc.1") and its NUL. */
#define OCI_SEMVER_PRE_MAX 128
/* The longest string oci_semver_parse looks at; a tag is at most 128 bytes. */
#define OCI_SEMVER_MAX 256
/* The longest range oci_semver_range_parse accepts. */
#define OCI_SEMVER_RANGE_MAX 1024
/* How many comparisons (counting both ends of a hyphen range) one range may hold. */
#define OCI_SEMVER_RANGE_MAX_TERMS 128
/* The longest regular expression a tag filter accepts, as the user wrote it. */
#define OCI_TAGFILTER_REGEX_MAX 1024
/* How many include (and, separately, exclude) expressions one filter may hold. */
#define OCI_TAGFILTER_MAX_REGEXES 64

struct oci_semver {
    uint64_t major, minor, patch;
    char pre[OCI_SEMVER_PRE_MAX]; /* prerelease without its '-', "" if none */
};

/*
 * Parses a tag as a version the way Masterminds/semver's NewVersion does
 * (skopeo's images-by-semver uses it): an optional leading "v", one to three
 * dot-separated numbers (missing ones are 0: "1.2" is 1.2.0, "3" is 3.0.0),
 * an optional "-prerelease" and an optional "+build". Build metadata is
 * checked and then dropped: it takes no part in precedence.
 *
 * Like Masterminds' default (coercing) parser, the three numbers may have
 * leading zeros ("2024.01.15" is 2024.1.15), because date-style tags are
 * common and a mirror must select the same tags skopeo would. Prerelease
 * identifiers follow semver 2.0.0: [0-9A-Za-z-]+, none empty, and a numeric
 * one without leading zeros ("1.0.0-01" is not a version).
 *
 * Returns 0, or OCISYNC_EUSAGE if s is NULL or not a version ("latest",
 * "1.2.3.4", "1..2", "1.2.", a number past 2^64-1, a prerelease longer than
 * 127 bytes, anything over OCI_SEMVER_MAX bytes); v is zeroed on error.
 */
int oci_semver_parse(const char *s, struct oci_semver *v);

/*
 * Semver 2.0.0 precedence: <0, 0 or >0 as a is lower than, equal to or higher
 * than b. Numbers compare numerically; a version with a prerelease is lower
 * than the same version without; prerelease identifiers compare in order,
 * numeric ones numerically and below alphanumeric ones, alphanumeric ones by
 * bytes, and a shorter list that is a prefix of a longer one is lower.
 */
int oci_semver_cmp(const struct oci_semver *a, const struct oci_semver *b);

/* One comparison of a range, defined in tagfilter.c. */
struct oci_semver_term;

/*
 * A parsed version range (a Masterminds/semver v3 constraint):
 *   =1.2.3, 1.2.3, !=1.2.3, >1.2.3, <1.2.3, >=1.2.3 (or =>), <=1.2.3 (or =<);
 *   AND by commas or spaces (">=1.2, <2" or ">=1.2 <2"); OR by "||";
 *   x-ranges: 1.2.x, 1.2.*, 1.x, 1, *, also after an operator (>1.2 means
 *     >=1.3.0, <=1.2 means <1.3.0, !=1.x excludes every 1.y.z);
 *   ~1.2.3 and ~>1.2.3: >=1.2.3 <1.3.0; ~1.2: >=1.2.0 <1.3.0; ~1: >=1.0.0 <2.0.0;
 *   ^1.2.3: >=1.2.3 <2.0.0; ^0.2.3: >=0.2.3 <0.3.0; ^0.0.3: >=0.0.3 <0.0.4;
 *     ^0.0: <0.1.0; ^0: <1.0.0;
 *   hyphen ranges "1.2 - 1.4.5": >=1.2.0 <=1.4.5 (a partial upper end
 *     covers its whole x-range: "1 - 2" takes 2.9.0).
 * Upper ends that come from an x-range, tilde or caret stop below the next
 * version's prereleases too, as Masterminds' equality checks do: ~1.2 never
 * takes 1.3.0-rc1.
 *
 * Prereleases follow Masterminds v3: a version with a prerelease can only
 * satisfy an AND group (one "||" alternative) in which some comparison names
 * a prerelease itself, such as ">=1.2.0-0 <2"; otherwise prerelease tags are
 * left out. Within such a group they compare by full precedence.
 *
 * A wildcard is a whole part, and only numbers before it count ("1.x.3" is
 * refused rather than read as 1.x). An operator on a bare wildcard acts on
 * all it covers: "*", "<=*", "~*" and "^*" take every release, ">*" and "!=*"
 * none. (Masterminds' own results for these differ and look accidental: its
 * ">*" takes all but 0.0.0, its "<=*" and "^*" only some 0.x versions.)
 * Masterminds' "~0.0.0" is kept: it means ">=0.0.0".
 */
struct oci_semver_range {
    struct oci_semver_term *terms; /* owned, n_terms entries, OR groups one after another */
    size_t n_terms;
};

/*
 * Parses s into r. Returns 0; OCISYNC_EUSAGE for a malformed range,
 * OCISYNC_ETOOBIG past OCI_SEMVER_RANGE_MAX bytes or
 * OCI_SEMVER_RANGE_MAX_TERMS comparisons, UV_ENOMEM. On error r is empty
 * (oci_semver_range_free is still safe) and err names the range and the bad
 * part: `semver range ">= 1.x.y": "1.x.y" is not a version (a number ...)`.
 * On success err is "".
 */
int oci_semver_range_parse(const char *s, struct oci_semver_range *r, char *err, size_t errlen);
/* True if v satisfies r (false for an empty or NULL range). */
bool oci_semver_range_match(const struct oci_semver_range *r, const struct oci_semver *v);
/* Releases r's memory and leaves it empty; safe to call twice. */
void oci_semver_range_free(struct oci_semver_range *r);

struct oci_tagfilter_spec {
    /*
     * A tag must match at least one of these, when any are given. Patterns are
     * Go (RE2) syntax, as skopeo takes them, searched anywhere in the tag
     * like Go's regexp.MatchString: anchor with ^ and $ to match the whole tag.
     */
    const char *const *include_regex;
    size_t n_include;
    /* ... and none of these. */
    const char *const *exclude_regex;
    size_t n_exclude;
    /* A range (see struct oci_semver_range) or NULL; when set, tags that are not versions are out.
     */
    const char *semver;
    /*
     * Keep only the N highest versions among the tags the other rules kept; 0
     * means no limit. Tags that are not versions are dropped when this is set.
     * Prerelease tags count as versions here; a semver range (even "*") or
     * an exclude pattern keeps them out.
     */
    unsigned latest;
};

struct oci_tagfilter {
    regex_t *include; /* owned, n_include compiled expressions */
    size_t n_include;
    regex_t *exclude; /* owned, n_exclude compiled expressions */
    size_t n_exclude;
    bool has_semver;
    struct oci_semver_range semver; /* owned, valid when has_semver */
    unsigned latest;
};

/*
 * Compiles spec into f. The expressions are translated from Go syntax to
 * POSIX extended ones and compiled with regcomp(REG_EXTENDED | REG_NOSUB):
 *   - \d \D \w \W \s \S become ASCII bracket expressions, outside and inside
 *     brackets; [[:alpha:]]-style classes, ranges and escaped punctuation
 *     ("\.", "[\]-]") keep Go's meaning; \A and \z become ^ and $;
 *   - (?:...) and named groups (?P<n>...) become plain groups; lazy
 *     quantifiers (*? +? ?? {n,m}?) become greedy ones, which select exactly
 *     the same tags;
 *   - what POSIX cannot say is refused, never silently changed: flags such as
 *     (?i), \b and \B, \pL, \x41, \Q...\E, backreferences, a quantifier with
 *     nothing to repeat (also after ^ or $) or on another quantifier,
 *     non-ASCII characters;
 *   - so is a group holding ^ or $ that may match more than once ("(^a){2}",
 *     "((^|\.)\d+)+"), which glibc's regexec matches wrongly; write the
 *     anchor outside the repeated group ("^\d+(\.\d+){2}$").
 * Returns 0; OCISYNC_EUSAGE for a bad expression, range or spec (err names the
 * expression and what is wrong, with regerror's text when regcomp refused
 * it); OCISYNC_ETOOBIG past OCI_TAGFILTER_REGEX_MAX bytes or
 * OCI_TAGFILTER_MAX_REGEXES expressions; UV_ENOMEM. On error f holds nothing
 * (oci_tagfilter_free is still safe).
 */
int oci_tagfilter_init(struct oci_tagfilter *f, const struct oci_tagfilter_spec *spec, char *err,
                       size_t errlen);

/*
 * Selects among tags[0..n): writes the indexes of the selected tags into sel
 * (the caller's array of n entries) and their count into *n_sel. NULL tags
 * are skipped. The order is deterministic:
 *   - with a semver range or latest N: highest version first; equal versions
 *     ("v1.2.0" and "1.2.0", "3.20" and "3.20.0") by tag bytes ascending,
 *     which also decides which of them latest N keeps;
 *   - otherwise: by tag bytes ascending (strcmp);
 * and an exact duplicate tag by index. Returns 0, UV_EINVAL for NULL
 * arguments, UV_ENOMEM.
 */
int oci_tagfilter_apply(const struct oci_tagfilter *f, const char *const *tags, size_t n,
                        size_t *sel, size_t *n_sel);

/* Releases what oci_tagfilter_init compiled; safe on a zeroed or freed filter. */
void oci_tagfilter_free(struct oci_tagfilter *f);

#endif
