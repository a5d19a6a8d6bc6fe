/*
 * Dockerfiles as BuildKit reads them: the parser (moby/buildkit
 * frontend/dockerfile/parser), the per-instruction checks that need no
 * build state (frontend/dockerfile/instructions/parse.go) and the word
 * expander (frontend/dockerfile/shell/lex.go). Everything here is a pure
 * function of its input: no I/O, no globals. What an instruction means
 * (flags it accepts, stages, the image it builds) is the executor's business.
 */
#ifndef OCI_DOCKERFILE_H
#define OCI_DOCKERFILE_H

#include <stdbool.h>
#include <stddef.h>

/* The largest Dockerfile oci_df_parse reads. */
#define OCI_DF_MAX (4u * 1024 * 1024)
/* How many instructions one Dockerfile may hold. */
#define OCI_DF_MAX_INSTRS 16384
/*
 * The longest physical line, without its newline: BuildKit reads lines with
 * Go's bufio.Scanner, whose 64 KiB token limit refuses longer ones (this
 * holds for heredoc bodies too).
 */
#define OCI_DF_LINE_MAX 65535
/* How many JSON values an exec-form array may hold. */
#define OCI_DF_JSON_MAX_VALUES 65536
/* The longest result of one word's expansion (and of any part of it). */
#define OCI_DF_EXPAND_MAX (1u * 1024 * 1024)
/* The longest result of a heredoc body's expansion. */
#define OCI_DF_HEREDOC_EXPAND_MAX OCI_DF_MAX

enum oci_df_kind {
    OCI_DF_FROM,
    OCI_DF_ARG,
    OCI_DF_ENV,
    OCI_DF_LABEL,
    OCI_DF_WORKDIR,
    OCI_DF_USER,
    OCI_DF_EXPOSE,
    OCI_DF_ENTRYPOINT,
    OCI_DF_CMD,
    OCI_DF_VOLUME,
    OCI_DF_STOPSIGNAL,
    OCI_DF_HEALTHCHECK,
    OCI_DF_SHELL,
    OCI_DF_COPY,
    OCI_DF_ADD,
    OCI_DF_RUN,
    OCI_DF_MAINTAINER,
    OCI_DF_ONBUILD,
};

/*
 * A leading "--name" or "--name=value" word. BuildKit takes these off every
 * instruction (quotes and escapes removed, as its extractBuilderFlags does;
 * a "--" word ends them) and then lets each instruction refuse the ones it
 * does not know; that refusal is the executor's.
 */
struct oci_df_flag {
    char *name;  /* without the "--" */
    char *value; /* after the first '=', or NULL for a bare flag ("--link") */
};

/* ENV and LABEL pairs, and ARG names. */
struct oci_df_pair {
    char *key;   /* raw: quotes and escapes intact, not expanded */
    char *value; /* raw too; NULL for an ARG without a default */
};

/* A here-document attached to a RUN, COPY or ADD (BuildKit's parser.Heredoc). */
struct oci_df_heredoc {
    char *name;    /* the delimiter with quotes removed: "EOF" for <<'EOF' */
    char *content; /* the body, every line with its newline, leading tabs NOT removed */
    unsigned fd;   /* the file descriptor before "<<" ("3<<EOF"), else 0 */
    bool expand;   /* no part of the delimiter was quoted: variables in the body expand */
    bool chomp;    /* "<<-": leading tabs come off each line (oci_df_chomp) */
};

/*
 * One instruction. args follow BuildKit's parse tree (Node.Next values):
 *   FROM, EXPOSE, and COPY / ADD / VOLUME when not JSON: the rest split on
 *     runs of spaces and tabs, quotes NOT honoured (COPY "a b" /c is three
 *     words, as in BuildKit; the JSON form is the way to name such paths);
 *   RUN, CMD, ENTRYPOINT, SHELL: the JSON elements, or one element holding
 *     the raw shell text (none when empty);
 *   COPY, ADD, VOLUME in JSON form: the elements (VOLUME's trimmed);
 *   HEALTHCHECK: the type as written ("CMD", "NONE"), then the command as
 *     for CMD;
 *   USER, WORKDIR, STOPSIGNAL, MAINTAINER: one element, the whole rest
 *     ("WORKDIR /a b" is "/a b");
 *   ENV, LABEL, ARG: none (see pairs); ONBUILD: none (see sub).
 * Words are raw: quotes, escapes and variables are left for oci_df_expand
 * with the stage's variables, as BuildKit does at dispatch.
 */
