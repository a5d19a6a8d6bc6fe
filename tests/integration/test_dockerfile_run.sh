#!/usr/bin/env bash
# Dockerfile RUN against the real registry, on a busybox base: what a RUN
# changes becomes a layer (files made, changed, deleted: whiteouts; a
# directory deleted and made again: opaque; a rename, a hardlink, a setuid
# bit, a fifo), USER and WORKDIR apply, secrets are readable in the RUN and
# nowhere else (no layer, no cache entry, no history), cache mounts persist,
# --network=none has only lo, bind mounts read the context, heredocs run;
# the command is PID 1 of its own PID namespace and writes nothing outside
# its root. podman pulls the image, `podman image mount` shows the tree and
# a command of it runs under chroot. The build cache keys RUN by what ran on
# what: a second build runs nothing, a changed file runs its step and those
# after it again. A failing RUN reports its status and last lines, pushes
# nothing and leaves nothing behind. Under qemu, an arm64 stage runs
# `uname -m` (skipped, saying why, without qemu-user-static or an arm64
# busybox).
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || fail "this test runs as root (podman image mount, chroot; the rootless case becomes nobody itself)"
registry_start reg
REG_ADDR=$(registry_addr reg)
export SOURCE_DATE_EPOCH=1700000000
export TMPDIR="$TMP/tmpdir"
mkdir -p "$TMPDIR"

# --- a busybox base --------------------------------------------------------------------------------
applets="sh ls cat echo mkdir rm id uname touch chmod chown ln wc grep mv cp tr test mkfifo stat head"
make_base() { # DIR BUSYBOX
  mkdir -p "$1/bin" "$1/etc" "$1/tmp" "$1/srv/old/deep" "$1/var/keep" "$1/root"
  cp "$2" "$1/bin/busybox"
  for a in $applets; do ln -s busybox "$1/bin/$a"; done
  printf 'root:x:0:0:root:/root:/bin/sh\n' >"$1/etc/passwd"
  printf 'root:x:0:\n' >"$1/etc/group"
  echo "ID=busybox" >"$1/etc/os-release"
  echo "old" >"$1/srv/old/deep/file"
  echo "keep" >"$1/var/keep/file"
  chmod 1777 "$1/tmp"
}
make_base "$TMP/base" /bin/busybox
run_ocisync build-push --platform "linux/amd64=$TMP/base:/" -t "$REG_ADDR/lib/bb:1"
expect_success "a busybox base"

# --- the context -----------------------------------------------------------------------------------
ctx="$TMP/ctx"
mkdir -p "$ctx/ctxdir"
echo "conf v1" >"$ctx/conf.txt"
echo "bound from the context" >"$ctx/ctxdir/file"
echo "s3cr3t-$$-MARKER" >"$TMP/secret.txt"
cat >"$ctx/Dockerfile" <<EOF
FROM $REG_ADDR/lib/bb:1 AS build
RUN mkdir -p /out && echo "built on \$(uname -m)" > /out/app && echo building

FROM $REG_ADDR/lib/bb:1
ARG GREETING=hi
COPY conf.txt /etc/conf.txt
RUN echo "\$GREETING from run" > /etc/motd \\
 && echo changed >> /etc/conf.txt \\
 && rm /etc/os-release \\
 && rm -rf /srv/old && mkdir /srv/old && echo new > /srv/old/fresh \\
 && mv /var/keep /var/moved \\
 && ln /bin/busybox /bin/hardlinked \\
 && cp /bin/busybox /bin/suid && chmod 4755 /bin/suid \\
 && mkfifo /tmp/fifo \\
 && echo outside > /../../outside-$$
RUN echo 'app:x:1234:1234::/home/app:/bin/sh' >> /etc/passwd && echo 'app:x:1234:' >> /etc/group \
 && mkdir -p /home/app && chown app:app /home/app
