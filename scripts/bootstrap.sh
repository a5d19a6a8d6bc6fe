#!/usr/bin/env bash
# Installs everything ocisync's build and tests need on Debian 12.
# Idempotent: packages already present are not reinstalled, and apt's
# package lists are refreshed only when something is missing.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config clang clang-format
  libuv1-dev node-llhttp zlib1g-dev libssl-dev libzstd-dev
  libjansson-dev libyaml-dev
  docker-registry skopeo podman umoci buildah
  openssl apache2-utils time python3 curl ca-certificates iproute2 iptables
  busybox-static zstd pigz git
  # The RUN sandbox's tests: rootless id maps, and an arm64 program under emulation.
  uidmap qemu-user-static
  # test_dockerfile_debian.sh: a Debian minbase (tests/tools/debian-minbase.sh).
  mmdebstrap
  # Installing and packaging (test_install.sh, test_package_deb.sh, test_static_image.sh):
  # man pages checked with man, completions with bash, zsh and fish, the .deb with
  # dpkg-shlibdeps and lintian, the static binary with file.
  man-db bash-completion zsh fish dpkg-dev lintian file
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi

echo "bootstrap: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