struct oci_df_instr {
    enum oci_df_kind kind;
    char *keyword;     /* as written: "copy", "Run" */
    unsigned line;     /* the instruction's first line, 1-based */
    unsigned end_line; /* its last line, heredoc bodies included */
    /*
     * The instruction with continuation lines joined (BuildKit's
     * Node.Original): escapes and newlines removed, comment and empty lines
     * dropped, the first line's indentation gone, later lines' kept. History
     * uses it trimmed.
     */
    char *original;
    struct oci_df_flag *flags;
    size_t n_flags;
    char *raw; /* the text after the keyword and the flags, trimmed */
    bool json; /* exec form (for HEALTHCHECK: its command's) */
    char **args;
    size_t n_args;
    struct oci_df_pair *pairs; /* ENV and LABEL pairs, ARG names */
    size_t n_pairs;
    bool legacy; /* ENV / LABEL in the "name value" form (BuildKit's NoDelim, which it lints) */
    struct oci_df_heredoc *heredocs; /* in the order their bodies follow */
    size_t n_heredocs;
    char *stage;              /* FROM ... AS name: the name lowercased, else NULL */
    struct oci_df_instr *sub; /* ONBUILD's instruction (its heredocs are the sub's) */
};

struct oci_df {
    struct oci_df_instr *instrs;
    size_t n_instrs;
    char escape;  /* '\\' or '`' (the "# escape=" directive) */
    char *syntax; /* the "# syntax=" directive's value, or NULL; ocisync ignores it */
};

/*
 * Parses a Dockerfile of len bytes (at most OCI_DF_MAX) into df as BuildKit
 * does:
 *   - parser directives ("# syntax=", "# escape=", "# check=", names in any
 *     case) only at the top: the first line that is not one (an instruction,
 *     another comment, an empty line) ends them; a repeated one is an error;
 *   - a line ending in the escape character (spaces and tabs may follow it)
 *     continues on the next; comment lines and empty lines inside a
 *     continuation are dropped; a byte-order mark at the start is skipped;
 *   - keywords are case-insensitive; flags, JSON (exec) form with BuildKit's
 *     silent fallback to shell form for anything that is not a JSON array
 *     (an array holding a non-string is an error), ENV / LABEL name=value
 *     pairs and the legacy "ENV name value" form, ARG names;
 *   - heredocs for RUN, COPY and ADD (also under ONBUILD), not in JSON form;
 *   - BuildKit's parse-time checks: argument counts, FROM's "AS name", SHELL
 *     in JSON form, HEALTHCHECK's type, ONBUILD's trigger, blank ENV / LABEL
 *     / ARG names, empty VOLUME paths, a heredoc as COPY's destination, an
 *     instruction before the first FROM (only ARG may be), no FROM at all.
 * Returns 0; OCISYNC_EUSAGE with err "Dockerfile line N: ..." (N the
 * instruction's first line); OCISYNC_ETOOBIG past OCI_DF_MAX bytes,
 * OCI_DF_MAX_INSTRS instructions, a line over OCI_DF_LINE_MAX bytes or an
 * exec-form array over OCI_DF_JSON_MAX_VALUES values; UV_ENOMEM. On error df
 * holds nothing (oci_df_free is still safe).
 */
int oci_df_parse(struct oci_df *df, const char *text, size_t len, char *err, size_t errlen);
/* Releases everything df owns and zeroes it; safe on a zeroed or freed df. */
void oci_df_free(struct oci_df *df);
/* "FROM", "RUN", ... for k; "?" for a value outside the enum. */
const char *oci_df_kind_name(enum oci_df_kind k);

