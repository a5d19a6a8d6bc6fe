#!/usr/bin/env bash
# Golden comparison of `ocisync build -f` against buildah (Debian's, 1.28)
# on Dockerfiles WITH RUN: the same Dockerfile on the same busybox base,
# built by `buildah bud --isolation chroot --layers --timestamp N` and by
# ocisync with SOURCE_DATE_EPOCH=N, then the filesystems compared by
# tests/tools/treecmp.py after every layer (the two builders make one layer
# per RUN here) and at the end: type, mode with the set-id bits, owner,
# size, sha256, link target, hardlinks, mtime and xattrs
# (security.capability). The expected differences are an allow-list below,
# each pinned and explained; anything else fails.
#
# What the RUNs do, each kind of change a RUN layer must capture:
#   1  a file created; files modified with their mtime restored (touch -d
#      back to an old time, touch -r to a reference file); a file deleted;
#      chmod-only and chown-only changes; setuid and setgid bits
#   2  a directory deleted and made again (opaque); a renamed directory;
#      a deep rm -rf
#   3  file -> directory, directory -> file, file -> symlink, symlink ->
#      file, directory -> symlink, symlink -> directory
#   4  hardlinks to a lower layer's file (the base's, RUN 1's)
#   5  file capabilities: v2 on a copy, v3 with a root uid on another,
#      v2 on a base file with no other change (an xattr-only change)
#   6  changes over the build's own earlier layers: an opaque directory
#      deleted and made again, a chmod of RUN 1's file, RUN 3's swapped
#      entries swapped back, a capability removed (copy without xattrs)
# (RUN n is layer n+1: layer 1 is the base.) Rules the comparison no longer
# needs fail it too (treecmp --strict). Then what both builders could lose
# alike is checked in ocisync's image (the set-id bits, the capabilities'
# bytes, the restored mtimes, /etc as the base has it). Then umoci unpacks
# both images (as root, layer by layer with whiteouts): each unpacked tree
# must be the tree treecmp made of the layers, and the two must differ only
# as the allow-list says.
#
# By hand: cmake --build build -j2 && (cd build && ctest -R run_buildah
# --output-on-failure); OCISYNC_KEEP_TMP=1 keeps both images in $TMP/out.
#
# busybox has no setcap: tests/tools/xsetcap.c, built static with `cc
# -static` here, sets security.capability in the base both builders use.
# Both builders run as root (ocisync's RUN needs root for now; buildah's
# chroot isolation too).
. "$(dirname "$0")/lib.sh"

TREECMP="$OCISYNC_SOURCE_DIR/tests/tools/treecmp.py"
export SOURCE_DATE_EPOCH=1700000000
export TMPDIR="$TMP/tmpdir"
mkdir -p "$TMPDIR"
[ "$(id -u)" = 0 ] || fail "this test runs as root (buildah, umoci unpack, setcap)"
command -v buildah >/dev/null || fail "buildah is not installed (scripts/bootstrap.sh installs it)"
command -v umoci >/dev/null || fail "umoci is not installed (scripts/bootstrap.sh installs it)"
command -v cc >/dev/null || fail "no C compiler for tests/tools/xsetcap.c"

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

# --- the base: busybox, the entries the RUNs change, xsetcap --------------------------------------
cc -static -O -o "$TMP/xsetcap" "$OCISYNC_SOURCE_DIR/tests/tools/xsetcap.c" 2>"$TMP/cc.log" ||
  fail "cc -static tests/tools/xsetcap.c failed (Debian: libc6-dev): $(tail -n 5 "$TMP/cc.log")"
OLD=978307200 # 2001-01-01: older than SOURCE_DATE_EPOCH, so ocisync keeps it
b="$TMP/base"
mkdir -p "$b"/{bin,etc,tmp,root,srv/old/deep,var/keep/sub,data/big/a/b/c/d/e,data/d2f/in,data/d2l,data/sw}
cp /bin/busybox "$b/bin/busybox"
cp "$TMP/xsetcap" "$b/bin/xsetcap"
for a in sh ls cat echo mkdir rm rmdir touch chmod chown ln mv cp mkfifo stat head true; do
  ln -s busybox "$b/bin/$a"
