#!/usr/bin/env bash
# Golden comparison of `ocisync build -f` against buildah (Debian's, 1.28):
# the same Dockerfiles, context and base image built by both, then every
# path of the resulting filesystems (type, mode, owner, link target,
# contents, hardlinks, mtime) and every config field a Dockerfile sets
# compared by tests/tools/treecmp.py. The differences that are expected are
# listed below in an allow-list, each with its reason and pinned to the
# exact values; anything else fails the test.
#
# Five Dockerfiles:
#   meta     two stages (FROM stage, --target past an unbuilt RUN stage):
#            global and stage ARGs with defaults and a --build-arg override,
#            ${V:-x} / ${V:+y}, ENV in key=value (several pairs, quoted,
#            escaped) and legacy form, LABEL quoting, every metadata
#            instruction, WORKDIR absolute / relative / from a variable /
#            after USER
#   copy     on the base image: files, directories, wildcards, several
#            sources into a directory, relative destinations under WORKDIR,
#            --chown, --chmod octal and symbolic, ADD of local files,
#            symlinks (absolute, relative, climbing out, dangling, a source
#            that is a symlink), hardlinks, .dockerignore with ** and !,
#            COPY . (the whole filtered context)
#   scratch  FROM scratch: heredoc COPY (expanded and quoted), the config
#            a scratch stage starts with
#   labelkey a label key with a space in it
#   stages   COPY --from a stage (owners kept), --chown by name, ADD of a
#            gzip archive, a COPY into the base's /bin and /tmp, WORKDIR
#            after USER and on an existing directory
# buildah 1.28 has no heredocs and no symbolic --chmod: its copy of a
# Dockerfile has those lines replaced by their equivalent (a context file
# with the heredoc's expected contents; the octal mode the symbolic one
# gives), so the comparison checks ocisync's answer for them all the same.
#
# Not compared, by design: the history (buildah writes "/bin/sh -c #(nop)
# COPY file:<hash> in /dst", BuildKit and ocisync the instruction as
# written), the number of layers and their digests (buildah commits one
# layer per stage, ocisync one per COPY), annotations, and config fields no
# Dockerfile instruction sets (buildah's Hostname, ArgsEscaped, ...).
#
# buildah runs as root with --isolation chroot (no RUN is executed), vfs
# storage and a registries.conf of its own under $TMP, like podman_cmd; its
# images are built with --format docker, because its OCI format drops
# Healthcheck and Shell, and copied out with the dir: transport.
. "$(dirname "$0")/lib.sh"

TREECMP="$OCISYNC_SOURCE_DIR/tests/tools/treecmp.py"
export SOURCE_DATE_EPOCH=1700000000
# ocisync's build cache stays in this test's temp dir.
export XDG_CACHE_HOME="$TMP/cache"
command -v buildah >/dev/null || fail "buildah is not installed (scripts/bootstrap.sh installs it)"

# buildah_cmd ARGS...: buildah with storage of its own in $TMP/buildah.
buildah_cmd() {
  mkdir -p "$TMP/buildah/tmp"
  if [ ! -f "$TMP/buildah/registries.conf" ]; then
    printf 'unqualified-search-registries = []\n' >"$TMP/buildah/registries.conf"
  fi
  TMPDIR="$TMP/buildah/tmp" CONTAINERS_REGISTRIES_CONF="$TMP/buildah/registries.conf" \
    buildah --root "$TMP/buildah/root" --runroot "$TMP/buildah/run" --storage-driver vfs "$@"
}

registry_start reg

# --- the base image both build on: busybox, a few directories, users ----------------------------
basefs="$TMP/basefs"
mkdir -p "$basefs/bin" "$basefs/etc" "$basefs/usr/bin" "$basefs/tmp" "$basefs/root" "$basefs/home/app"
cp /bin/busybox "$basefs/bin/busybox"
ln -s busybox "$basefs/bin/sh"
printf 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n' >"$basefs/etc/passwd"
printf 'root:x:0:\napp:x:1000:\n' >"$basefs/etc/group"
chmod 1777 "$basefs/tmp"
chmod 0700 "$basefs/root"
run_ocisync build --platform "linux/amd64=$basefs:/" \
  --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --output "oci:$TMP/base:1"