/*
 * If word is a heredoc marker as BuildKit's ParseHeredoc reads one
 * ("<<EOF", "<<-'EOF'", "2<<EOF", "<< EOF"; not "<<EOF sh" nor "a<<EOF"),
 * fills h (name, fd, expand, chomp; content NULL) and returns 1; returns 0
 * if it is not one, OCISYNC_EUSAGE if its delimiter does not lex (an open
 * quote), UV_ENOMEM. The executor uses it on COPY / ADD sources and on RUN's
 * shell text, as BuildKit does; free h->name.
 */
int oci_df_heredoc_word(const char *word, struct oci_df_heredoc *h);
/* The last of in's heredocs with this name (BuildKit keys them by name), or NULL. */
const struct oci_df_heredoc *oci_df_heredoc_by_name(const struct oci_df_instr *in,
                                                    const char *name);
/*
 * Removes leading tabs from every line of content, as BuildKit does for a
 * "<<-" heredoc (ChompHeredocContent). Returns 0 and *out (free it) or UV_ENOMEM.
 */
int oci_df_chomp(const char *content, char **out);

/* Returns the variable's value, or NULL when it is unset. name is not NUL-terminated. */
typedef const char *(*oci_df_lookup)(void *arg, const char *name, size_t len);

/*
 * Expands one word as BuildKit's shell lexer does (Lex.ProcessWord): quotes
 * are removed ('...' literal; "..." expands variables, and the escape
 * character escapes only " $ and itself there); outside quotes the escape
 * character ('\\' or '`', the Dockerfile's) takes the next character
 * literally and is dropped at the end; $NAME, ${NAME}, and
 *   ${NAME:-word} ${NAME-word}   default when unset (":" also when empty)
 *   ${NAME:+word} ${NAME+word}   word when set (":" and not empty)
 *   ${NAME:?msg}  ${NAME?msg}    error when unset (":" also when empty)
 *   ${NAME#pat} ${NAME##pat} ${NAME%pat} ${NAME%%pat}   shortest / longest
 *                                prefix / suffix removed (* and ? wildcards)
 *   ${NAME/pat/repl} ${NAME//pat/repl}   first / every match replaced
 * with words that nest (${a:-${b}}). Unset variables expand to "". $1,
 * $@, $# and the other positional and special parameters are names like any
 * other (normally unset). lookup may be NULL (nothing is set).
 * Returns 0 and *out (free it); OCISYNC_EUSAGE with err
 * `failed to process "WORD": REASON` for a syntax error or a ${NAME?msg}
 * that fired; OCISYNC_ETOOBIG past OCI_DF_EXPAND_MAX bytes, nesting deeper
 * than 64 or a pattern too costly to match; UV_ENOMEM.
 */
int oci_df_expand(const char *raw, char escape, oci_df_lookup lookup, void *arg, char **out,
                  char *err, size_t errlen);

/*
 * Expands raw and splits the result into words (Lex.ProcessWords, which
 * BuildKit uses for EXPOSE): whitespace that came from outside quotes
 * separates words, also whitespace inside a variable's value; quoted text
 * and escaped characters never split; empty words are dropped. BuildKit's
 * quirk is kept: text before a ${NAME<modifier>...} in the same word is
 * lost ("a${X:-b}" gives "b"). Returns as oci_df_expand, with *words (n
 * strings; free with oci_df_words_free).
 */
int oci_df_expand_words(const char *raw, char escape, oci_df_lookup lookup, void *arg,
                        char ***words, size_t *n, char *err, size_t errlen);
void oci_df_words_free(char **words, size_t n);

/*
 * Expands the body of a COPY / ADD heredoc whose delimiter was not quoted,
 * as BuildKit does (a '\\' lexer that leaves quotes alone: variables and
 * backslash escapes only). Capped at OCI_DF_HEREDOC_EXPAND_MAX; otherwise
 * as oci_df_expand.
 */
int oci_df_expand_heredoc(const char *content, oci_df_lookup lookup, void *arg, char **out,
                          char *err, size_t errlen);

#endif
