#!/usr/bin/env bash
# ocisync build-push -f Dockerfile for two platforms against the real
# registry: build args (global and per stage), the automatic TARGET* args,
# ENV/LABEL/WORKDIR/USER/EXPOSE/VOLUME/STOPSIGNAL/HEALTHCHECK/ENTRYPOINT/CMD
# in the config as docker writes them (one history entry per instruction,
# empty_layer for metadata), COPY with --chmod, wildcards, a heredoc and a
# .dockerignore, FROM an earlier stage, --target; podman pulls each platform,
# `podman image mount` shows the files and the busybox entrypoint runs under
# chroot. Then what is refused, by name and line, with nothing pushed.
. "$(dirname "$0")/lib.sh"

registry_start reg
export SOURCE_DATE_EPOCH=1700000000

# --- the context ---------------------------------------------------------------------------------
ctx="$TMP/ctx"
mkdir -p "$ctx/bin" "$ctx/dist/amd64/lib" "$ctx/dist/arm64/lib" "$ctx/conf" "$ctx/links"
cp /bin/busybox "$ctx/bin/busybox"
chmod 0600 "$ctx/bin/busybox"
for a in amd64 arm64; do
  echo "server for $a" >"$ctx/dist/$a/server"
  echo "lib for $a" >"$ctx/dist/$a/lib/libx.so"
  echo "log" >"$ctx/dist/$a/debug.log"
  echo "secret" >"$ctx/dist/$a/secret.key"
done
echo "a: 1" >"$ctx/conf/a.yaml"
echo "b: 2" >"$ctx/conf/b.yaml"
echo "not yaml" >"$ctx/conf/c.txt"
echo "top log" >"$ctx/top.log"
mkdir -p "$ctx/src"
echo "nested log" >"$ctx/src/x.log"
ln -s /bin/busybox "$ctx/links/sh"
ln -s ../../outside "$ctx/links/up"
cat >"$ctx/.dockerignore" <<'EOF'
# anchored at the context root: top.log goes, src/x.log stays
*.log
dist/*/*.log
dist/*/secret*
EOF
cat >"$ctx/Dockerfile" <<'EOF'
# syntax=docker/dockerfile:1
ARG VERSION=0.0.0
ARG BASE=scratch

FROM ${BASE} AS common
ARG VERSION
ENV APP_HOME=/app \
    GREETING="hello from ocisync"
COPY --chmod=0755 bin/busybox /bin/busybox
COPY links/ /links/

FROM --platform=$BUILDPLATFORM scratch AS fetch
COPY conf/a.yaml /fetched.yaml

FROM common AS release
ARG VERSION
ARG TARGETARCH
LABEL org.opencontainers.image.version=$VERSION arch=${TARGETARCH} \
      quoted="two words"