done
printf 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n' >"$b/etc/passwd"
printf 'root:x:0:\napp:x:1000:\n' >"$b/etc/group"
echo "old" >"$b/srv/old/deep/file"
echo "keep" >"$b/var/keep/file"
echo "sub" >"$b/var/keep/sub/file"
for f in deleted chmod chown hl-src capped f2d f2l; do echo "$f" >"$b/data/$f"; done
echo "d2f" >"$b/data/d2f/in/file"
echo "d2l" >"$b/data/d2l/file"
ln -s f2d "$b/data/l2f"
ln -s d2f "$b/data/l2d"
for i in 1 2 3; do echo "deep $i" >"$b/data/big/a/b/c/d/e/f$i"; done
echo "mtime v1" >"$b/data/mtime"
echo "ref v1" >"$b/data/ref"
echo "reference" >"$b/data/reference"
touch -d "@$OLD" "$b/data/mtime" "$b/data/reference"
# Directories a RUN only passes through keep their old mtime.
touch -d "@$OLD" "$b/etc" "$b/var/keep/sub" "$b/srv"
chmod 1777 "$b/tmp"
chmod 0700 "$b/root"
run_ocisync build-push --platform "linux/amd64=$b:/" -t "$REG_ADDR/lib/bb:1" \
  --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
expect_success "the busybox base"
BASE="$REG_ADDR/lib/bb:1"

# --- the Dockerfile ------------------------------------------------------------------------------
ctx="$TMP/ctx"
mkdir -p "$ctx"
cat >"$ctx/Dockerfile" <<EOF
FROM $BASE
RUN echo created > /data/created \\
 && echo "mtime v2" > /data/mtime && touch -d @$OLD /data/mtime \\
 && echo "ref v2" > /data/ref && touch -r /data/reference /data/ref \\
 && rm /data/deleted \\
 && chmod 0640 /data/chmod \\
 && chown 1000:1000 /data/chown \\
 && cp /bin/busybox /bin/suid && chmod 4755 /bin/suid \\
 && mkdir /data/sgid && chmod 2775 /data/sgid && chown 0:1000 /data/sgid
RUN rm -rf /srv/old && mkdir /srv/old && echo new > /srv/old/fresh \\
 && mv /var/keep /var/moved \\
 && rm -rf /data/big
RUN rm /data/f2d && mkdir /data/f2d && echo in > /data/f2d/in \\
 && rm -rf /data/d2f && echo now-a-file > /data/d2f \\
 && rm /data/f2l && ln -s /etc/passwd /data/f2l \\
 && rm /data/l2f && echo real > /data/l2f \\
 && rm -rf /data/d2l && ln -s ../srv /data/d2l \\
 && rm /data/l2d && mkdir /data/l2d && echo in > /data/l2d/in
RUN ln /data/hl-src /data/hl-1 && ln /data/hl-src /bin/hl-2 \\
 && ln /bin/busybox /bin/hardlinked \\
 && ln /data/created /data/created-link
RUN cp /bin/busybox /bin/cap2 && xsetcap v2 /bin/cap2 \\
 && cp /bin/busybox /bin/cap3 && xsetcap v3 /bin/cap3 1000 \\
 && xsetcap v2 /data/capped
RUN rm -rf /srv/old && mkdir -p /srv/old/again && echo again > /srv/old/again/file \\
 && chmod 0600 /data/created \\
 && rm -rf /data/f2d && echo file-again > /data/f2d \\
 && rm /data/l2d/in && rmdir /data/l2d && ln -s f2d /data/l2d \\
 && cp /bin/cap2 /bin/cap2-copy && rm /bin/cap2
EOF
cp "$ctx/Dockerfile" "$ctx/Dockerfile.buildah"