USER app
WORKDIR /home/app/work
RUN id -u > uid.txt && echo "\$HOME" > home.txt
USER root
RUN --mount=type=secret,id=tok,required=true grep -c MARKER /run/secrets/tok > /secret-lines
RUN --mount=type=secret,id=envtok,target=/tmp/envtok,required=true grep -c ENVMARK /tmp/envtok > /env-secret-lines
RUN --mount=type=cache,target=/cache n=\$(cat /cache/n 2>/dev/null || echo 0); echo \$((n+1)) > /cache/n; cp /cache/n /cache-count
RUN --network=none grep -c : /proc/net/dev > /net-ifaces
RUN --mount=type=bind,source=ctxdir,target=/mnt/ctx cat /mnt/ctx/file > /from-bind
RUN --mount=type=bind,from=build,source=/out,target=/mnt/out cat /mnt/out/app > /from-stage-bind
RUN --mount=type=tmpfs,target=/scratch echo t > /scratch/t && cat /scratch/t > /from-tmpfs
RUN <<EOT
echo heredoc one > /heredoc
echo heredoc two >> /heredoc
EOT
RUN n=\$(ls /proc | grep -c '^[0-9]'); if [ "\$n" -le 8 ]; then echo few; else echo "\$n"; fi > /pids && echo \$\$ > /pid
RUN ["/bin/sh", "-c", "echo exec form > /exec"]
COPY --from=build /out/app /usr/local/bin/app
CMD ["/bin/sh"]
EOF

# --- the build -------------------------------------------------------------------------------------
export XDG_CACHE_HOME="$TMP/cache"
export RUN_TEST_SECRET="env-s3cr3t-$$-ENVMARK"
run_ocisync build-push -f "$ctx/Dockerfile" "$ctx" -t "$REG_ADDR/team/run:1" \
  --secret "id=tok,src=$TMP/secret.txt" --secret "id=envtok,env=RUN_TEST_SECRET" --digest-file "$TMP/d1"
expect_success "a Dockerfile with RUN"
assert_contains "$OCISYNC_STDERR" "[linux/amd64 build, line 2] building" \
  "RUN output streams with the platform, stage and line"
[ ! -e "/outside-$$" ] || { rm -f "/outside-$$"; fail "a RUN wrote outside its root"; }
pass "a RUN cannot write outside its root"

ref="$REG_ADDR/team/run:1"
podman_pull "$ref"
mnt=$(podman_cmd image mount "$ref") || fail "podman image mount failed"
assert_eq "$(cat "$mnt/etc/motd")" "hi from run" "a file the RUN made, with an ARG in its environment"
assert_eq "$(tail -n 1 "$mnt/etc/conf.txt")" "changed" "a file of an earlier COPY, changed by the RUN"
[ ! -e "$mnt/etc/os-release" ] || fail "a file the RUN deleted is still there"
pass "a file the RUN deleted is gone (a whiteout)"
[ ! -e "$mnt/srv/old/deep" ] && [ "$(cat "$mnt/srv/old/fresh")" = new ] ||
  fail "a directory deleted and made again shows its old content"
pass "a directory deleted and made again is opaque"
[ ! -e "$mnt/var/keep" ] && [ "$(cat "$mnt/var/moved/file")" = keep ] || fail "a renamed directory"
pass "a renamed directory"
assert_eq "$(stat -c %i "$mnt/bin/hardlinked")" "$(stat -c %i "$mnt/bin/busybox")" \
  "a hardlink to a lower layer's file is a hardlink"
