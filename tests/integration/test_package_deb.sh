#!/usr/bin/env bash
# The .deb: a build configured for /usr (a build directory of its own, no
# tests), `cpack -G DEB`, then dpkg -I (dependencies derived by
# dpkg-shlibdeps, the shlibs file and ldconfig trigger), dpkg -c (the files
# of an install, under Debian's paths), lintian (no errors), apt-get's
# simulation of `apt-get install ./ocisync_*.deb` (its dependencies resolve
# on this Debian), and an install with dpkg into a scratch root, whose
# ocisync runs and copies between two real registries.
. "$(dirname "$0")/lib.sh"

# Expensive (a second build of the library): the plain build runs it.
[ "${OCISYNC_SANITIZED:-0}" != 1 ] || skip_test "runs in the plain build only (a release build of its own)"
for tool in cpack dpkg dpkg-deb dpkg-shlibdeps lintian apt-get; do
  command -v "$tool" >/dev/null || skip_test "$tool is not installed (scripts/bootstrap.sh installs it)"
done

b="$TMP/build-deb"
start=$(date +%s)
cmake -S "$OCISYNC_SOURCE_DIR" -B "$b" -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=/usr \
  -DOCISYNC_BUILD_TESTS=OFF >"$TMP/build.log" 2>&1 &&
  cmake --build "$b" -j2 >>"$TMP/build.log" 2>&1 ||
  fail "the build for the package failed: $(grep -E 'error|Error' "$TMP/build.log" | head -n 5)"
(cd "$b" && cpack -G DEB) >"$TMP/cpack.log" 2>&1 || fail "cpack -G DEB failed: $(tail -n 10 "$TMP/cpack.log")"
deb=$(ls "$b"/ocisync_*.deb)
version=$("$b/ocisync" version | sed -n '1s/^ocisync //p')
assert_eq "$(basename "$deb")" "ocisync_${version}_$(dpkg --print-architecture).deb" "the package's file name"
log "build and cpack: $(($(date +%s) - start)) s; $(basename "$deb"): $(stat -c %s "$deb") bytes"

# --- control -------------------------------------------------------------------------------------
dpkg-deb -f "$deb" Depends >"$TMP/depends"
for dep in libc6 libuv1 libssl3 libzstd1 libjansson4 libyaml-0-2 zlib1g; do
  grep -qE "(^|, )$dep( |,|$)" "$TMP/depends" || fail "Depends lacks $dep: $(cat "$TMP/depends")"
done
pass "Depends, from dpkg-shlibdeps: $(cat "$TMP/depends")"
assert_eq "$(dpkg-deb -f "$deb" Version)" "$version" "the package's version is the program's"
dpkg-deb -I "$deb" shlibs | grep "^libocisync 0 ocisync (>= $version)" >/dev/null || fail "no shlibs entry for libocisync.so.0"
dpkg-deb -I "$deb" triggers | grep '^activate-noawait ldconfig' >/dev/null || fail "no ldconfig trigger"
pass "shlibs names libocisync 0; the ldconfig trigger is there"

# --- files ---------------------------------------------------------------------------------------
dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|^\./|/|' >"$TMP/files"
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch)
for f in /usr/bin/ocisync "/usr/lib/$multiarch/libocisync.so.$version" "/usr/lib/$multiarch/libocisync.so.0" \
  "/usr/lib/$multiarch/libocisync.a" "/usr/lib/$multiarch/pkgconfig/ocisync.pc" \
  "/usr/lib/$multiarch/cmake/ocisync/ocisyncConfig.cmake" /usr/include/ocisync.h \
  /usr/share/man/man1/ocisync.1.gz /usr/share/man/man1/ocisync-copy.1.gz /usr/share/man/man5/ocisync-sync.yml.5.gz \
  /usr/share/bash-completion/completions/ocisync /usr/share/zsh/vendor-completions/_ocisync \
  /usr/share/fish/vendor_completions.d/ocisync.fish /usr/share/doc/ocisync/copyright /usr/share/doc/ocisync/changelog.gz; do
  grep -qx -- "$f" "$TMP/files" || fail "the package lacks $f"
done
dpkg-deb -c "$deb" | awk '$2 != "root/root" {print}' | grep . && fail "files not owned by root/root"
pass "dpkg -c: $(wc -l <"$TMP/files") entries, all under Debian's paths, owned by root"

# --- lintian -------------------------------------------------------------------------------------
lintian --tag-display-limit 0 "$deb" >"$TMP/lintian.out" 2>&1 || true
grep -v 'running with root privileges' "$TMP/lintian.out" | sed "s/^/[lintian] /" || true
grep -q '^E: ' "$TMP/lintian.out" && fail "lintian reports errors: $(grep '^E: ' "$TMP/lintian.out" | head -5)"
pass "lintian: no errors ($(grep -c '^W: ' "$TMP/lintian.out" || true) warnings)"

# --- installable -----------------------------------------------------------------------------------
apt-get install -s -o Debug::NoLocking=1 "$deb" >"$TMP/apt.out" 2>&1 ||
  fail "apt-get cannot install it here: $(tail -n 5 "$TMP/apt.out")"
grep -q '^Inst ocisync ' "$TMP/apt.out" || fail "apt-get -s would not install ocisync: $(tail -n 5 "$TMP/apt.out")"
pass "apt-get install -s ./$(basename "$deb"): its dependencies resolve"
# dpkg into a scratch root with a database of its own; the dependencies are the host's
# (checked above), so dpkg is told not to look for them in the empty root.
r="$TMP/root"
mkdir -p "$r/var/lib/dpkg/info" "$r/var/lib/dpkg/updates"
: >"$r/var/lib/dpkg/status"
dpkg --root="$r" --force-depends --force-script-chrootless --no-triggers -i "$deb" >"$TMP/dpkg.out" 2>&1 ||
  fail "dpkg -i into a scratch root failed: $(tail -n 5 "$TMP/dpkg.out")"
dpkg --root="$r" -s ocisync 2>/dev/null | grep '^Status: install ok' >/dev/null || fail "dpkg does not list ocisync as installed"
pass "dpkg -i into a scratch root: installed"
export LD_LIBRARY_PATH="$r/usr/lib/$multiarch"
registry_start src
registry_start dst
want=$(mkimage --out "$TMP/img" --platforms linux/amd64 --layers 2 --layer-size 30000 --seed deb --tag v1)
push_image "$TMP/img" "$SRC_ADDR/lib/app:v1"
OCISYNC_BIN="$r/usr/bin/ocisync" run_ocisync copy "docker://$SRC_ADDR/lib/app:v1" "docker://$DST_ADDR/deb/app:v1"
expect_success "the packaged ocisync copies between two registries"
assert_eq "$(skopeo_digest "$DST_ADDR/deb/app:v1")" "$want" "the destination holds the source's digest"
ldd "$r/usr/bin/ocisync" | grep "libocisync.so.0 => $r/" >/dev/null || fail "the packaged ocisync did not use the packaged library"
pass "the packaged ocisync runs with the packaged libocisync.so.0"

done_ok