expect_success "the base image"
push_image "$TMP/base" "$REG_ADDR/lib/base:1"
BASE="$REG_ADDR/lib/base:1"

# --- the context -----------------------------------------------------------------------------
ctx="$TMP/ctx"
mkdir -p "$ctx"/{app/bin,app/lib,app/conf/empty,files,perms,links,hard/sub,heredoc}
mkdir -p "$ctx"/ign/{sub/deep/keep,secret,docs/a,docs/b}
printf '#!/bin/sh\necho tool\n' >"$ctx/app/bin/tool"
echo libfoo >"$ctx/app/lib/libfoo.so"
echo 'k: v' >"$ctx/app/conf/app.yaml"
python3 -c 'import random, sys; r = random.Random(7); sys.stdout.buffer.write(bytes(r.getrandbits(8) for _ in range(100000)))' \
  >"$ctx/app/data.bin"
chmod 0755 "$ctx/app/bin/tool"
chmod 0640 "$ctx/app/conf/app.yaml"
chmod 0700 "$ctx/app/conf/empty"
chmod 0750 "$ctx/app/lib" "$ctx/app"
echo a >"$ctx/files/a.txt"
echo b >"$ctx/files/b.txt"
echo c >"$ctx/files/c.md"
echo old >"$ctx/files/old.txt"
touch -d @978307200 "$ctx/files/old.txt" # 2001: older than SOURCE_DATE_EPOCH
echo top >"$ctx/top.txt"
printf '#!/bin/sh\n' >"$ctx/perms/script.sh"
echo data >"$ctx/perms/data.txt"
echo target >"$ctx/links/target.txt"
ln -s /etc/passwd "$ctx/links/abs"
ln -s ../../outside/secret "$ctx/links/climb"
ln -s target.txt "$ctx/links/sib"
ln -s ../app "$ctx/links/dirlink"
ln -s nowhere "$ctx/links/dangling"
ln -s top.txt "$ctx/srclink"
echo same >"$ctx/hard/one"
ln "$ctx/hard/one" "$ctx/hard/two"
ln "$ctx/hard/one" "$ctx/hard/sub/three"
echo solo >"$ctx/hard/solo"
for f in keep.log drop.log sub/deep/x.log sub/deep/keep/important.log notes.tmp secret/x \
  docs/a/draft1.md docs/a/draft-final.md docs/b/readme.md plain.txt; do
  echo "$f" >"$ctx/ign/$f"
done
cat >"$ctx/.dockerignore" <<'EOF'
# Last match wins; patterns are anchored at the context root.
**/*.log
!ign/keep.log
!**/keep/*.log
*.tmp
**/*.tmp
ign/secret
ign/docs/**/draft*
!ign/docs/**/draft-final.md
EOF
# What the scratch Dockerfile's heredocs must give (buildah copies these).
printf 'version 2.0.0 dflt\n  two spaces kept\n' >"$ctx/heredoc/motd"
# shellcheck disable=SC2016 # the heredoc is quoted: nothing expands
printf '$VERSION ${UNSET:-stays} literal\n' >"$ctx/heredoc/raw"
printf 'secret\n' >"$ctx/heredoc/secret"

df="$TMP/df"
mkdir -p "$df"

# --- meta: stages, ARG, ENV, LABEL and every metadata instruction --------------------------------
cat >"$df/meta.Dockerfile" <<'EOF'
# syntax=docker/dockerfile:1
ARG BASE
ARG VERSION=1.0.0
ARG FLAVOR=vanilla
ARG EMPTY=
ARG ONLY_GLOBAL=global
FROM ${BASE} AS base
ARG VERSION
ARG FLAVOR
ARG NOTSET
ARG EMPTY
ARG STAGE_DEFAULT="quoted default"
ARG TARGETPLATFORM
ARG TARGETARCH
ARG BUILDARCH
ENV A_VERSION=$VERSION \
    A_FLAVOR=${FLAVOR:-none} A_FLAVOR_ALT=${FLAVOR:+has-flavor} \
    A_NOTSET=${NOTSET:-fallback} A_NOTSET_ALT="[${NOTSET:+alt}]" \
    A_EMPTY="[${EMPTY:-empty-default}]" A_EMPTY_ALT="[${EMPTY:+alt}]" \
    A_STAGE="${STAGE_DEFAULT}" A_BRACES=${VERSION}-$VERSION-x