WORKDIR $APP_HOME
COPY dist/${TARGETARCH}/ ./
COPY conf/*.yaml src/x.log /etc/app/
COPY <<EOT /etc/motd
version ${VERSION} for ${TARGETARCH}
EOT
COPY --from=fetch /fetched.yaml /etc/fetched.yaml
USER 65534:65534
EXPOSE 8080/tcp 9090
VOLUME ["/data"]
STOPSIGNAL SIGINT
HEALTHCHECK --interval=30s --retries=3 CMD ["/bin/busybox", "true"]
ENTRYPOINT ["/bin/busybox"]
CMD ["echo", "${GREETING} stays literal"]

FROM release AS debug
RUN echo this stage is not built
EOF

# --- two platforms, pushed under two tags ---------------------------------------------------------
run_ocisync build-push -f "$ctx/Dockerfile" "$ctx" -p linux/amd64 -p linux/arm64 \
  --build-arg VERSION=1.4.0 --target release \
  -t "$REG_ADDR/team/df:1.4.0" -t "$REG_ADDR/team/df:latest" --digest-file "$TMP/digest"
expect_success "build-push from a Dockerfile"
digest=$(cat "$TMP/digest")
assert_eq "$(skopeo_digest "$REG_ADDR/team/df:latest")" "$digest" "both tags name the index"
skopeo_raw "$REG_ADDR/team/df:1.4.0" "$TMP/index.json"
assert_eq "$(index_children "$TMP/index.json" | cut -d' ' -f2 | sort | tr '\n' ' ')" \
  "linux/amd64 linux/arm64 " "the index lists both platforms"

for plat in amd64 arm64; do
  skopeo inspect --config --raw --tls-verify=false --override-arch "$plat" \
    "docker://$REG_ADDR/team/df:1.4.0" >"$TMP/config-$plat.json" 2>"$TMP/skopeo.err" ||
    fail "skopeo cannot read the $plat config: $(cat "$TMP/skopeo.err")"
  c="$TMP/config-$plat.json"
  assert_eq "$(json_eval "$c" 'd["architecture"]')" "$plat" "$plat: architecture"
  assert_eq "$(json_eval "$c" 'd["config"]["Labels"]["org.opencontainers.image.version"]')" 1.4.0 \
    "$plat: a global ARG's --build-arg value reaches LABEL"
  assert_eq "$(json_eval "$c" 'd["config"]["Labels"]["arch"]')" "$plat" "$plat: TARGETARCH in LABEL"
  assert_eq "$(json_eval "$c" 'd["config"]["Labels"]["quoted"]')" "two words" "$plat: quoted LABEL value"
  assert_eq "$(json_eval "$c" '"|".join(d["config"]["Env"])')" \
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin|APP_HOME=/app|GREETING=hello from ocisync" \
    "$plat: scratch's default PATH, then ENV continued over two lines"
  assert_eq "$(json_eval "$c" 'd["config"]["WorkingDir"]')" /app "$plat: WORKDIR from \$APP_HOME"
  assert_eq "$(json_eval "$c" 'd["config"]["User"]')" 65534:65534 "$plat: USER"
  assert_eq "$(json_eval "$c" '" ".join(sorted(d["config"]["ExposedPorts"]))')" "8080/tcp 9090/tcp" "$plat: EXPOSE"
  assert_eq "$(json_eval "$c" '" ".join(d["config"]["Volumes"])')" /data "$plat: VOLUME"
  assert_eq "$(json_eval "$c" 'd["config"]["StopSignal"]')" SIGINT "$plat: STOPSIGNAL"
  assert_eq "$(json_eval "$c" '"|".join(d["config"]["Healthcheck"]["Test"])')" "CMD|/bin/busybox|true" \
    "$plat: HEALTHCHECK test"
  assert_eq "$(json_eval "$c" 'd["config"]["Healthcheck"]["Interval"]')" 30000000000 "$plat: HEALTHCHECK interval"
  assert_eq "$(json_eval "$c" '"|".join(d["config"]["Entrypoint"])')" /bin/busybox "$plat: ENTRYPOINT"
  assert_eq "$(json_eval "$c" '"|".join(d["config"]["Cmd"])')" 'echo|${GREETING} stays literal' \
    "$plat: CMD (exec form, not expanded)"
  # One history entry per instruction of both stages (FROM and the global ARGs have none).
  assert_eq "$(json_eval "$c" 'len(d["history"])')" 19 "$plat: one history entry per instruction"
  assert_eq "$(json_eval "$c" '" ".join("L" if not h.get("empty_layer") else "e" for h in d["history"])')" \
    "e e L L e e e e L L L L e e e e e e e" "$plat: layers where files changed, empty_layer elsewhere"
  assert_eq "$(json_eval "$c" 'd["history"][8]["created_by"]')" 'COPY dist/${TARGETARCH}/ ./' \
    "$plat: the history says the instruction as written"
  assert_eq "$(json_eval "$c" 'len(d["rootfs"]["diff_ids"])')" \
    "$(json_eval "$c" 'len([h for h in d["history"] if not h.get("empty_layer")])')" \
    "$plat: history lines up with the layers"
done

for plat in amd64 arm64; do
  ref="$REG_ADDR/team/df:1.4.0"
  podman_pull "$ref" --platform "linux/$plat"
  mnt=$(podman_cmd image mount "$ref") || fail "podman image mount failed"
  assert_eq "$(cat "$mnt/app/server")" "server for $plat" "linux/$plat: dist/\${TARGETARCH}/ copied into WORKDIR"
  assert_eq "$(cat "$mnt/app/lib/libx.so")" "lib for $plat" "linux/$plat: a directory's contents"
  [ ! -e "$mnt/app/debug.log" ] || fail "linux/$plat: .dockerignore'd debug.log was copied"
  [ ! -e "$mnt/app/secret.key" ] || fail "linux/$plat: .dockerignore'd secret.key was copied"
  pass "linux/$plat: .dockerignore kept debug.log and secret.key out"
  assert_eq "$(cd "$mnt/etc/app" && ls | tr '\n' ' ')" "a.yaml b.yaml x.log " \
    "linux/$plat: a wildcard source, and src/x.log that the anchored *.log does not exclude"
  assert_eq "$(cat "$mnt/etc/motd")" "version 1.4.0 for $plat" "linux/$plat: a heredoc, expanded"
  assert_eq "$(cat "$mnt/etc/fetched.yaml")" "a: 1" "linux/$plat: COPY --from a stage FROM --platform=\$BUILDPLATFORM"
  assert_eq "$(stat -c %a "$mnt/bin/busybox")" 755 "linux/$plat: --chmod=0755"
  assert_eq "$(readlink "$mnt/links/sh")" /bin/busybox "linux/$plat: a symlink kept as it is"
  assert_eq "$(readlink "$mnt/links/up")" ../../outside "linux/$plat: a climbing symlink kept as it is"
  if [ "$plat" = amd64 ]; then
    out=$(chroot "$mnt" /bin/busybox echo "hello from the dockerfile" 2>&1) || fail "chroot run failed: $out"
    assert_eq "$out" "hello from the dockerfile" "the image's busybox runs under chroot"
  fi
  podman_cmd image unmount "$ref" >/dev/null 2>&1 || true
  podman_cmd rmi -f "$ref" >/dev/null 2>&1 || true
done

# Reproducible: the same Dockerfile and context give the same index.
mark=$(registry_log_mark reg)
run_ocisync build-push -f "$ctx/Dockerfile" "$ctx" -p linux/amd64 -p linux/arm64 \
  --build-arg VERSION=1.4.0 --target release -t "$REG_ADDR/team/df-again:1" --digest-file "$TMP/digest2"
expect_success "the same build again"
assert_eq "$(cat "$TMP/digest2")" "$digest" "two builds of one Dockerfile give one digest"
# The build cache: every layer a hit, none compressed or uploaded again.
grep -qE ' ([0-9]+) new layers \(\1 from the cache' "$OCISYNC_STDOUT" ||
  fail "not every layer came from the cache: $(cat "$OCISYNC_STDOUT")"
pass "every layer of the second build came from the cache"
assert_eq "$(registry_log_count reg '^PATCH /v2/team/df-again/blobs/' "$mark")" 0 "no layer was uploaded again"
# One changed file: its layer alone is built again.
echo "server for amd64, changed" >"$ctx/dist/amd64/server"
run_ocisync build-push -f "$ctx/Dockerfile" "$ctx" -p linux/amd64 -p linux/arm64 \
  --build-arg VERSION=1.4.0 --target release -t "$REG_ADDR/team/df-again:2"
expect_success "a build with one changed file"
grep -qE ' ([0-9]+) new layers \(([0-9]+) from the cache' "$OCISYNC_STDOUT" || fail "no summary line"
n=$(sed -nE 's/.* ([0-9]+) new layers \(([0-9]+) from the cache.*/\1 \2/p' "$OCISYNC_STDOUT")
assert_eq "$(( ${n% *} - ${n#* } ))" 1 "exactly the changed layer was built again ($n)"
echo "server for amd64" >"$ctx/dist/amd64/server"