assert_eq "$(stat -c %a "$mnt/bin/suid")" 4755 "a setuid bit"
assert_eq "$(stat -c %F "$mnt/tmp/fifo")" "fifo" "a fifo"
assert_eq "$(cat "$mnt/home/app/work/uid.txt")" 1234 "USER app: the RUN ran as the user an earlier RUN added"
assert_eq "$(cat "$mnt/home/app/work/home.txt")" /home/app "HOME from the user's /etc/passwd entry"
assert_eq "$(stat -c %u "$mnt/home/app/work/uid.txt")" 1234 "what the user wrote is the user's"
assert_eq "$(cat "$mnt/secret-lines")" 1 "the secret was readable in its RUN"
assert_eq "$(cat "$mnt/env-secret-lines")" 1 "a secret from an environment variable, at its own target"
[ ! -e "$mnt/tmp/envtok" ] || fail "the env secret's mount point is in the image"
[ ! -e "$mnt/run/secrets/tok" ] || fail "the secret's mount point is in the image"
pass "the secret's mount point is not in the image"
assert_eq "$(cat "$mnt/cache-count")" 1 "a cache mount, first use"
[ ! -e "$mnt/cache/n" ] || fail "the cache mount's content is in the image"
pass "the cache mount's content is not in the image"
assert_eq "$(cat "$mnt/net-ifaces")" 1 "--network=none: only lo"
assert_eq "$(cat "$mnt/from-bind")" "bound from the context" "a bind mount of the context"
assert_eq "$(cat "$mnt/from-stage-bind")" "built on x86_64" "a bind mount of another stage's files"
[ ! -e "$mnt/mnt/out" ] || fail "a bind mount's target is in the image"
assert_eq "$(cat "$mnt/from-tmpfs")" t "a tmpfs mount"
[ ! -e "$mnt/scratch" ] || fail "what was written to a tmpfs mount is in the image"
assert_eq "$(cat "$mnt/heredoc" | tr '\n' '|')" "heredoc one|heredoc two|" "a heredoc RUN"
assert_eq "$(cat "$mnt/pids")" few "the RUN saw only its own few processes (its own PID namespace)"
assert_eq "$(cat "$mnt/pid")" 1 "the RUN's shell is PID 1 of its own PID namespace"
assert_eq "$(cat "$mnt/exec")" "exec form" "the exec form"
assert_eq "$(cat "$mnt/usr/local/bin/app")" "built on x86_64" "COPY --from a stage that ran a RUN"
out=$(chroot "$mnt" /bin/sh -c 'cat /etc/motd' 2>&1) || fail "chroot run failed: $out"
assert_eq "$out" "hi from run" "the image runs under chroot"
podman_cmd image unmount "$ref" >/dev/null 2>&1 || true

# The secret is in no layer, no config (history), no cache entry.
rm -rf "$TMP/img"
skopeo copy -q --src-tls-verify=false "docker://$ref" "oci:$TMP/img:x" || fail "skopeo copy failed"
for b in "$TMP/img/blobs/sha256/"*; do
  if (gzip -dc "$b" 2>/dev/null || cat "$b") | grep -aqF -e "s3cr3t-$$-MARKER" -e "$RUN_TEST_SECRET"; then
    fail "the secret is in blob $(basename "$b")"
  fi
done
pass "the secret is in no layer, manifest or config"
if grep -raqF -e "s3cr3t-$$-MARKER" -e "$RUN_TEST_SECRET" "$XDG_CACHE_HOME"; then fail "a secret is in the build cache"; fi
pass "the secret is in no build cache entry"
# What the RUN layers hold: whiteouts and an opaque directory, as docker writes them.
# (A blob that is not a layer, the config or the manifest, lists nothing; the last one too.)
tar_all=$(for b in "$TMP/img/blobs/sha256/"*; do (gzip -dc "$b" 2>/dev/null | tar -t 2>/dev/null) || true; done)
echo "$tar_all" | grep -qx 'etc/.wh.os-release' || fail "no whiteout for /etc/os-release"
# With overlayfs a directory deleted and made again is opaque; compared before and after (no
# overlayfs), it is the same directory with its old entries whited out: the same tree.
echo "$tar_all" | grep -qx 'srv/old/.wh..wh..opq' || echo "$tar_all" | grep -qx 'srv/old/.wh.deep' ||
  fail "no opaque marker or whiteout for /srv/old's old content"
echo "$tar_all" | grep -q '^proc/\|^dev/\|^run/secrets' && fail "mount points of the sandbox are in a layer"
pass "whiteouts and an opaque marker in the layers; no mount point of the sandbox"

