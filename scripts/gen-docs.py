#!/usr/bin/env python3
"""Writes ocisync's man pages and shell completions from the program itself.

    scripts/gen-docs.py --bin build/ocisync --out build/docs

The command list comes from `ocisync --help`, and each command's synopsis,
description and options from `ocisync COMMAND --help`, so neither the pages
nor the completions can drift from what the binary accepts. What --help does
not say (a line for NAME, examples, the environment, files) is written below,
from the README. The build runs this after linking ocisync (CMake target
ocisync_docs); tests/integration/test_install.sh checks the result.

Writes OUT/man/ocisync.1, OUT/man/ocisync-COMMAND.1 for every command,
copies doc/ocisync-sync.yml.5 to OUT/man (each page also gzip'ed), and writes
OUT/completions/ocisync.bash, OUT/completions/_ocisync (zsh) and
OUT/completions/ocisync.fish.
"""

import argparse
import gzip
import os
import re
import shutil
import subprocess
import sys

# --- What --help does not say -------------------------------------------------------------------

INTRO = """ocisync copies container images between OCI and Docker registries, OCI
image layouts and archives by talking the distribution API directly, with
no Docker daemon. One event loop drives many transfers at once; every blob
is streamed from the source straight into the destination's upload, hashed
as it passes and verified before the upload is committed, so memory is
bounded by the transfers in flight, not by blob size.

It mirrors repositories and whole registries (sync, from skopeo sync's YAML
or its own format), builds multi-platform images from directories or
Dockerfiles and pushes them (build-push), and reads and edits registries
(inspect, ls, catalog, digest, manifest, config, blob, tag, delete, index).
The command line follows skopeo's: a skopeo script changes only the
program's name.

Each command has a page of its own: ocisync-COMMAND(1). The program is also
a C library (ocisync.h, pkg-config ocisync) that embeds all of it."""

EXAMPLES = {
    "copy": [
        ("Copy every platform of an image between registries, digests preserved:",
         "ocisync copy docker.io/library/alpine:3.20 registry.example.com/mirror/alpine:3.20"),
        ("Copy to an OCI layout on disk, and on from it:",
         "ocisync copy docker://registry.example.com/app:1.4 oci:/tmp/app:1.4\n"
         "ocisync copy oci:/tmp/app:1.4 docker://mirror.example.com/app:1.4"),
        ("Copy two platforms only (a new index, so a new digest):",
         "ocisync copy -p linux/amd64 -p linux/arm64 SRC DST"),
    ],
    "sync": [
        ("Mirror from skopeo sync's config file:",
         "ocisync sync --src yaml --dest docker sync.yml registry.example.com/mirror"),
        ("Every tag of a repository:",
         "ocisync sync --src docker --dest docker docker.io/library/alpine registry.example.com/mirror"),
        ("Shard 2 of 4 of a config in ocisync's format (its mirrors name their destinations):",
         "ocisync sync --src yaml --shard 2/4 mirrors.yml"),
    ],
    "build-push": [
        ("Two platforms from release directories on top of alpine, two tags:",
         "ocisync build-push --base docker.io/library/alpine:3.20 \\\n"
         "  --platform linux/amd64=./dist/amd64:/app --platform linux/arm64=./dist/arm64:/app \\\n"
         "  --entrypoint /app/server --user 65534 \\\n"
         "  --tag registry.example.com/team/app:1.4.0 --tag registry.example.com/team/app:latest"),
        ("A Dockerfile, for two platforms:",
         "ocisync build-push -f Dockerfile . -p linux/amd64 -p linux/arm64 \\\n"
         "  --build-arg VERSION=1.4.0 -t registry.example.com/app:1.4.0"),
    ],
    "build": [
        ("A Dockerfile into an OCI archive:",
         "ocisync build -f Dockerfile . -p linux/arm64 --output oci-archive:app.tar"),
    ],
    "push": [
        ("Push what build wrote, digests unchanged:",
         "ocisync push oci-archive:app.tar:latest docker://registry.example.com/app:1.4.0"),
    ],
    "inspect": [("", "ocisync inspect docker://registry.example.com/app:1.4")],
    "ls": [("", "ocisync ls --semver '>= 3.18' --latest 3 docker.io/library/alpine")],
    "catalog": [("", "ocisync catalog registry.example.com team")],
    "digest": [("", "ocisync digest --platform linux/arm64 registry.example.com/app:1.4")],
    "manifest": [("", "ocisync manifest registry.example.com/app:1.4 | jq .")],
    "config": [("", "ocisync config registry.example.com/app:1.4 | jq .config.Env")],
    "blob": [("", "ocisync blob registry.example.com/app@sha256:... > layer.tar.gz")],
    "tag": [("", "ocisync tag registry.example.com/app:1.4.0 1.4 latest")],
    "delete": [("", "ocisync delete registry.example.com/app:old")],
    "index": [
        ("Join two single-platform images into one index:",
         "ocisync index create --tag registry.example.com/app:1.4 \\\n"
         "  registry.example.com/app:1.4-amd64 registry.example.com/app:1.4-arm64"),
    ],
    "login": [("", "echo \"$TOKEN\" | ocisync login -u bot --password-stdin ghcr.io")],
    "logout": [("", "ocisync logout ghcr.io")],
    "version": [("", "ocisync version")],
}