# --- on a base image, into an archive ------------------------------------------------------------
base=$(mkimage --out "$TMP/base" --platforms linux/amd64,linux/arm64 --layers 2 --layer-size 50000 --seed dfbase --tag 1 --cmd '["/bin/sh"]')
push_image "$TMP/base" "$REG_ADDR/lib/base:1"
cat >"$TMP/Dockerfile.base" <<EOF
FROM $REG_ADDR/lib/base:1
COPY conf/a.yaml /etc/app/a.yaml
ENV PATH=/app/bin:\$PATH
ENTRYPOINT ["/bin/true"]
EOF
run_ocisync build -f "$TMP/Dockerfile.base" "$ctx" -p linux/arm64 --output "oci-archive:$TMP/df.tar:1"
expect_success "build on a base image into an OCI archive"
skopeo inspect --raw "oci-archive:$TMP/df.tar:1" >/dev/null 2>&1 || fail "skopeo cannot read the archive"
skopeo inspect --config --raw --override-arch arm64 "oci-archive:$TMP/df.tar:1" >"$TMP/base-config.json" 2>/dev/null ||
  fail "skopeo cannot read the config"
assert_eq "$(json_eval "$TMP/base-config.json" 'len(d["rootfs"]["diff_ids"])')" 3 "the base's two layers and the COPY's"
assert_eq "$(json_eval "$TMP/base-config.json" 'd["config"]["Labels"]["org.ocisync.test.platform"]')" linux/arm64 \
  "the base's config is the starting point"