# Without overlayfs (forced here), RUN works on a copy of the stage's files compared before and
# after: the same image tree, every path and field as treecmp.py compares them.
if [ "${OCISYNC_RUN_OVERLAY:-}" != 0 ]; then
  OCISYNC_RUN_OVERLAY=0 run_ocisync build-push -f "$ctx/Dockerfile" "$ctx" -t "$REG_ADDR/team/run:nooverlay" \
    --secret "id=tok,src=$TMP/secret.txt" --secret "id=envtok,env=RUN_TEST_SECRET" --no-cache
  expect_success "the build without overlayfs"
  rm -rf "$TMP/img-no"
  skopeo copy -q --src-tls-verify=false "docker://$REG_ADDR/team/run:nooverlay" "oci:$TMP/img-no:x" ||
    fail "skopeo copy failed"
  # The cache mount ran once more (2, not 1), and the config's created time is the same.
  printf 'tree /cache-count * # the cache mount counts this build too\n' >"$TMP/allow-no"
  python3 "$OCISYNC_SOURCE_DIR/tests/tools/treecmp.py" --allow "$TMP/allow-no" --names overlay,copy \
    "oci:$TMP/img:x" "oci:$TMP/img-no:x" >"$TMP/treecmp-no.out" 2>&1 ||
    fail "the image built without overlayfs differs: $(head -n 20 "$TMP/treecmp-no.out")"
  pass "without overlayfs, RUN gives the same image tree"
fi

# A RUN's layer holds what the command did and nothing of the sandbox: not
# the mount points (/etc/hosts, /etc/resolv.conf, a bind mount's target),
# nor the base's directories they were made in (/etc, /srv) with a new mtime.
printf 'FROM %s\nRUN --mount=type=bind,source=ctxdir,target=/srv/ctx echo x > /x\n' "$REG_ADDR/lib/bb:1" \
  >"$TMP/Dockerfile.stubs"
