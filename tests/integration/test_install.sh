#!/usr/bin/env bash
# `cmake --install` into a temp prefix, then everything a user of the installed
# ocisync meets: the files are where GNUInstallDirs puts them; libocisync.so.0
# exports only ocisync_* (nm -D: no llhttp, no internal symbol); every man page
# renders with `man --warnings` and nothing on stderr; the bash completion
# completes `ocisync co<TAB>` and, for every command, offers every long option
# its --help lists (zsh's and fish's files are checked against the same list);
# examples/copy_progress.c, copied out of the tree, builds with nothing but
# `pkg-config ocisync` (and fully static with `pkg-config --static`), and a
# CMake project finds the library with find_package(ocisync); both copy an
# image between two real registries.
. "$(dirname "$0")/lib.sh"

[ -n "${OCISYNC_BUILD_DIR:-}" ] || fail "OCISYNC_BUILD_DIR is not set (ctest sets it)"
for tool in pkg-config nm readelf man bash cc; do
  command -v "$tool" >/dev/null || skip_test "$tool is not installed (scripts/bootstrap.sh installs it)"
done

P="$TMP/prefix"
cmake --install "$OCISYNC_BUILD_DIR" --prefix "$P" >"$TMP/install.log" 2>&1 ||
  fail "cmake --install failed: $(tail -n 5 "$TMP/install.log")"
pass "cmake --install --prefix $P"

# --- the files -----------------------------------------------------------------------------------
version=$("$P/bin/ocisync" version | sed -n '1s/^ocisync //p')
[ -n "$version" ] || fail "the installed ocisync does not run: $("$P/bin/ocisync" version 2>&1 | head -3)"
pass "the installed ocisync runs (version $version), finding its libocisync.so.0"
"$P/bin/ocisync" version | grep -E '^libuv [0-9.]+, OpenSSL [0-9.]+, zlib [0-9.]+, zstd [0-9.]+, llhttp [0-9.]+' >/dev/null ||
  fail "ocisync version does not name the libraries' versions: $("$P/bin/ocisync" version)"
pass "ocisync version names libuv, OpenSSL, zlib, zstd and llhttp"
lib=$(pkg-config --variable=libdir "$P"/lib*/pkgconfig/ocisync.pc 2>/dev/null || true)
[ -n "$lib" ] || lib="$P/lib"
for f in bin/ocisync include/ocisync.h include/ocisync_version.h; do
  [ -f "$P/$f" ] || fail "$f was not installed"
done
for f in "libocisync.so.$version" libocisync.so.0 libocisync.so libocisync.a pkgconfig/ocisync.pc \
  cmake/ocisync/ocisyncConfig.cmake cmake/ocisync/ocisyncConfigVersion.cmake cmake/ocisync/ocisyncTargets.cmake; do
  [ -e "$lib/$f" ] || fail "$lib/$f was not installed"
