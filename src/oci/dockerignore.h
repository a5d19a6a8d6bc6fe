/*
 * Which files of a build context a .dockerignore leaves out, decided exactly
 * as docker decides it: moby/patternmatcher reads the file
 * (ignorefile.ReadAll) and matches paths (PatternMatcher), and the walk that
 * sends the context (tonistiigi/fsutil for BuildKit) feeds each path its
 * parent directory's results. Everything here is a pure function of its
 * input; walking a directory is the caller's business.
 *
 * Docker's patterns are not filepath.Match globs at match time: docker checks
 * them with filepath.Match's syntax rules, then turns each into a Go regular
 * expression (or a plain comparison) and matches that. The differences that
 * follow are docker's, kept on purpose:
 *   - '*' and '?' never match '/', but a bracket class can: "a[^x]b" matches
 *     "a/b". Only '^' negates a class ("[!a]" is '!' or 'a'), and classes are
 *     Go's: "[[:digit:]]", "[\d]" and ranges work.
 *   - '\' escapes the next character in Go's regexp syntax, so "\." is a dot
 *     but "\d" is any digit and "\x41" is 'A'; '^' outside a class anchors.
 *   - '|', '{' and '}' are not escaped (patternmatcher means to, but its
 *     bitmap of characters to escape loses them): in a pattern with a
 *     wildcard they are alternation and repetition counts. "*.js|*.ts"
 *     matches any path that starts with "<name>.js" or ends in ".ts" at any
 *     depth; "a?{2}" matches "abb"; "*.{js,ts}" matches names ending in ".{js,ts}".
 *   - "**" matches any number of directories. "**" alone matches everything;
 *     "**" then a tail without wildcards is a plain suffix test ("**foo"
 *     matches "barfoo"); a head without wildcards then a final "**" is a
 *     plain prefix test ("foo**" matches "foobar", "dir/" + "**" matches
 *     "dir/x" but not "dir"); any other "**" matches any run of whole
 *     directories (or, at the end, anything), but never a newline.
 *   - Patterns are anchored at the context root: "*.log" matches "a.log",
 *     not "src/a.log"; "**" + "/" + "*.log" matches both.
 * A pattern that docker accepts but that fails when docker first matches
 * with it (an invalid class range such as "[z-a]", an unknown escape such
 * as "\q") is refused here at parse time, where docker fails the build on
 * the first path it tries the pattern on. Unicode classes ("\pL"), which Go
 * accepts, are refused too.
 */
#ifndef OCI_DOCKERIGNORE_H
#define OCI_DOCKERIGNORE_H

#include <stdbool.h>
#include <stddef.h>

/* The largest ignore file oci_ignore_parse reads. */
#define OCI_IGNORE_TEXT_MAX (1024 * 1024)
/* How many patterns one ignore file may hold. */
#define OCI_IGNORE_PATTERNS_MAX 16384
/* The longest line docker reads: its bufio.Scanner fails on longer ones ("token too long"). */
#define OCI_IGNORE_LINE_MAX 65535
/* The longest pattern (once cleaned) ocisync matches with; no path is longer than 4096 bytes. */
#define OCI_IGNORE_PATTERN_MAX 4096

/* Parsed patterns, opaque; owns its memory. */
struct oci_ignore;

/*
 * Parses an ignore file's bytes the way ignorefile.ReadAll and
 * patternmatcher.New do:
 *   - lines end at '\n' (and a '\r' before it is dropped); a UTF-8 BOM is
 *     dropped from the first line;
 *   - a line whose first byte is '#' is a comment (before trimming: " #x" is
 *     the pattern "#x");
 *   - Unicode whitespace is trimmed from both ends; empty lines are dropped;
 *   - a leading '!' makes an exception (re-include), trimmed again after it;
 *   - the rest is cleaned like Go's filepath.Clean ("a/../b" is "b", "./a"
 *     is "a", "a/" is "a", "." and ".." stay and match nothing) and a
 *     leading '/' is dropped ("/a" is "a": patterns are anchored at the
 *     context root);
 *   - "!" alone (also "! " and "!/") is refused, as docker refuses it.
 * A NULL text with len 0 is an empty file. Returns 0 and *out (free it with
 * oci_ignore_free); OCISYNC_ETOOBIG past OCI_IGNORE_TEXT_MAX bytes,
 * OCI_IGNORE_PATTERNS_MAX patterns, a line past OCI_IGNORE_LINE_MAX bytes or a
 * pattern past OCI_IGNORE_PATTERN_MAX; OCISYNC_EUSAGE for a pattern docker
 * would refuse (an unterminated '[', a trailing '\', "[]", "[z-a]", "\q",
 * ...); UV_ENOMEM. On error *out is NULL and err says which line and pattern
 * and what is wrong: `line 3: pattern "src/[a": '[' has no closing ']'`. On
 * success err is "".
 */
int oci_ignore_parse(struct oci_ignore **out, const char *text, size_t len, char *err,
                     size_t errlen);

/*
 * True if docker leaves path out of the build context. path is relative to
 * the context root, '/'-separated and clean (no "./" or "/" at the start, no
 * "..", no "//", no trailing '/'). The last pattern that matches the path or
 * one of its parent directories decides; an exception ("!") re-includes. The
 * path is decided the way docker's walk decides it, each directory from its
 * parent's results (patternmatcher's MatchesUsingParentResults): a pattern
 * that docker skipped for a directory, because it could not change that
 * directory's result, is not inherited by the directory's children.
 * False for a NULL or empty ignore, a NULL or empty path.
 */
bool oci_ignore_excluded(const struct oci_ignore *ig, const char *path);

/*
 * A walker that keeps one state per open directory decides each entry in one
 * step, as docker's walk does, instead of oci_ignore_excluded's one step per
 * path component. A state is oci_ignore_state_size(ig) bytes (at most
 * OCI_IGNORE_PATTERNS_MAX / 8), owned by the caller.
 */
size_t oci_ignore_state_size(const struct oci_ignore *ig);

/*
 * Decides path as oci_ignore_excluded does, given parent: the state written
 * for path's parent directory, or NULL for an entry at the context root.
 * Writes path's own state into state (when not NULL), for its children if it
 * is a directory. With a NULL parent and a path that has a '/', each parent
 * directory is matched afresh, as MatchesUsingParentResults does without
 * parent results. Returns true if path is excluded.
 */
bool oci_ignore_excluded_under(const struct oci_ignore *ig, const char *path,
                               const unsigned char *parent, unsigned char *state);

/*
 * For a directory that is excluded: true if the walker must still descend
 * into it because an exception might re-include something below it; false
 * if it may skip the whole directory. This is BuildKit's rule (fsutil's
 * filter.go): with no exceptions, skip; if some exception has a wildcard or
 * escape ('*', '?', '[', ']', '^', '\') outside a trailing "/" + "*" or
 * "/" + "**", always descend; otherwise descend only when an exception, without that
 * trailing glob, is dir itself or lies below it. Skipping under this rule
 * never changes which paths are excluded. dir is clean as for
 * oci_ignore_excluded. False for a NULL or empty ignore.
 */
bool oci_ignore_must_descend(const struct oci_ignore *ig, const char *dir);

/* Releases ig; NULL is fine. */
void oci_ignore_free(struct oci_ignore *ig);

#endif