# --- the differences that are expected -----------------------------------------------------------
# Left (A) is buildah, right (B) is ocisync. Each rule pins both values, and
# every rule must still be needed (treecmp --strict).
cat >"$TMP/allow.txt" <<'EOF'
# buildah stamps every image with its own version; docker and ocisync do not.
config Labels[io.buildah.version] value A=1.28.2 B=<absent>   # buildah's own label
# buildah's chroot isolation makes its mount points in the rootfs and
# commits them with the first RUN's layer: empty /etc/hosts, /etc/hostname
# and /etc/resolv.conf (mode 0755) and the /dev, /proc, /run and /sys
# directories the base lacks. ocisync removes the mount points it made.
tree /etc/hostname exists A=file B=<absent>      # buildah commits its mount point
tree /etc/hosts exists A=file B=<absent>         # buildah commits its mount point
tree /etc/resolv.conf exists A=file B=<absent>   # buildah commits its mount point
tree /dev exists A=dir B=<absent>                # buildah commits its mount point
tree /proc exists A=dir B=<absent>               # buildah commits its mount point
tree /run exists A=dir B=<absent>                # buildah commits its mount point
tree /sys exists A=dir B=<absent>                # buildah commits its mount point
# Those mount points changed buildah's /etc; no RUN touches it, and ocisync
# leaves it as the base has it (from 2001: clamping keeps older times).
tree /etc mtime A=1700000000 B=978307200         # buildah's mount points changed /etc
# buildah --timestamp sets every mtime in a layer it writes; SOURCE_DATE_EPOCH
# clamps (only newer times are lowered, as BuildKit's rewrite-timestamp),
# so an old mtime stays: /data/ref was changed and then given the 2001 time
# of /data/reference (touch -r); /var/moved/sub came along with a renamed
# directory, and a rename does not change the mtime of what it moves.
tree /data/ref mtime A=1700000000 B=978307200        # --timestamp sets, SOURCE_DATE_EPOCH clamps
tree /var/moved/sub mtime A=1700000000 B=978307200   # --timestamp sets, SOURCE_DATE_EPOCH clamps
# buildah's bug, not ocisync's: /data/mtime went from "mtime v1" to "mtime
# v2" (the same size) and touch -d gave it back its old mtime, and buildah
# (containers/storage's diff of the vfs driver: a file changed when its
# size or mtime did) leaves it out of the layer, keeping the old contents.
# ocisync's layer has the file (the overlay copied it up when written).
tree /data/mtime sha256 A=2a2d6684feb4fe6d12c1a37d516d1ed7597feedcdf677847dcb994b566271863 B=328fead32bb166b7a0b34759b32452b673aad9aa7d6c513dcd5043974247f3d5   # buildah misses a change that keeps size and mtime
# A hardlink to a lower layer's file: the overlay copies the target up when
# it is linked, so ocisync's layer has both names as one file (as docker's
# overlay2 layers do) and the link holds; buildah's diff leaves the target
# out (only its link count changed), so in its image the new name is a copy.
tree /bin/busybox hardlinks A=<absent> B=/bin/hardlinked          # buildah breaks a link to a lower file
tree /bin/hardlinked hardlinks A=<absent> B=/bin/busybox          # buildah breaks a link to a lower file
tree /data/hl-src hardlinks A=<absent> 'B=/bin/hl-2 /data/hl-1'   # buildah breaks a link to a lower file
tree /data/hl-1 hardlinks A=/bin/hl-2 'B=/bin/hl-2 /data/hl-src'  # buildah breaks a link to a lower file
tree /bin/hl-2 hardlinks A=/data/hl-1 'B=/data/hl-1 /data/hl-src' # buildah breaks a link to a lower file
# The same for RUN 1's /data/created, until RUN 6's chmod copies it up alone.
tree /data/created hardlinks A=<absent> B=/data/created-link      # buildah breaks a link to a lower file
tree /data/created-link hardlinks A=<absent> B=/data/created      # buildah breaks a link to a lower file
EOF

# --- the builds ----------------------------------------------------------------------------------
out="$TMP/out"
mkdir -p "$out"
log "buildah bud"
buildah_cmd bud --isolation chroot --layers --tls-verify=false --timestamp "$SOURCE_DATE_EPOCH" \
  --format oci -t golden/run -f "$ctx/Dockerfile.buildah" "$ctx" >"$TMP/buildah.log" 2>&1 ||
  fail "buildah bud failed: $(tail -n 5 "$TMP/buildah.log")"
buildah_cmd push golden/run "oci:$out/buildah:1" >>"$TMP/buildah.log" 2>&1 ||
  fail "buildah push failed: $(tail -n 5 "$TMP/buildah.log")"
pass "buildah bud --isolation chroot --layers --timestamp $SOURCE_DATE_EPOCH"
run_ocisync build -f "$ctx/Dockerfile" "$ctx" -p linux/amd64 --output "oci:$out/ocisync:1"
expect_success "ocisync build -f"