done
[ "$(readlink "$lib/libocisync.so")" = libocisync.so.0 ] || fail "libocisync.so does not link to libocisync.so.0"
soname=$(readelf -d "$lib/libocisync.so.$version" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
assert_eq "$soname" libocisync.so.0 "the library's SONAME"
assert_eq "$(sed -n 's/^Version: //p' "$lib/pkgconfig/ocisync.pc")" "$version" "ocisync.pc's version is the program's"

# --- exports -------------------------------------------------------------------------------------
nm -D --defined-only "$lib/libocisync.so.0" | awk '{print $NF}' >"$TMP/exports"
others=$(grep -v '^ocisync_' "$TMP/exports" || true)
[ -z "$others" ] || fail "libocisync.so exports more than ocisync_*: $(echo "$others" | head -n 10 | tr '\n' ' ')"
grep -q '^ocisync__' "$TMP/exports" && fail "an internal ocisync__ symbol is exported: $(grep '^ocisync__' "$TMP/exports" | head -3)"
for sym in ocisync_copy ocisync_sync ocisync_build ocisync_strerror ocisync_version_info; do
  grep -qx "$sym" "$TMP/exports" || fail "$sym is not exported"
done
# Every function the header declares is exported.
grep -oE '^OCISYNC_EXTERN [^(]*\bocisync_[a-z_]+\(' "$P/include/ocisync.h" | grep -oE 'ocisync_[a-z_]+\($' |
  tr -d '(' | sort >"$TMP/declared"
missing=$(comm -23 "$TMP/declared" <(sort "$TMP/exports"))
[ -z "$missing" ] || fail "declared in ocisync.h but not exported: $missing"
pass "nm -D: only ocisync_* exported ($(wc -l <"$TMP/exports") symbols, every one ocisync.h declares)"

# --- man pages -----------------------------------------------------------------------------------
commands=$("$P/bin/ocisync" --help | sed -n '/^Commands:/,/^$/p' | sed -n 's/^  \([a-z-][a-z-]*\).*/\1/p')
[ "$(echo "$commands" | wc -l)" -ge 15 ] || fail "ocisync --help lists too few commands: $commands"
pages=("$P/share/man/man1/ocisync.1.gz" "$P/share/man/man5/ocisync-sync.yml.5.gz")
for c in $commands; do
  pages+=("$P/share/man/man1/ocisync-$c.1.gz")
done
for page in "${pages[@]}"; do
  [ -f "$page" ] || fail "no man page $page"
  MANWIDTH=80 man --warnings -l "$page" >"$TMP/man.out" 2>"$TMP/man.err" || fail "man -l $page failed: $(head -3 "$TMP/man.err")"
  [ ! -s "$TMP/man.err" ] || fail "man --warnings -l $(basename "$page"): $(head -5 "$TMP/man.err")"
  [ "$(wc -l <"$TMP/man.out")" -ge 10 ] || fail "$(basename "$page") renders to almost nothing"
done
MANWIDTH=80 man -l "$P/share/man/man1/ocisync-copy.1.gz" 2>/dev/null | grep -- '--preserve-digests' >/dev/null ||
  fail "ocisync-copy(1) does not describe --preserve-digests"
pass "${#pages[@]} man pages render without warnings (one per command, ocisync.1, ocisync-sync.yml.5)"

# --- completions ---------------------------------------------------------------------------------
bashc="$P/share/bash-completion/completions/ocisync"
zshc=$(ls "$P"/share/zsh/*/_ocisync)
fishc="$P/share/fish/vendor_completions.d/ocisync.fish"
for f in "$bashc" "$zshc" "$fishc"; do [ -f "$f" ] || fail "completion $f was not installed"; done
# complete WORDS...: what the bash completion offers for the last word.
complete_bash() {
  bash -c 'source "$1"; shift; complete -p ocisync >/dev/null || exit 3
    COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMPREPLY=(); _ocisync
    printf "%s\n" "${COMPREPLY[@]}"' _ "$bashc" "$@"
}
assert_eq "$(complete_bash ocisync co | sort | tr '\n' ' ')" "config copy " "bash: ocisync co<TAB>"
assert_eq "$(complete_bash ocisync copy --multi-arch "" | sort | tr '\n' ' ')" "all index-only system " \
  "bash: ocisync copy --multi-arch <TAB>"
# Every long option each command's --help lists (on the lines that start an option) is offered.
help_options() {
  "$P/bin/ocisync" "$@" --help | grep -E '^ {2,6}-' | sed -E 's/^ +//; s/ {2,}.*$//' |
    grep -oE '(^|[ ,])--[a-z0-9][a-z0-9.-]*' | sed 's/^[ ,]*//' | sort -u
}
n=0
for c in $commands; do
  help_options "$c" >"$TMP/opts.$c"
  [ -s "$TMP/opts.$c" ] || fail "ocisync $c --help lists no long option"
  complete_bash ocisync "$c" -- | sort -u >"$TMP/bash.$c"
  missing=$(comm -23 "$TMP/opts.$c" "$TMP/bash.$c")
  [ -z "$missing" ] || fail "bash completion of ocisync $c lacks: $(echo "$missing" | tr '\n' ' ')"
  awk -v c="$c" '$0 ~ "^    ([a-z-]+\\|)*" c "(\\|[a-z-]+)*\\)$" {on=1; next} on && /^      ;;$/ {on=0} on' "$zshc" >"$TMP/zsh.$c"
  if command -v fish >/dev/null; then
    fish -c "source '$fishc'; complete -C 'ocisync $c --'" | cut -f1 | sort -u >"$TMP/fish.$c"
  fi
  while read -r o; do
    grep -qF -- "'*$o" "$TMP/zsh.$c" || fail "zsh completion of ocisync $c lacks $o"
    if [ -f "$TMP/fish.$c" ]; then
      grep -qx -- "$o" "$TMP/fish.$c" || fail "fish completion of ocisync $c lacks $o"
    fi
    n=$((n + 1))
  done <"$TMP/opts.$c"
done
help_options | while read -r o; do grep -qF -- "'*$o" "$zshc" || fail "zsh completion lacks global $o"; done
pass "bash, zsh and fish completions offer all $n long options of $(echo "$commands" | wc -w) commands' --help"
if command -v zsh >/dev/null; then
  zsh -n "$zshc" || fail "zsh -n $zshc"
  pass "zsh -n accepts _ocisync"
fi

# --- the library, from pkg-config alone ----------------------------------------------------------
export PKG_CONFIG_PATH="$lib/pkgconfig"
cflags=$(pkg-config --cflags ocisync)
libs=$(pkg-config --libs ocisync)
case "$cflags $libs" in *"$OCISYNC_SOURCE_DIR"* | *"$OCISYNC_BUILD_DIR"*) fail "pkg-config points into the tree: $cflags $libs" ;; esac
pkg-config --static --libs ocisync | grep -- '-lzstd' >/dev/null || fail "pkg-config --static --libs ocisync lacks the private libraries"
mkdir -p "$TMP/examples"
cp "$OCISYNC_SOURCE_DIR/examples/copy_progress.c" "$OCISYNC_SOURCE_DIR/examples/Makefile" "$TMP/examples/"
san=()
[ "${OCISYNC_SANITIZED:-0}" != 1 ] || san=(-fsanitize=address,undefined)
make -C "$TMP/examples" CFLAGS="-O1 -g -Wall -Wextra -Werror ${san[*]}" >"$TMP/make.log" 2>&1 ||
  fail "examples/ does not build against the installed ocisync.pc: $(tail -n 10 "$TMP/make.log")"