ENVIRONMENT = [
    ("OCISYNC_USERNAME, OCISYNC_PASSWORD, OCISYNC_TOKEN",
     "credentials for every registry, after the command line's; OCISYNC_PULL_* for a "
     "source and OCISYNC_PUSH_* for a destination come first. An empty variable counts as unset."),
    ("REGISTRY_AUTH_FILE", "the auth file read (and written by login) when --authfile is not given."),
    ("XDG_RUNTIME_DIR, XDG_CONFIG_HOME, DOCKER_CONFIG",
     "where the auth files are: containers/auth.json under the first two, config.json under the third."),
    ("OCISYNC_CERTS_DIRS",
     "colon-separated directories with a certs.d-style directory per registry "
     "(default /etc/containers/certs.d:/etc/docker/certs.d)."),
    ("SSL_CERT_FILE, SSL_CERT_DIR", "the system CA certificates, as OpenSSL reads them."),
    ("SOURCE_DATE_EPOCH", "build, build-push and archives: the time stamps of what is written."),
    ("TMPDIR", "where archives are unpacked and packed (--tmpdir sets it for one run)."),
    ("XDG_CACHE_HOME", "the build cache is $XDG_CACHE_HOME/ocisync (else ~/.cache/ocisync)."),
]

FILES = [
    ("$XDG_RUNTIME_DIR/containers/auth.json",
     "where login writes credentials (/run/containers/UID/auth.json without XDG_RUNTIME_DIR)."),
    ("~/.config/containers/auth.json, ~/.docker/config.json, ~/.dockercfg",
     "further auth files read, in this order."),
    ("/etc/containers/certs.d/REGISTRY, /etc/docker/certs.d/REGISTRY",
     "CA certificates (*.crt) and client certificates (NAME.cert, NAME.key) for a registry."),
]

EXIT_STATUS = [
    ("0", "success, including \"already up to date\"."),
    ("1", "the operation failed; the message names the reference, the registry, the request, "
          "the HTTP status and the registry's own error code."),
    ("2", "the command line (or a config file) is wrong."),
    ("130", "interrupted by SIGINT or SIGTERM: nothing half-written was committed, and a "
            "rerun completes only what is missing."),
]

# --- Reading --help -------------------------------------------------------------------------------