assert_eq "$(json_eval "$TMP/base-config.json" '"Cmd" in d["config"]')" false "ENTRYPOINT drops the base's Cmd"
assert_eq "$(json_eval "$TMP/base-config.json" '"|".join(d["config"]["Env"])')" \
  "PATH=/app/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" "\$PATH expands to the base's"

# --- the stage's files: a merged-/usr base, names, COPY --from --------------------------------------
# A base whose /bin is a link to usr/bin, /tmp 1777, /home/app 0750 root, and an /etc/passwd.
mkdir -p "$TMP/mbase/usr/bin" "$TMP/mbase/etc" "$TMP/mbase/tmp" "$TMP/mbase/home/app" "$TMP/mbase/opt/tool"
ln -s usr/bin "$TMP/mbase/bin"
chmod 1777 "$TMP/mbase/tmp"
chmod 0750 "$TMP/mbase/home/app"
cp /bin/busybox "$TMP/mbase/usr/bin/busybox"
printf 'root:x:0:0::/root:/bin/sh\napp:x:1234:2345::/home/app:/bin/sh\n' >"$TMP/mbase/etc/passwd"
printf 'root:x:0:\napp:x:2345:\nstaff:x:50:\n' >"$TMP/mbase/etc/group"
echo "tool v1" >"$TMP/mbase/opt/tool/VERSION"
run_ocisync build-push --platform "linux/amd64=$TMP/mbase:/" --tag "$REG_ADDR/lib/merged:1"
expect_success "a merged-/usr base"
# An archive ADD unpacks: owners and modes as the archive says.
python3 - "$ctx/pkg.tar.gz" <<'PY'
import io, sys, tarfile
with tarfile.open(sys.argv[1], "w:gz") as t:
    d = tarfile.TarInfo("pkg"); d.type = tarfile.DIRTYPE; d.mode = 0o750; d.uid = d.gid = 7
    t.addfile(d)
    f = tarfile.TarInfo("pkg/run.sh"); f.mode = 0o755; f.uid = 7; f.gid = 8; body = b"#!/bin/sh\necho run\n"
    f.size = len(body); t.addfile(f, io.BytesIO(body))
    l = tarfile.TarInfo("pkg/link"); l.type = tarfile.SYMTYPE; l.linkname = "/etc/passwd"
    t.addfile(l)