ENV LEGACY legacy value   with spaces
ENV Q1="double \"quoted\" $VERSION" Q2='single $VERSION' Q3=escaped\ space\ \$VERSION
ENV OLD=old
ENV OLD=new SEES_OLD=$OLD
LABEL "com.example.quoted"="spaced value" plain=1 \
      multi="line one \
line two" single='not $expanded' version=${VERSION}
LABEL description="A label's \"quotes\" and a ${FLAVOR}"
LABEL platform=$TARGETPLATFORM arch=${TARGETARCH} build.arch=$BUILDARCH global.unseen="[$ONLY_GLOBAL]"
MAINTAINER Jane Doe <jane@example.com>
WORKDIR /srv
WORKDIR app
WORKDIR $A_FLAVOR/x
CMD ["from", "base"]
USER 1000:1000
WORKDIR /owned/by/user
EXPOSE 80 443/tcp 53/udp
EXPOSE ${PORT:-8080}
VOLUME ["/data"]
VOLUME /cache /logs
STOPSIGNAL SIGUSR1
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 CMD /bin/busybox wget -q -O- http://localhost/ || exit 1
SHELL ["/bin/busybox", "sh", "-c"]

FROM base AS final
ARG VERSION=9.9.9
ARG FLAVOR
LABEL final.version=$VERSION final.flavor=$FLAVOR inherited.env=$A_VERSION stage.arg.gone="[$STAGE_DEFAULT]"
ENV PATH=/app/bin:$PATH
USER 0
ENTRYPOINT exec /bin/busybox echo $A_VERSION

FROM final AS unbuilt
RUN echo "a stage the target does not need is not built"
EOF

# --- labelkey: a label key with a space (docker and buildah take any string) ------------------------
cat >"$df/labelkey.Dockerfile" <<'EOF'
FROM scratch
LABEL "com.example.spaced key"="spaced value"
EOF

# --- stages: what needs the stage's files: COPY --from, names, ADD of an archive, links ---------------
python3 - "$ctx/pkg.tar.gz" <<'PY'
import io, sys, tarfile
with tarfile.open(sys.argv[1], "w:gz") as t:
    d = tarfile.TarInfo("pkg"); d.type = tarfile.DIRTYPE; d.mode = 0o750; d.uid = d.gid = 7
    d.mtime = 1600000000; t.addfile(d)
    f = tarfile.TarInfo("pkg/run.sh"); f.mode = 0o755; f.uid = 7; f.gid = 8; f.mtime = 1600000000
    body = b"#!/bin/sh\necho run\n"; f.size = len(body); t.addfile(f, io.BytesIO(body))
    l = tarfile.TarInfo("pkg/link"); l.type = tarfile.SYMTYPE; l.linkname = "/etc/passwd"
    l.mtime = 1600000000; t.addfile(l)
PY
cat >"$df/stages.Dockerfile" <<'EOF'
ARG BASE
FROM ${BASE} AS tools
COPY --chown=app:app app/bin /opt/tools/
COPY --chmod=0600 top.txt /opt/tools/top.txt

FROM ${BASE}
COPY --from=tools /opt/tools /opt/copied
COPY --from=tools /opt/tools/tool /usr/local/bin/
COPY --from=tools /etc/passwd /etc/passwd.copy
COPY --chown=app app/conf /srv/conf/
COPY files/a.txt /bin/a.txt
COPY files/b.txt /tmp/sub/
ADD pkg.tar.gz /opt/
USER app
WORKDIR /home/app/work
WORKDIR /tmp
EOF