run_ocisync build -f "$TMP/Dockerfile.stubs" "$ctx" --output "oci:$TMP/stubs:1"
expect_success "a RUN with a bind mount"
top=$(python3 - "$TMP/stubs" <<'PY'
import json, os, sys
blob = lambda d: json.load(open(os.path.join(sys.argv[1], "blobs", *d.split(":", 1))))
m = json.load(open(os.path.join(sys.argv[1], "index.json")))
while "manifests" in m:  # index.json, then the build's index
    m = blob(m["manifests"][0]["digest"])
print(m["layers"][-1]["digest"])
PY
)
assert_eq "$(gzip -dc "$TMP/stubs/blobs/${top/://}" | tar -t | tr '\n' ' ')" "x " \
  "the RUN's layer holds only the file it made"

# --- the cache: nothing runs again; a changed file runs its step and the later ones -----------------
run_ocisync build-push -f "$ctx/Dockerfile" "$ctx" -t "$REG_ADDR/team/run:2" \
  --secret "id=tok,src=$TMP/secret.txt" --secret "id=envtok,env=RUN_TEST_SECRET" --digest-file "$TMP/d2"
expect_success "the same build again"
assert_eq "$(cat "$TMP/d2")" "$(cat "$TMP/d1")" "the same image (SOURCE_DATE_EPOCH)"
grep -qE ' ([0-9]+) new layers \(\1 from the cache' "$OCISYNC_STDOUT" ||
  fail "not every layer came from the cache: $(cat "$OCISYNC_STDOUT")"
[ "$(grep -c ': cached$' "$OCISYNC_STDERR")" -ge 10 ] || fail "RUNs ran again: $(cat "$OCISYNC_STDERR")"
pass "no RUN ran again"
echo "conf v2" >"$ctx/conf.txt"
run_ocisync build-push -f "$ctx/Dockerfile" "$ctx" -t "$REG_ADDR/team/run:3" \
  --secret "id=tok,src=$TMP/secret.txt" --secret "id=envtok,env=RUN_TEST_SECRET"
expect_success "a build with conf.txt changed"
assert_eq "$(grep -c ': cached$' "$OCISYNC_STDERR")" 1 \
  "only the build stage's RUN (before the COPY of conf.txt) came from the cache"
echo "conf v1" >"$ctx/conf.txt"
# --no-cache runs everything again; the cache mount keeps what the last run left.
run_ocisync build-push -f "$ctx/Dockerfile" "$ctx" -t "$REG_ADDR/team/run:4" \
  --secret "id=tok,src=$TMP/secret.txt" --secret "id=envtok,env=RUN_TEST_SECRET" --no-cache
expect_success "--no-cache"
podman_pull "$REG_ADDR/team/run:4"
mnt=$(podman_cmd image mount "$REG_ADDR/team/run:4") || fail "podman image mount failed"
# Runs of the cache mount's RUN: the first build, conf.txt changed, --no-cache (and no overlayfs).
expect_count=3
[ "${OCISYNC_RUN_OVERLAY:-}" = 0 ] || expect_count=4
assert_eq "$(cat "$mnt/cache-count")" "$expect_count" "the cache mount persists between builds"
podman_cmd image unmount "$REG_ADDR/team/run:4" >/dev/null 2>&1 || true

# What RUN keeps in the cache (extracted layers, RUN results) is trimmed like the layers.
[ -n "$(ls "$XDG_CACHE_HOME/ocisync/rootfs")" ] && [ -n "$(ls "$XDG_CACHE_HOME/ocisync/runs")" ] ||
  fail "no extracted layer or RUN result was kept in the cache"
run_ocisync build-push -f "$ctx/Dockerfile" "$ctx" -t "$REG_ADDR/team/run:4b" \
  --secret "id=tok,src=$TMP/secret.txt" --secret "id=envtok,env=RUN_TEST_SECRET" --cache-max 1K
expect_success "a build with a tiny --cache-max"
assert_eq "$(find "$XDG_CACHE_HOME/ocisync/rootfs" "$XDG_CACHE_HOME/ocisync/runs" -mindepth 1 -maxdepth 1 -type d | wc -l)" 0 \
  "extracted layers and RUN results were evicted with the blobs"
run_ocisync build-push -f "$ctx/Dockerfile" "$ctx" -t "$REG_ADDR/team/run:4c" \
  --secret "id=tok,src=$TMP/secret.txt" --secret "id=envtok,env=RUN_TEST_SECRET"
expect_success "the build after the trim"
assert_eq "$(grep -c ': cached$' "$OCISYNC_STDERR")" 0 "every RUN ran again"

# --- errors ----------------------------------------------------------------------------------------
cat >"$TMP/Dockerfile.fail" <<EOF
FROM $REG_ADDR/lib/bb:1
COPY conf.txt /etc/conf.txt
RUN echo line-before-the-failure && exit 3
EOF
run_ocisync build-push -f "$TMP/Dockerfile.fail" "$ctx" -t "$REG_ADDR/team/fail:1"
expect_failure "a failing RUN"
assert_eq "$OCISYNC_RC" 1 "exit 1"
assert_contains "$OCISYNC_STDERR" "line 3: RUN: the command exited with status 3" "the error names the line and status"
assert_contains "$OCISYNC_STDERR" "    line-before-the-failure" "the error repeats the last lines"
assert_eq "$(tag_status "$REG_ADDR" team/fail 1)" 404 "nothing was pushed"
assert_eq "$(find "$TMPDIR" -mindepth 1 | wc -l)" 0 "nothing was left in TMPDIR"
run_ocisync build-push -f "$ctx/Dockerfile" "$ctx" -t "$REG_ADDR/team/run:5" --no-cache
expect_failure "a required secret not given"
assert_contains "$OCISYNC_STDERR" "needs secret tok" "the error names the secret"
printf 'FROM %s\nRUN --mount=type=ssh true\n' "$REG_ADDR/lib/bb:1" >"$TMP/Dockerfile.ssh"
run_ocisync build-push -f "$TMP/Dockerfile.ssh" "$ctx" -t "$REG_ADDR/team/fail:2"
expect_failure "an ssh mount"
assert_contains "$OCISYNC_STDERR" "line 2: --mount=type=ssh is not supported" "refused by name, with the line"

# --- rootless: a build as nobody, in a user namespace of its own ------------------------------------
rl="$TMP/rootless"
if ! command -v newuidmap >/dev/null || ! command -v setpriv >/dev/null || ! command -v unshare >/dev/null; then
  log "SKIP rootless: newuidmap, setpriv or unshare is missing (Debian's uidmap and util-linux)"
elif ! setpriv --reuid=65534 --regid=65534 --clear-groups test -x "$OCISYNC_BIN"; then
  log "SKIP rootless: nobody cannot run $OCISYNC_BIN"
else
  mkdir -p "$rl/cache" "$rl/tmp" "$rl/ctx"
  chmod 755 "$TMP"
  cp "$ctx/conf.txt" "$rl/ctx/"
  {
    echo "FROM $REG_ADDR/lib/bb:1"
    echo "COPY conf.txt /etc/conf.txt"
    echo "RUN echo 'app:x:1234:1234::/home/app:/bin/sh' >> /etc/passwd && mkdir -p /home/app \\"
    echo ' && chown 1234:1234 /home/app && rm /etc/os-release && echo "ns uid $(id -u)"'
    echo "USER app"
    echo "RUN id -u > /home/app/uid && touch /home/app/mine"
  } >"$rl/ctx/Dockerfile"
  # nobody's subordinate ids, seen only in this test's mount namespace (the host's files stay).
  echo "nobody:300000:65536" >"$rl/subids"
  {
    echo '#!/bin/sh'
    echo "exec unshare -m sh -c 'mount --bind \"$rl/subids\" /etc/subuid && mount --bind \"$rl/subids\" /etc/subgid &&"
    echo "  exec setpriv --reuid=65534 --regid=65534 --clear-groups env HOME=\"$rl\" XDG_CACHE_HOME=\"$rl/cache\" \\"
    echo "  TMPDIR=\"$rl/tmp\" \"$OCISYNC_BIN\" \"\$@\"' ocisync \"\$@\""
  } >"$rl/ocisync"
  chmod 755 "$rl/ocisync"
  chown -R 65534:65534 "$rl"
  saved_bin=$OCISYNC_BIN
  OCISYNC_BIN="$rl/ocisync"
  run_ocisync build-push -f "$rl/ctx/Dockerfile" "$rl/ctx" -t "$REG_ADDR/team/rootless:1"
  OCISYNC_BIN=$saved_bin
  expect_success "a build with RUN as nobody"
  assert_contains "$OCISYNC_STDERR" "ns uid 0" "the RUN ran as root of nobody's user namespace"
  podman_pull "$REG_ADDR/team/rootless:1"
  mnt=$(podman_cmd image mount "$REG_ADDR/team/rootless:1") || fail "podman image mount failed"
  assert_eq "$(cat "$mnt/home/app/uid")" 1234 "USER app in a rootless build"
  assert_eq "$(stat -c %u:%g "$mnt/home/app/mine")" 1234:1234 "owners in the layer are the image's, not the host's"
  [ ! -e "$mnt/etc/os-release" ] || fail "a rootless RUN's delete is not in the image"
  pass "a rootless RUN's delete is a whiteout"
  podman_cmd image unmount "$REG_ADDR/team/rootless:1" >/dev/null 2>&1 || true
fi

# --- another architecture, under qemu ---------------------------------------------------------------
arm_bb=""
if [ ! -x /usr/bin/qemu-aarch64-static ]; then
  log "SKIP arm64 RUN: /usr/bin/qemu-aarch64-static is missing (Debian's qemu-user-static)"
else
  arm_bb=$(bash "$OCISYNC_SOURCE_DIR/tests/tools/arm64-busybox.sh" 2>"$TMP/arm64.err") || {
    log "SKIP arm64 RUN: no arm64 busybox: $(tail -n 2 "$TMP/arm64.err")"
    arm_bb=""
  }
fi
if [ -n "$arm_bb" ]; then
  make_base "$TMP/base-arm64" "$arm_bb"
  run_ocisync build-push --platform "linux/arm64=$TMP/base-arm64:/" -t "$REG_ADDR/lib/bb:arm64"
  expect_success "an arm64 busybox base"
  printf 'FROM %s\nRUN uname -m > /arch\n' "$REG_ADDR/lib/bb:arm64" >"$TMP/Dockerfile.arm"
  run_ocisync build-push -f "$TMP/Dockerfile.arm" "$ctx" -p linux/arm64 -t "$REG_ADDR/team/arm:1"
  expect_success "a RUN for linux/arm64 under qemu"
  rm -rf "$TMP/arm"
  skopeo copy -q --src-tls-verify=false --override-arch arm64 "docker://$REG_ADDR/team/arm:1" "oci:$TMP/arm:x" ||
    fail "skopeo copy failed"
  arch=$(for b in "$TMP/arm/blobs/sha256/"*; do (gzip -dc "$b" 2>/dev/null | tar -xO arch 2>/dev/null) || true; done)
  assert_eq "$arch" aarch64 "uname -m in the arm64 stage says aarch64"
fi

done_ok