PY
cat >"$TMP/Dockerfile.stage" <<EOF
FROM $REG_ADDR/lib/merged:1 AS tools
COPY --chown=app bin/busybox /opt/tool/busybox

FROM $REG_ADDR/lib/merged:1
COPY --chmod=0755 bin/busybox /bin/
COPY conf/a.yaml /tmp/sub/a.yaml
COPY --chown=app:staff conf/ /home/app/conf/
COPY --exclude=*.txt --exclude=b.* conf/ /opt/conf-excl/
COPY --parents conf/a.yaml dist/amd64/lib /opt/parents/
COPY --parents ./dist/./amd64/server /opt/pivot/
COPY --parents --from=tools /opt/tool/busybox /opt/./tool/VERSI* /opt/pfrom/
COPY --from=tools /opt/tool /opt/copied
COPY --from=tools /opt/tool/* /opt/glob/
COPY --from=$REG_ADDR/lib/merged:1 /etc/passwd /etc/passwd.orig
ADD pkg.tar.gz /opt/
USER app
WORKDIR /home/app/work
EOF
run_ocisync build -f "$TMP/Dockerfile.stage" "$ctx" -p linux/amd64 --output "oci:$TMP/stage-oci:1"
expect_success "a build that reads its stages' files"
python3 "$OCISYNC_SOURCE_DIR/tests/tools/treecmp.py" --dump "oci:$TMP/stage-oci:1" >"$TMP/stage.list" 2>"$TMP/treecmp.err" ||
  fail "cannot list the image: $(cat "$TMP/treecmp.err")"
# entry PATH: "TYPE MODE UID:GID" of PATH in the built image (its layers over the base's).
entry() { awk -v p="$1" '$5 == p { print $1, $2, $3 }' "$TMP/stage.list"; }
assert_eq "$(entry /bin | cut -d' ' -f1)" symlink "/bin is still a link"
assert_eq "$(entry /bin/busybox)" "" "nothing was written under the /bin link"
assert_eq "$(entry /usr/bin/busybox)" "file 0755 0:0" "COPY to /bin/ landed in /usr/bin through the link"
assert_eq "$(entry /tmp)" "dir 1777 0:0" "/tmp keeps its mode (a parent of the COPY)"
assert_eq "$(entry /home/app)" "dir 0750 0:0" "an existing parent keeps its mode and owner"
assert_eq "$(entry /home/app/conf)" "dir 0755 1234:50" "a new destination directory: 0755, --chown by names"
assert_eq "$(entry /home/app/conf/a.yaml)" "file 0644 1234:50" "files: --chown by names"
assert_eq "$(entry /opt/copied/busybox)" "file 0600 1234:2345" \
  "COPY --from a stage keeps the owner the stage gave it (app, and its primary group)"
assert_eq "$(entry /opt/copied/VERSION)" "file 0644 0:0" "COPY --from a stage brings its base's files too"
assert_eq "$(entry /etc/passwd.orig)" "file 0644 0:0" "COPY --from an image"
assert_eq "$(awk '$5 ~ /^\/opt\/conf-excl\// { print $5 }' "$TMP/stage.list" | tr '\n' ' ')" \
  "/opt/conf-excl/a.yaml " "COPY --exclude leaves out what its patterns match"
assert_eq "$(awk '$1 == "file" && $5 ~ /^\/opt\/(parents|pivot)\// { print $5 }' "$TMP/stage.list" | sort | tr '\n' ' ')" \
  "/opt/parents/conf/a.yaml /opt/parents/dist/amd64/lib/libx.so /opt/pivot/amd64/server " \
  "COPY --parents keeps the sources' directories (after a /./ pivot, what follows it)"
assert_eq "$(awk '$1 == "file" && $5 ~ /^\/opt\/pfrom\// { print $5 }' "$TMP/stage.list" | sort | tr '\n' ' ')" \
  "/opt/pfrom/opt/tool/busybox /opt/pfrom/tool/VERSION " \
  "COPY --parents --from keeps the stage's directories (after a /./ pivot, what follows it)"
assert_eq "$(awk '$5 ~ /^\/opt\/glob\// { print $5 }' "$TMP/stage.list" | tr '\n' ' ')" \
  "/opt/glob/VERSION /opt/glob/busybox " "COPY --from with a wildcard"
assert_eq "$(entry /home/app/work)" "dir 0755 1234:2345" "WORKDIR after USER app: owned by app"
assert_eq "$(entry /opt/pkg)" "dir 0750 7:7" "ADD unpacks an archive: a directory as the archive has it"
assert_eq "$(entry /opt/pkg/run.sh)" "file 0755 7:8" "ADD unpacks an archive: a file with its owner"
assert_eq "$(entry /opt/pkg/link | cut -d' ' -f1)" symlink "ADD unpacks an archive: a link stays a link"

# --- ADD of a URL: downloaded (no credentials), 0600 unless --chmod, --checksum verified ------------
mkdir -p "$TMP/www"
echo "a remote file" >"$TMP/www/tool.txt"
touch -d @1600000000 "$TMP/www/tool.txt"
www_port=$(free_port)
python3 -m http.server --bind 127.0.0.1 "$www_port" --directory "$TMP/www" >"$TMP/www.log" 2>&1 &
www_pid=$!
for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$www_port/tool.txt" >/dev/null && break; sleep 0.1; done
sum=$(sha256sum "$TMP/www/tool.txt" | cut -d' ' -f1)
cat >"$TMP/Dockerfile.url" <<EOF
FROM scratch
ADD http://127.0.0.1:$www_port/tool.txt /opt/
ADD --checksum=sha256:$sum http://127.0.0.1:$www_port/tool.txt /opt/checked.txt
ADD --chmod=0644 http://127.0.0.1:$www_port/tool.txt /opt/named
EOF
run_ocisync build -f "$TMP/Dockerfile.url" "$ctx" -p linux/amd64 --output "oci:$TMP/url-oci:1"
expect_success "ADD of a URL"
python3 "$OCISYNC_SOURCE_DIR/tests/tools/treecmp.py" --dump "oci:$TMP/url-oci:1" >"$TMP/url.list" ||
  fail "cannot list the image"
uentry() { awk -v p="$1" '$5 == p { print $1, $2, $3, $4 }' "$TMP/url.list"; }
assert_eq "$(uentry /opt/tool.txt)" "file 0600 0:0 1600000000" "ADD URL into a directory: named after the URL, 0600, Last-Modified"
assert_eq "$(uentry /opt/checked.txt)" "file 0600 0:0 1600000000" "ADD --checksum that matches"
assert_eq "$(uentry /opt/named | cut -d' ' -f1-3)" "file 0644 0:0" "ADD URL --chmod"
assert_eq "$(grep -c 'GET /tool.txt' "$TMP/www.log")" 2 "each URL is downloaded once a build (the curl probe, then one GET)"
printf 'FROM scratch\nADD --checksum=sha256:%064d http://127.0.0.1:%s/tool.txt /x\n' 0 "$www_port" >"$TMP/Dockerfile.badsum"
run_ocisync build -f "$TMP/Dockerfile.badsum" "$ctx" -p linux/amd64 --output "oci:$TMP/badsum-oci:1"
expect_failure "ADD --checksum that does not match"
assert_contains "$OCISYNC_STDERR" "line 2" "the error names the line"
# The same URL twice: the second ADD's --checksum is held to the first download.
printf 'FROM scratch\nADD http://127.0.0.1:%s/tool.txt /a\nADD --checksum=sha256:%064d http://127.0.0.1:%s/tool.txt /b\n' \
  "$www_port" 0 "$www_port" >"$TMP/Dockerfile.badsum2"
run_ocisync build -f "$TMP/Dockerfile.badsum2" "$ctx" -p linux/amd64 --output "oci:$TMP/badsum2-oci:1"
expect_failure "ADD --checksum against a URL this build downloaded already"
assert_contains "$OCISYNC_STDERR" "line 3" "the error names the line"
[ ! -e "$TMP/badsum-oci" ] || [ -z "$(ls "$TMP/badsum-oci")" ] || fail "a layout was written for a failed build"
stop_pid "$www_pid"

# --- refused, by name and line, with nothing pushed -----------------------------------------------
mark=$(registry_log_mark reg)
printf 'FROM scratch\nCOPY bin/busybox /bin/\nRUN echo hi\n' >"$TMP/Dockerfile.run"
run_ocisync build-push -f "$TMP/Dockerfile.run" "$ctx" -t "$REG_ADDR/team/bad:1"
expect_failure "a RUN whose shell the image lacks"
assert_contains "$OCISYNC_STDERR" "line 3: RUN" "the error names the line and RUN"
assert_contains "$OCISYNC_STDERR" '"/bin/sh"' "the error names the missing shell"
printf 'FROM scratch\nFROBNICATE x\n' >"$TMP/Dockerfile.bad"
run_ocisync build-push -f "$TMP/Dockerfile.bad" "$ctx" -t "$REG_ADDR/team/bad:1"
expect_failure "an unknown instruction"
assert_contains "$OCISYNC_STDERR" "line 2" "the error names the line"
printf 'FROM scratch\nCOPY nosuch /x\n' >"$TMP/Dockerfile.missing"
run_ocisync build-push -f "$TMP/Dockerfile.missing" "$ctx" -t "$REG_ADDR/team/bad:1"
expect_failure "a source not in the context"
assert_contains "$OCISYNC_STDERR" "nosuch" "the error names the source"
printf 'FROM scratch\nCOPY top.log /x\n' >"$TMP/Dockerfile.ignored"
run_ocisync build-push -f "$TMP/Dockerfile.ignored" "$ctx" -t "$REG_ADDR/team/bad:1"
expect_failure "a source .dockerignore excludes"
printf 'FROM scratch\nCOPY ../x /x\n' >"$TMP/Dockerfile.escape"
run_ocisync build-push -f "$TMP/Dockerfile.escape" "$ctx" -t "$REG_ADDR/team/bad:1"
expect_failure "a source outside the context"
assert_contains "$OCISYNC_STDERR" "outside the build context" "the error says why"
run_ocisync build-push -f "$ctx/Dockerfile" "$ctx" --target nosuch -t "$REG_ADDR/team/bad:1"
expect_failure "--target naming no stage"
assert_contains "$OCISYNC_STDERR" "nosuch" "the error names the target"
printf 'FROM scratch\nCOPY --from=nosuchstage /a /b\n' >"$TMP/Dockerfile.from"
run_ocisync build-push -f "$TMP/Dockerfile.from" "$ctx" -t "$REG_ADDR/team/bad:1"
expect_failure "COPY --from naming neither a stage nor an image that exists"
assert_contains "$OCISYNC_STDERR" "line 2" "the error names the line"
printf 'FROM scratch\nCOPY --chown=nobody bin/busybox /b\n' >"$TMP/Dockerfile.chown"
run_ocisync build-push -f "$TMP/Dockerfile.chown" "$ctx" -t "$REG_ADDR/team/bad:1"
expect_failure "--chown naming a user the stage's /etc/passwd lacks"
assert_contains "$OCISYNC_STDERR" "nobody" "the error names the user"
assert_eq "$(registry_log_count reg '^(PUT|POST|PATCH) ' "$mark")" 0 "nothing was pushed for the refused builds"

done_ok