# --- copy: COPY and ADD of local files on the base image -------------------------------------------
cat >"$df/copy.Dockerfile" <<'EOF'
ARG BASE
FROM ${BASE}
COPY top.txt /dst/
COPY files/*.txt /dst/txt/
COPY files/a.txt files/c.md /dst/multi/
COPY app /opt/app
COPY app/ /opt/app2/
COPY --chown=1000:1000 app /home/app/owned/
COPY --chown=1000:1000 top.txt /new/parents/chowned/
COPY --chmod=0750 perms/script.sh /usr/local/bin/
COPY --chmod=a+x,go-w,o-r perms/data.txt /usr/local/share/
COPY --chmod=0640 app /opt/app-chmod/
COPY links/ /links/
COPY srclink /dst/
COPY hard/ /hard/
COPY ign/ /ign/
COPY . /all/
ADD files/b.txt /dst/add/
ADD app /opt/added
WORKDIR /w
COPY files/a.txt rel/
COPY files/b.txt .
COPY top.txt /tmp/sub/
CMD ["echo", "${NOT_EXPANDED} in exec form"]
EOF

# --- scratch: FROM scratch, heredocs ------------------------------------------------------------
cat >"$df/scratch.Dockerfile" <<'EOF'
FROM scratch
ARG VERSION
COPY <<EOT /etc/motd
version ${VERSION} ${UNSET:-dflt}
  two spaces kept
EOT
COPY <<"EOT" /etc/raw
$VERSION ${UNSET:-stays} literal
EOT
COPY --chmod=0600 --chown=1000:1000 <<EOT /home/app/secret
secret
EOT
COPY files/a.txt /a/
WORKDIR rel/dir
COPY files/b.txt ./
ENTRYPOINT ["/bin/busybox"]
CMD echo "$HOME" ${VERSION}
EOF

# buildah_dockerfile NAME: buildah's copy of NAME.Dockerfile, with the lines
# buildah 1.28 cannot read replaced by what they mean (a line left out of
# this list makes buildah fail on it, not pass).
buildah_dockerfile() {
  python3 - "$df/$1.Dockerfile" "$df/$1.buildah.Dockerfile" <<'EOF' || fail "cannot translate $1.Dockerfile for buildah"
import sys
src, dst = sys.argv[1], sys.argv[2]
text = open(src).read()
subst = [
    # symbolic --chmod: 0644 with a+x,go-w,o-r is 0751
    ("COPY --chmod=a+x,go-w,o-r perms/data.txt", "COPY --chmod=0751 perms/data.txt"),
    # heredocs: files in the context with what they expand to
    ("COPY <<EOT /etc/motd\nversion ${VERSION} ${UNSET:-dflt}\n  two spaces kept\nEOT\n",
     "COPY heredoc/motd /etc/motd\n"),
    ('COPY <<"EOT" /etc/raw\n$VERSION ${UNSET:-stays} literal\nEOT\n', "COPY heredoc/raw /etc/raw\n"),
    ("COPY --chmod=0600 --chown=1000:1000 <<EOT /home/app/secret\nsecret\nEOT\n",
     "COPY --chmod=0600 --chown=1000:1000 heredoc/secret /home/app/secret\n"),
]
for old, new in subst:
    if old in text:
        text = text.replace(old, new)
open(dst, "w").write(text)
EOF
}

# --- the differences that are expected ---------------------------------------------------------
# Left (A) is buildah, right (B) is ocisync. Each rule pins both values.
cat >"$TMP/allow.txt" <<'EOF'
# buildah stamps every image with its own version; docker and ocisync do not.
config Labels[io.buildah.version] value A=1.28.2 B=<absent>   # buildah's own label
# A shell-form ENTRYPOINT runs under the SHELL in force (BuildKit's
# withShell); buildah 1.28 always uses /bin/sh -c.
config Entrypoint value 'A=["/bin/sh", "-c", "exec /bin/busybox echo $A_VERSION"]' 'B=["/bin/busybox", "sh", "-c", "exec /bin/busybox echo $A_VERSION"]'   # buildah ignores SHELL for ENTRYPOINT
# BuildKit replaces an existing variable where it is (addEnv); buildah 1.28
# removes it and appends it, so ENV PATH=... moves PATH to the end.
config Env(order) value 'A=A_VERSION A_FLAVOR A_FLAVOR_ALT A_NOTSET A_NOTSET_ALT A_EMPTY A_EMPTY_ALT A_STAGE A_BRACES LEGACY Q1 Q2 Q3 OLD SEES_OLD PATH' 'B=PATH A_VERSION A_FLAVOR A_FLAVOR_ALT A_NOTSET A_NOTSET_ALT A_EMPTY A_EMPTY_ALT A_STAGE A_BRACES LEGACY Q1 Q2 Q3 OLD SEES_OLD'   # buildah moves a replaced variable to the end
# buildah --timestamp sets every mtime; SOURCE_DATE_EPOCH clamps (only newer
# times are lowered, as BuildKit's rewrite-timestamp), so an old file keeps its time.
tree */old.txt mtime A=1700000000 B=978307200   # --timestamp sets, SOURCE_DATE_EPOCH clamps
# The same for what ADD unpacks from an archive whose entries are older (2020).
tree /opt/pkg mtime A=1700000000 B=1600000000   # --timestamp sets, SOURCE_DATE_EPOCH clamps
tree /opt/pkg/* mtime A=1700000000 B=1600000000   # --timestamp sets, SOURCE_DATE_EPOCH clamps
# COPY --chmod=0640 dir /new/: BuildKit since 2025 (fsutil 183e7fb, "copy:
# fix custom chmod for parent directories") creates /new with the --chmod
# mode, as ocisync does; buildah 1.28 (and BuildKit before) with 0755.
tree /opt/app-chmod mode A=0755 B=0640   # newer BuildKit applies --chmod to the created destination
EOF

# compare NAME [BUILD ARGS...]: builds df/NAME.Dockerfile with both and compares.
compare() {
  local name=$1 out="$TMP/out"
  shift
  mkdir -p "$out"
  buildah_dockerfile "$name"
  log "buildah bud $name"
  buildah_cmd bud --isolation chroot --tls-verify=false --timestamp "$SOURCE_DATE_EPOCH" --format docker \
    "$@" -t "golden/$name" -f "$df/$name.buildah.Dockerfile" "$ctx" >"$TMP/buildah-$name.log" 2>&1 ||
    fail "buildah bud $name failed: $(tail -n 5 "$TMP/buildah-$name.log")"
  buildah_cmd push --format v2s2 "golden/$name" "dir:$out/buildah-$name" >>"$TMP/buildah-$name.log" 2>&1 ||
    fail "buildah push $name failed: $(tail -n 5 "$TMP/buildah-$name.log")"
  run_ocisync build -f "$df/$name.Dockerfile" "$ctx" -p linux/amd64 "$@" --output "oci:$out/ocisync:$name"
  if [ "$OCISYNC_RC" != 0 ]; then
    # Go on with the other Dockerfiles, so that one run shows every difference.
    log "$name: ocisync build -f failed (exit $OCISYNC_RC): $(tail -n 5 "$OCISYNC_STDERR")"
    differ+=("$name")
    return 0
  fi
  pass "ocisync build -f $name.Dockerfile (exit 0)"
  local rc=0
  python3 "$TREECMP" --allow "$TMP/allow.txt" --names buildah,ocisync \
    "dir:$out/buildah-$name" "oci:$out/ocisync:$name" >"$TMP/cmp-$name.txt" 2>&1 || rc=$?
  case $rc in
    0)
      sed "s/^/[$TEST_NAME]   /" "$TMP/cmp-$name.txt"
      pass "$name: ocisync's image matches buildah's ($(tail -n 1 "$TMP/cmp-$name.txt" | sed 's/^treecmp: //'))"
      ;;
    1)
      sed "s/^/[$TEST_NAME]   /" "$TMP/cmp-$name.txt" >&2
      log "$name: ocisync's image differs from buildah's (lines marked DIFF above)"
      differ+=("$name")
      ;;
    *) fail "$name: treecmp could not compare: $(cat "$TMP/cmp-$name.txt")" ;;
  esac
}

differ=()
compare meta --build-arg "BASE=$BASE" --build-arg VERSION=2.0.0 --target final
compare copy --build-arg "BASE=$BASE"
compare stages --build-arg "BASE=$BASE"
compare scratch --build-arg VERSION=2.0.0
compare labelkey

# --- the comparison is not vacuous: a changed image fails it ------------------------------------
# buildah's copy image with one more layer (a mode, an owner and contents
# changed, a hardlink broken, a file added) and one Env changed: treecmp
# must report exactly these differences, and nothing else.
python3 - "$TMP/out/buildah-copy" "$TMP/tampered" <<'EOF' || fail "cannot make the tampered image"
import gzip, hashlib, io, json, os, shutil, sys, tarfile
src, out = sys.argv[1:]
man = json.load(open(os.path.join(src, "manifest.json")))
blob = lambda d: os.path.join(src, d.split(":", 1)[1])
os.makedirs(out)
def put(data):
    d = hashlib.sha256(data).hexdigest()
    open(os.path.join(out, d), "wb").write(data)
    return "sha256:" + d, len(data)
for l in man["layers"]:
    shutil.copy(blob(l["digest"]), out)
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
    def add(path, data, mode=0o644, uid=0):
        ti = tarfile.TarInfo(path)
        ti.size, ti.mode, ti.uid, ti.mtime = len(data), mode, uid, 1700000000
        tf.addfile(ti, io.BytesIO(data))
    add("dst/top.txt", b"top\n", mode=0o600)     # mode only
    add("dst/multi/a.txt", b"a\n", uid=1)         # owner only
    add("dst/txt/b.txt", b"B\n")                  # contents only
    add("hard/two", b"same\n")                    # no longer a hardlink
    add("dst/extra", b"x\n")                      # not in buildah's
ld, ls = put(gzip.compress(buf.getvalue(), mtime=0))
man["layers"].append({"mediaType": man["layers"][0]["mediaType"], "digest": ld, "size": ls})
cfg = json.load(open(blob(man["config"]["digest"])))
cfg["config"]["Env"] = ["PATH=/tampered" if e.startswith("PATH=") else e for e in cfg["config"]["Env"]]
cd, cs = put(json.dumps(cfg).encode())
man["config"] = dict(man["config"], digest=cd, size=cs)
open(os.path.join(out, "manifest.json"), "w").write(json.dumps(man))
EOF
rc=0
python3 "$TREECMP" --allow "$TMP/allow.txt" --names buildah,tampered \
  "dir:$TMP/out/buildah-copy" "dir:$TMP/tampered" >"$TMP/cmp-tampered.txt" 2>&1 || rc=$?
assert_eq "$rc" 1 "treecmp fails on a tampered image"
want=(
  "tree /dst/extra  exists: buildah <absent> | tampered file"
  "tree /dst/multi/a.txt  uid: buildah 0 | tampered 1"
  "tree /dst/top.txt  mode: buildah 0644 | tampered 0600"
  "tree /dst/txt/b.txt  sha256: buildah 0263829989b6fd954f72baaf2fc64bc2e2f01d692d4de72986ea808f6e99813f | tampered c0cde77fa8fef97d476c10aad3d2d54fcc2f336140d073651c2dcccf1e379fd6"
  "tree /hard/one  hardlinks: buildah /hard/sub/three /hard/two | tampered /hard/sub/three"
  "tree /hard/sub/three  hardlinks: buildah /hard/one /hard/two | tampered /hard/one"
  "tree /hard/two  hardlinks: buildah /hard/one /hard/sub/three | tampered <absent>"
  "config Env[PATH]  value: buildah /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin | tampered /tampered"
)
got=$(grep 'DIFF:' "$TMP/cmp-tampered.txt" | sed 's/^ *DIFF: *//')
[ "$got" = "$(printf '%s\n' "${want[@]}")" ] ||
  fail "treecmp on the tampered image: expected the ${#want[@]} differences made, got: $got"
pass "treecmp reports exactly the ${#want[@]} differences made: mode, owner, contents, hardlinks, a new file, Env"

[ ${#differ[@]} -eq 0 ] || fail "ocisync's image differs from buildah's for: ${differ[*]} (see above)"
done_ok