# treecmp A B WHAT ARGS...: compares, shows the result, fails on a difference.
treecmp() {
  local what=$1 a=$2 b=$3 rc=0
  shift 3
  python3 "$TREECMP" "$@" "$a" "$b" >"$TMP/cmp.txt" 2>&1 || rc=$?
  sed "s/^/[$TEST_NAME]   /" "$TMP/cmp.txt"
  case $rc in
    0) pass "$what ($(tail -n 1 "$TMP/cmp.txt" | sed 's/^treecmp: //'))" ;;
    1) fail "$what: no (lines marked DIFF or UNUSED above)" ;;
    *) fail "$what: treecmp could not compare: $(cat "$TMP/cmp.txt")" ;;
  esac
}
treecmp "ocisync's tree matches buildah's after each layer" "oci:$out/buildah:1" "oci:$out/ocisync:1" \
  --allow "$TMP/allow.txt" --names buildah,ocisync --each-layer --strict

# What both could have lost alike is in ocisync's image as the Dockerfile says.
python3 "$TREECMP" --dump "oci:$out/ocisync:1" >"$TMP/ocisync.list" || fail "treecmp --dump failed"
want=(
  "file    4755 0:0 1700000000 /bin/suid "
  "dir     2775 0:1000 1700000000 /data/sgid"
  "file    0640 0:0 1700000000 /data/chmod "
  "file    0644 1000:1000 1700000000 /data/chown "
  "file    0644 0:0 1700000000 /data/capped size=7 sha256=cbf73cea44e8e345ba2cc39d7a4df0b847152bb43dd013b4d92a612bea72f3da xattrs=security.capability=0x0100000200240000000000000000000000000000"
  "/bin/cap3 size=.* xattrs=security.capability=0x0100000300240000000000000000000000000000e8030000"
  "file    0644 0:0 978307200 /data/mtime size=9 sha256=328fead32bb166b7a0b34759b32452b673aad9aa7d6c513dcd5043974247f3d5"
  "dir     0755 0:0 978307200 /etc"
  "symlink 0777 0:0 1700000000 /data/l2d target=f2d"
  "dir     0755 0:0 1700000000 /srv/old/again"
)
for w in "${want[@]}"; do
  grep -q -- "$w" "$TMP/ocisync.list" || fail "ocisync's image has no line matching '$w': $(cat "$TMP/ocisync.list")"
done
[ "$(grep -c ' /srv/old/' "$TMP/ocisync.list")" = 2 ] || fail "/srv/old holds more than RUN 6 made"
[ "$(grep -c ' /data/big' "$TMP/ocisync.list")" = 0 ] || fail "/data/big survived rm -rf"
pass "ocisync's image has the set-id bits, owners, capabilities (v2, v3 with root uid 1000), contents and mtimes the RUNs made"

# umoci unpacks both (as root: owners, set-id bits, xattrs), layer by layer
# with whiteouts; the unpacked trees differ the same way, and each is the
# tree treecmp made of the layers.
skopeo copy -q "oci:$out/ocisync:1" "oci:$out/ocisync-m:1" 2>"$TMP/skopeo.err" ||
  fail "skopeo copy (the platform's manifest, for umoci) failed: $(cat "$TMP/skopeo.err")"
for n in buildah ocisync; do
  img="$out/$n:1"
  [ "$n" = buildah ] || img="$out/ocisync-m:1"
  umoci unpack --image "$img" "$TMP/unpacked-$n" >>"$TMP/umoci.log" 2>&1 ||
    fail "umoci unpack $n failed: $(tail -n 5 "$TMP/umoci.log")"
  treecmp "umoci's unpacking of $n's image is the tree of its layers" \
    "rootfs:$TMP/unpacked-$n/rootfs" "oci:$out/$n:1" --names umoci,treecmp
done
# (Not --strict: some rules are for differences of the earlier layers only.)
grep -v '^config ' "$TMP/allow.txt" >"$TMP/allow-tree.txt"
treecmp "umoci's unpacking of ocisync's image matches buildah's" \
  "rootfs:$TMP/unpacked-buildah/rootfs" "rootfs:$TMP/unpacked-ocisync/rootfs" \
  --allow "$TMP/allow-tree.txt" --names buildah,ocisync

done_ok