grep -qF -- "-I$P/include" "$TMP/make.log" || fail "the example was not built with ocisync.pc's flags: $(cat "$TMP/make.log")"
pass "examples/copy_progress builds with pkg-config --cflags --libs ocisync only"

registry_start src
registry_start dst
want=$(mkimage --out "$TMP/img" --platforms linux/amd64,linux/arm64 --layers 2 --layer-size 50000 \
  --seed install --tag v1)
push_image "$TMP/img" "$SRC_ADDR/lib/app:v1"
LD_LIBRARY_PATH="$lib" timeout 120 "$TMP/examples/copy_progress" "$SRC_ADDR/lib/app:v1" "$DST_ADDR/embedded/app:v1" \
  >"$TMP/example.out" 2>"$TMP/example.err" || fail "copy_progress failed: $(tail -n 5 "$TMP/example.err")"
assert_eq "$(cat "$TMP/example.out")" "$want" "copy_progress prints the digest copied"
assert_eq "$(skopeo_digest "$DST_ADDR/embedded/app:v1")" "$want" "the destination holds the source's digest"
nblobs=$(index_children "$TMP/img/blobs/sha256/${want#sha256:}" | while read -r d _; do
  manifest_blobs "$TMP/img/blobs/sha256/${d#sha256:}"
done | sort -u | wc -l)
assert_eq "$(grep -c '^copied ' "$TMP/example.err")" "$nblobs" "copy_progress saw every distinct blob copied"
grep -q "^libocisync $version " "$TMP/example.err" || fail "copy_progress ran another libocisync: $(head -1 "$TMP/example.err")"
assert_eq "$(grep -c '^image ' "$TMP/example.err")" 2 "copy_progress saw both platforms done"

if [ "${OCISYNC_SANITIZED:-0}" != 1 ]; then
  # The static library with what pkg-config --static names: no libocisync.so at run time.
  # shellcheck disable=SC2046
  cc -O1 -static $(pkg-config --cflags ocisync) -o "$TMP/copy_progress_static" "$TMP/examples/copy_progress.c" \
    $(pkg-config --static --libs ocisync) >"$TMP/static.log" 2>&1 ||
    fail "static link with pkg-config --static --libs failed: $(grep -v 'statically linked applications' "$TMP/static.log" | tail -n 5)"
  readelf -d "$TMP/copy_progress_static" 2>/dev/null | grep NEEDED >/dev/null && fail "the static example needs shared libraries"
  timeout 120 "$TMP/copy_progress_static" "$SRC_ADDR/lib/app:v1" "$DST_ADDR/embedded/app:v2" >"$TMP/static.out" 2>"$TMP/static.err" ||
    fail "the static example failed: $(tail -n 5 "$TMP/static.err")"
  assert_eq "$(cat "$TMP/static.out")" "$want" "linked statically from pkg-config --static --libs, it copies too"

  # A CMake project: find_package(ocisync) and the imported target.
  mkdir -p "$TMP/cmake-user"
  cp "$TMP/examples/copy_progress.c" "$TMP/cmake-user/"
  cat >"$TMP/cmake-user/CMakeLists.txt" <<'EOF'
cmake_minimum_required(VERSION 3.18)
project(user C)
find_package(ocisync 0 REQUIRED)
add_executable(copy_progress copy_progress.c)
target_link_libraries(copy_progress PRIVATE ocisync::ocisync)
EOF
  cmake -S "$TMP/cmake-user" -B "$TMP/cmake-user/build" -DCMAKE_PREFIX_PATH="$P" >"$TMP/cmake-user.log" 2>&1 &&
    cmake --build "$TMP/cmake-user/build" >>"$TMP/cmake-user.log" 2>&1 ||
    fail "find_package(ocisync) project does not build: $(tail -n 10 "$TMP/cmake-user.log")"
  timeout 120 "$TMP/cmake-user/build/copy_progress" "$SRC_ADDR/lib/app:v1" "$DST_ADDR/embedded/app:v3" >"$TMP/cmake.out" 2>"$TMP/cmake.err" ||
    fail "the find_package build failed to copy: $(tail -n 5 "$TMP/cmake.err")"
  assert_eq "$(cat "$TMP/cmake.out")" "$want" "built with find_package(ocisync) (RUNPATH from the imported target), it copies"
fi

done_ok