def run_help(binary, args):
    out = subprocess.run([binary] + args, check=True, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    return out.stdout


def is_arg_token(tok):
    """A word of an option's spec that is its argument rather than the start of its text."""
    return bool(tok) and (tok[0] in "-<[" or re.search(r"[A-Z|=\[\]]", tok) is not None)


def split_entry(line):
    """An indented line "  TERM   text" -> (TERM, text)."""
    body = line.strip()
    m = re.search(r"\S( {2,})\S", body)
    if m:
        return body[:m.start(1)].strip(), body[m.end(1) - 1:].strip()
    words = body.split(" ")
    i = 1
    while i < len(words) and (is_arg_token(words[i]) or words[i - 1].endswith(",")):
        i += 1
    return " ".join(words[:i]), " ".join(words[i:])


def parse_help(text):
    """Splits a --help text into its usage lines and blocks.

    Blocks are ("para", text), ("heading", text) and ("entries", [(term, text)]).
    An entry starts on a line indented 2 to 6 spaces; deeper lines continue its text.
    """
    lines = text.rstrip("\n").split("\n")
    usage = []
    i = 0
    while i < len(lines) and (lines[i].startswith("Usage:") or
                              (usage and lines[i].startswith("       "))):
        usage.append(lines[i][len("Usage:"):].strip() if lines[i].startswith("Usage:")
                     else lines[i].strip())
        i += 1
    blocks = []
    para = []

    def flush():
        if para:
            blocks.append(("para", " ".join(para)))
            para.clear()

    while i < len(lines):
        line = lines[i]
        indent = len(line) - len(line.lstrip(" "))
        if not line.strip():
            flush()
        elif indent == 0:
            if line.endswith(":") and i + 1 < len(lines) and lines[i + 1].startswith("  "):
                flush()
                blocks.append(("heading", line[:-1]))
            else:
                para.append(line)
        elif indent <= 6:
            flush()
            term, desc = split_entry(line)
            entries = blocks[-1][1] if blocks and blocks[-1][0] == "entries" else None
            if entries is None:
                entries = []
                blocks.append(("entries", entries))
            entries.append([term, desc, bool(desc)])
        else:
            # Continuation of the last entry's text (or of a paragraph).
            if blocks and blocks[-1][0] == "entries" and not para:
                e = blocks[-1][1][-1]
                e[1] = (e[1] + " " + line.strip()).strip()
            else:
                para.append(line.strip())
        i += 1
    flush()
    # An entry without text of its own whose next entry also had none on its first line
    # shares that entry's text ("--src-username USER, --src-password PASS" then
    # "--dest-username USER, --dest-password PASS"); a term ending in "," goes on.
    for b in blocks:
        if b[0] != "entries":
            continue
        merged = []
        for term, desc, inline in b[1]:
            if merged and (merged[-1][0].endswith(",") or
                           (not merged[-1][1] and not inline)):
                sep = " " if merged[-1][0].endswith(",") else ", "
                merged[-1][0] = merged[-1][0] + sep + term
                merged[-1][1] = desc
                merged[-1][2] = inline
            else:
                merged.append([term, desc, inline])
        b[1][:] = [(t, d) for t, d, _ in merged]
    return usage, blocks


def long_options(term):
    return re.findall(r"(?<![\w-])(--[a-z0-9][a-z0-9.-]*)", term)


def short_options(term):
    return re.findall(r"(?<![\w-])(-[a-zA-Z])\b", term)


class Command:
    def __init__(self, name, summary, usage, blocks):
        self.name, self.summary, self.usage, self.blocks = name, summary, usage, blocks
        self.options = {}  # "--x" -> (argument or "", text)
        self.shorts = {}   # "-x" -> "--x"
        self.values = {}   # "--x" -> [words]
        for kind, body in blocks:
            if kind != "entries":
                continue
            for term, desc in body:
                if not term.startswith("-"):
                    continue
                for part in re.split(r",\s*(?=-)", term):
                    words = part.split(None, 1)
                    opt, arg = words[0], (words[1] if len(words) > 1 else "")
                    if opt.startswith("--"):
                        name_only = re.sub(r"\[=.*$", "", opt)
                        self.options.setdefault(name_only, (arg, desc))
                        if "|" in arg and re.fullmatch(r"[a-z0-9|-]+", arg):
                            self.values[name_only] = arg.split("|")
                    elif re.fullmatch(r"-[a-zA-Z]", opt):
                        longs = long_options(term)
                        if longs:
                            self.shorts.setdefault(opt, longs[0])
        # Choices the usage line spells out: "--src docker|dir|yaml|oci".
        for u in usage:
            for opt, vals in re.findall(r"(--[a-z-]+) ([a-z]+(?:\|[a-z-]+)+)", u):
                self.values[opt] = vals.split("|")
        # Options given only in the usage line.
        for u in usage:
            for opt in long_options(u):
                self.options.setdefault(opt, ("", ""))

    def takes_arg(self, opt):
        arg = self.options.get(opt, ("", ""))[0]
        return bool(arg) and not arg.startswith("[")

    def file_arg(self, opt):
        arg = self.options.get(opt, ("", ""))[0]
        return re.search(r"FILE|DIR|CONTEXT|SRC", arg) is not None


def read_commands(binary):
    usage, blocks = parse_help(run_help(binary, ["--help"]))
    commands, global_cmd = [], None
    heading = None
    for kind, body in blocks:
        if kind == "heading":
            heading = body
        elif kind == "entries" and heading == "Commands":
            for term, desc in body:
                name = term.split()[0]
                u, b = parse_help(run_help(binary, [name, "--help"]))
                commands.append(Command(name, desc, u, b))
    global_cmd = Command("", "", usage, [b for b in blocks if b[0] == "entries"][1:])
    return usage, blocks, commands, global_cmd


# --- roff -----------------------------------------------------------------------------------------


def esc(text):
    """Plain text for roff: backslashes escaped, option dashes made minus signs."""
    text = text.replace("\\", "\\e")
    text = re.sub(r"(?<![\w-])-(?=[-\w])", r"\\-", text)
    text = re.sub(r"(?<=\\-)-", r"\\-", text)
    return text


def line_safe(text):
    """A text line that roff will not read as a request."""
    return "\\&" + text if text[:1] in (".", "'") else text


def fmt_term(term):
    """Options in bold, their arguments in italics."""
    out = []
    for tok in re.split(r"(\s+|,)", term):
        if not tok or tok.isspace() or tok == ",":
            out.append(tok)
        elif tok.startswith("-"):
            m = re.match(r"(-[-\w.]*)(.*)$", tok)
            out.append("\\fB" + esc(m.group(1)) + "\\fR" +
                       ("\\fI" + esc(m.group(2)) + "\\fR" if m.group(2) else ""))
        else:
            out.append("\\fI" + esc(tok) + "\\fR")
    return "".join(out)


def roff_blocks(blocks, out):
    heading = None
    for kind, body in blocks:
        if kind == "para":
            out.append(".PP")
            out.append(line_safe(esc(body)))
        elif kind == "heading":
            heading = body
            out.append(".PP")
            out.append(line_safe(esc(body + ":")))
        else:
            for term, desc in body:
                out.append(".TP")
                out.append(line_safe(fmt_term(term)))
                out.append(line_safe(esc(desc)) if desc else "\\&")
            heading = None
    return heading


def synopsis(usage, out):
    for u in usage:
        words = u.split(" ", 2)
        if out[-1] != ".SH SYNOPSIS":
            out.append(".br")
        if len(words) >= 2 and words[0] == "ocisync":
            cmd = words[1] if not words[1].isupper() else ""
            rest = u[len("ocisync " + cmd):].strip() if cmd else u[len("ocisync"):].strip()
            out.append(".B " + ("ocisync " + cmd).strip())
            if rest:
                out.append(line_safe(esc(rest)))
        else:
            out.append(line_safe(esc(u)))


def th(name, section, version):
    return [
        ".\\\" Generated by scripts/gen-docs.py from ocisync --help; do not edit.",
        '.TH "%s" "%s" "" "ocisync %s" "ocisync manual"' % (name.upper(), section, version),
        # Option names and page names read better unbroken.
        ".nh",
    ]


def common_tail(out, see_also):
    out.append(".SH EXIT STATUS")
    for code, text in EXIT_STATUS:
        out.append(".TP")
        out.append(".B " + code)
        out.append(esc(text))
    out.append(".SH SEE ALSO")
    out.append(",\n".join(".BR %s (%s)" % (n, s) for n, s in see_also))


def examples(cmd, out):
    ex = EXAMPLES.get(cmd)
    if not ex:
        return
    out.append(".SH EXAMPLES")
    for text, code in ex:
        if text:
            out.append(".PP")
            out.append(esc(text))
        out.append(".PP")
        out.append(".RS 4")
        out.append(".nf")
        for line in code.split("\n"):
            out.append(line_safe(esc(line)))
        out.append(".fi")
        out.append(".RE")


def command_page(cmd, version):
    out = th("ocisync-" + cmd.name, "1", version)
    out.append(".SH NAME")
    out.append("ocisync\\-%s \\- %s" % (esc(cmd.name), esc(cmd.summary)))
    out.append(".SH SYNOPSIS")
    synopsis(cmd.usage, out)
    # What comes before the first group of options is the description.
    desc, opts = [], []
    in_opts = False
    for i, (kind, body) in enumerate(cmd.blocks):
        nxt = cmd.blocks[i + 1] if i + 1 < len(cmd.blocks) else None
        if kind == "heading" and nxt and nxt[0] == "entries" and nxt[1][0][0].startswith("-") \
                and not (body.startswith("SRC") or body.startswith("REF")):
            in_opts = True
        (opts if in_opts else desc).append((kind, body))
    out.append(".SH DESCRIPTION")
    roff_blocks(desc, out)
    if opts:
        out.append(".SH OPTIONS")
        for kind, body in opts:
            if kind == "heading":
                if body != "Options":
                    out.append(".SS " + esc(body))
            else:
                roff_blocks([(kind, body)], out)
        out.append(".PP")
        out.append("A DURATION is seconds (0.5, 120) or Go's form (500ms, 1m30s). "
                   "See ocisync(1) for the options that go before the command.")
    examples(cmd.name, out)
    common_tail(out, [("ocisync", 1)] +
                ([("ocisync-sync.yml", 5)] if cmd.name == "sync" else []) +
                [("skopeo", 1)])
    return "\n".join(out) + "\n"


def main_page(usage, blocks, commands, version):
    out = th("ocisync", "1", version)
    out.append(".SH NAME")
    out.append("ocisync \\- copy, mirror and build container images against OCI registries")
    out.append(".SH SYNOPSIS")
    out.append(".B ocisync")
    out.append("[\\fIGLOBAL OPTIONS\\fR] \\fICOMMAND\\fR [\\fIOPTIONS\\fR] \\fIARGS\\fR")
    out.append(".SH DESCRIPTION")
    for p in INTRO.split("\n\n"):
        out.append(".PP")
        out.append(esc(p.replace("\n", " ")))
    out.append(".SH COMMANDS")
    for kind, body in blocks:
        if kind == "heading" and body == "Commands":
            continue
    for c in commands:
        term = next(t for k, b in blocks if k == "entries" for t, d in b
                    if t.split()[0] == c.name)
        out.append(".TP")
        out.append(fmt_term_cmd(term))
        out.append(esc(c.summary) + "; see \\fBocisync\\-%s\\fR(1)." % esc(c.name))
    out.append(".SH GLOBAL OPTIONS")
    out.append("These go before the command, as skopeo's.")
    gblocks = []
    heading = None
    for kind, body in blocks:
        if kind == "heading":
            heading = body
        elif kind == "entries" and heading and heading.startswith("Global"):
            gblocks.append((kind, body))
    roff_blocks(gblocks, out)
    out.append(".SH ENVIRONMENT")
    for name, text in ENVIRONMENT:
        out.append(".TP")
        out.append(".B " + esc(name))
        out.append(esc(text))
    out.append(".SH FILES")
    for name, text in FILES:
        out.append(".TP")
        out.append(".I " + esc(name))
        out.append(esc(text))
    common_tail(out, [("ocisync-" + c.name, 1) for c in commands] +
                [("ocisync-sync.yml", 5), ("containers-auth.json", 5), ("skopeo", 1)])
    return "\n".join(out) + "\n"


def fmt_term_cmd(term):
    words = term.split(" ", 1)
    return "\\fB%s\\fR%s" % (esc(words[0]), (" \\fI" + esc(words[1]) + "\\fR") if len(words) > 1 else "")


# --- Completions ----------------------------------------------------------------------------------


def sh_words(words):
    return " ".join(sorted(set(words)))


def bash_completion(commands, glob):
    arg_globals = [o for o in glob.options if glob.takes_arg(o)]
    out = [
        "# bash completion for ocisync. Generated by scripts/gen-docs.py from",
        "# `ocisync --help` and each command's --help; do not edit.",
        "_ocisync() {",
        "    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}",
        "    local i w cmd='' sub='' opts='' argopts='' fileopts=''",
        "    for ((i = 1; i < COMP_CWORD; i++)); do",
        "        w=${COMP_WORDS[i]}",
        "        if [ -z \"$cmd\" ]; then",
        "            case $w in",
        "            %s) ((i++)) ;;" % "|".join(arg_globals),
        "            -*) ;;",
        "            *) cmd=$w ;;",
        "            esac",
        "        elif [ \"$cmd\" = index ] && [ -z \"$sub\" ] && [[ $w != -* ]]; then",
        "            sub=$w",
        "        fi",
        "    done",
        "    if [ -z \"$cmd\" ]; then",
        "        if [[ $cur == -* ]]; then",
        "            COMPREPLY=($(compgen -W '%s' -- \"$cur\"))" % sh_words(glob.options),
        "        elif [[ \" %s \" == *\" $prev \"* ]]; then" % " ".join(arg_globals),
        "            COMPREPLY=($(compgen -f -- \"$cur\"))",
        "        else",
        "            COMPREPLY=($(compgen -W '%s' -- \"$cur\"))"
        % sh_words([c.name for c in commands] + ["help", "list-tags"]),
        "        fi",
        "        return 0",
        "    fi",
        "    case $cmd in",
        "    help)",
        "        COMPREPLY=($(compgen -W '%s' -- \"$cur\"))" % sh_words(c.name for c in commands),
        "        return 0",
        "        ;;",
        "    index)",
        "        if [ -z \"$sub\" ] && [[ $cur != -* ]]; then",
        "            COMPREPLY=($(compgen -W 'append create' -- \"$cur\"))",
        "            return 0",
        "        fi",
        "        ;;",
        "    esac",
        "    case $cmd in",
    ]
    for c in commands:
        names = [c.name] + (["list-tags"] if c.name == "ls" else [])
        out.append("    %s)" % "|".join(names))
        out.append("        opts='%s'" % sh_words(list(c.options) + list(c.shorts)))
        out.append("        argopts='%s'" % sh_words(
            [o for o in c.options if c.takes_arg(o)] +
            [s for s, l in c.shorts.items() if c.takes_arg(l)]))
        out.append("        fileopts='%s'" % sh_words(
            [o for o in c.options if c.takes_arg(o) and c.file_arg(o)] +
            [s for s, l in c.shorts.items() if c.takes_arg(l) and c.file_arg(l)]))
        for opt, vals in sorted(c.values.items()):
            shorts = [s for s, l in c.shorts.items() if l == opt]
            out.append("        if [[ \" %s \" == *\" $prev \"* ]]; then" % " ".join([opt] + shorts))
            out.append("            COMPREPLY=($(compgen -W '%s' -- \"$cur\"))" % " ".join(vals))
            out.append("            return 0")
            out.append("        fi")
        out.append("        ;;")
    out += [
        "    esac",
        "    if [ -n \"$prev\" ] && [[ \" $argopts \" == *\" $prev \"* ]]; then",
        "        if [[ \" $fileopts \" == *\" $prev \"* ]]; then",
        "            COMPREPLY=($(compgen -f -- \"$cur\"))",
        "        fi",
        "        return 0",
        "    fi",
        "    if [[ $cur == -* ]]; then",
        "        COMPREPLY=($(compgen -W \"$opts\" -- \"$cur\"))",
        "    else",
        "        COMPREPLY=($(compgen -f -- \"$cur\"))",
        "    fi",
        "    return 0",
        "}",
        "complete -F _ocisync ocisync",
    ]
    return "\n".join(out) + "\n"


def zsh_text(text):
    text = re.sub(r"\s+", " ", text).strip()
    text = text[:70].rsplit(" ", 1)[0] if len(text) > 70 else text
    return text.replace("\\", "").replace("'", "").replace("[", "(").replace("]", ")") \
        .replace(":", " ")


def zsh_completion(commands, glob):
    def spec(c, opt):
        arg, desc = c.options[opt]
        s = "'*%s%s[%s]" % (opt, "=" if c.takes_arg(opt) else "", zsh_text(desc))
        if c.takes_arg(opt):
            if opt in c.values:
                s += ":%s:(%s)" % (zsh_text(arg) or "value", " ".join(c.values[opt]))
            elif c.file_arg(opt):
                s += ":%s:_files" % (zsh_text(arg) or "file")
            else:
                s += ":%s: " % (zsh_text(arg) or "value")
        return s + "'"

    out = [
        "#compdef ocisync",
        "# zsh completion for ocisync. Generated by scripts/gen-docs.py from",
        "# `ocisync --help` and each command's --help; do not edit.",
        "_ocisync() {",
        "  local curcontext=$curcontext state line",
        "  local -a commands",
        "  commands=(",
    ]
    for c in commands:
        out.append("    '%s:%s'" % (c.name, zsh_text(c.summary)))
    out.append("    'list-tags:list a repositorys tags'")
    out.append("    'help:a commands help'")
    out.append("  )")
    out.append("  _arguments -C \\")
    for o in glob.options:
        out.append("    %s \\" % spec(glob, o))
    out.append("    '1:command:->command' '*::argument:->argument'")
    out += [
        "  case $state in",
        "  command) _describe -t commands command commands ;;",
        "  argument)",
        "    case $line[1] in",
        "    help) _describe -t commands command commands ;;",
    ]
    for c in commands:
        names = [c.name] + (["list-tags"] if c.name == "ls" else [])
        out.append("    %s)" % "|".join(names))
        if c.name == "index":
            out.append("      if (( CURRENT == 2 )); then")
            out.append("        _values subcommand create append")
            out.append("        return")
            out.append("      fi")
        out.append("      _arguments \\")
        for o in c.options:
            out.append("        %s \\" % spec(c, o))
        for s, l in sorted(c.shorts.items()):
            out.append("        '*%s[%s]%s' \\" % (
                s, zsh_text(c.options[l][1]),
                (":%s: " % (zsh_text(c.options[l][0]) or "value")) if c.takes_arg(l) else ""))
        out.append("        '*:argument:_files'")
        out.append("      ;;")
    out += ["    esac", "    ;;", "  esac", "}", "", '_ocisync "$@"']
    return "\n".join(out) + "\n"


def fish_completion(commands, glob):
    def q(s):
        return "'" + re.sub(r"\s+", " ", s).strip().replace("\\", "\\\\").replace("'", "\\'") + "'"

    names = [c.name for c in commands] + ["list-tags", "help"]
    out = [
        "# fish completion for ocisync. Generated by scripts/gen-docs.py from",
        "# `ocisync --help` and each command's --help; do not edit.",
        "complete -c ocisync -f",
    ]
    for o in glob.options:
        out.append("complete -c ocisync -n '__fish_use_subcommand' -l %s%s -d %s" % (
            o[2:], " -r" if glob.takes_arg(o) else "", q(glob.options[o][1])))
    for c in commands:
        out.append("complete -c ocisync -n '__fish_use_subcommand' -a %s -d %s" % (c.name, q(c.summary)))
    out.append("complete -c ocisync -n '__fish_use_subcommand' -a list-tags -d %s" % q("list a repository's tags"))
    out.append("complete -c ocisync -n '__fish_use_subcommand' -a help -d %s" % q("a command's help"))
    out.append("complete -c ocisync -n '__fish_seen_subcommand_from help' -a %s" % q(" ".join(c.name for c in commands)))
    out.append("complete -c ocisync -n '__fish_seen_subcommand_from index; and not __fish_seen_subcommand_from create append' -a 'create append'")
    for c in commands:
        cond = "__fish_seen_subcommand_from %s" % " ".join([c.name] + (["list-tags"] if c.name == "ls" else []))
        rev = {l: s for s, l in c.shorts.items()}
        for o in c.options:
            line = "complete -c ocisync -n '%s' -l %s" % (cond, o[2:])
            if o in rev:
                line += " -s " + rev[o][1:]
            if o in c.values:
                line += " -x -a %s" % q(" ".join(c.values[o]))
            elif c.takes_arg(o):
                line += " -r" + (" -F" if c.file_arg(o) else "")
            out.append(line + " -d " + q(c.options[o][1] or o))
        if c.name not in ("version", "logout", "login", "help"):
            out.append("complete -c ocisync -n '%s' -F" % cond)
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--source", default=os.path.join(os.path.dirname(__file__), ".."))
    args = ap.parse_args()
    version = run_help(args.bin, ["version"]).split("\n")[0].split()[-1]
    usage, blocks, commands, glob = read_commands(args.bin)
    man = os.path.join(args.out, "man")
    comp = os.path.join(args.out, "completions")
    os.makedirs(man, exist_ok=True)
    os.makedirs(comp, exist_ok=True)

    def write(path, text):
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, path)

    write(os.path.join(man, "ocisync.1"), main_page(usage, blocks, commands, version))
    for c in commands:
        write(os.path.join(man, "ocisync-%s.1" % c.name), command_page(c, version))
    shutil.copyfile(os.path.join(args.source, "doc", "ocisync-sync.yml.5"),
                    os.path.join(man, "ocisync-sync.yml.5"))
    # gzip -9n's bytes (no name, no time stamp), as Debian installs man pages.
    for name in sorted(os.listdir(man)):
        if name.endswith((".1", ".5")):
            with open(os.path.join(man, name), "rb") as f:
                data = gzip.compress(f.read(), compresslevel=9, mtime=0)
            with open(os.path.join(man, name + ".gz.tmp"), "wb") as f:
                f.write(data)
            os.replace(os.path.join(man, name + ".gz.tmp"), os.path.join(man, name + ".gz"))
    write(os.path.join(comp, "ocisync.bash"), bash_completion(commands, glob))
    write(os.path.join(comp, "_ocisync"), zsh_completion(commands, glob))
    write(os.path.join(comp, "ocisync.fish"), fish_completion(commands, glob))
    return 0


if __name__ == "__main__":
    sys.exit(main())
