#!/usr/bin/env bash
# Install the Debian packages the test suite (or the demo) needs, if any are missing.
# Runs `apt-get update` at most once, and only when something has to be installed.
set -euo pipefail

# Build headers for PyAudio and systemd-python, cmake and ninja for llama-cpp-python (the
# language-model runtime compiles llama.cpp: no wheels), the stock age CLI for interop
# tests, Chromium for browser tests (fonts-dejavu-core is also the PDF export's font),
# nspawn/debootstrap for the system test.
# release_packages adds pkg-config and ALSA under this release's names.
TEST_PACKAGES=(
  python3-venv python3-dev build-essential cmake ninja-build
  portaudio19-dev libsystemd-dev
  age openssl ca-certificates curl
  chromium fonts-dejavu-core fonts-liberation systemd systemd-container debootstrap shellcheck iproute2
  espeak-ng
)
# espeak-ng speaks the demo dialogue when ../shared (with the sample recording) is absent.
# The demo drafts its note with the bundled language model: cmake and ninja build its runtime.
DEMO_PACKAGES=(python3-venv python3-dev build-essential cmake ninja-build portaudio19-dev
  libsystemd-dev openssl espeak-ng fonts-dejavu-core)

# The names that differ between releases: Debian 13 (trixie) and Ubuntu 24.04 renamed
# libasound2 to libasound2t64 (64-bit time_t) and replaced pkg-config by pkgconf.
release_packages() {
  local codename=""
  if [ -r /etc/os-release ]; then
    codename="$(sed -n 's/^VERSION_CODENAME=//p' /etc/os-release | tr -d '"')"
  fi
  case "$codename" in
    bullseye | bookworm | focal | jammy) echo pkg-config libasound2 ;;
    *)
      echo pkgconf libasound2t64
      # Python 3.13 on aarch64: lgpio has no wheel and builds from source with swig.
      if [ "$(uname -m)" = aarch64 ]; then echo swig; fi ;;
  esac
}

missing_packages() {
  local pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || echo "$pkg"
  done
}

main() {
  local -a wanted missing renamed
  case "${1:-test}" in
    test) wanted=("${TEST_PACKAGES[@]}") ;;
    demo) wanted=("${DEMO_PACKAGES[@]}") ;;
    *) echo "usage: $0 test|demo" >&2; exit 2 ;;
  esac
  read -r -a renamed <<<"$(release_packages)"
  wanted+=("${renamed[@]}")
  if ! command -v dpkg-query >/dev/null; then
    echo "sysdeps: not a Debian-based system; install the equivalents of: ${wanted[*]}" >&2
    return 0
  fi
  mapfile -t missing < <(missing_packages "${wanted[@]}")
  if [ "${#missing[@]}" -eq 0 ]; then
    echo "sysdeps: all system packages present"
    return 0
  fi
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "sysdeps: run as root to install: ${missing[*]}" >&2; exit 1; }
    sudo="sudo"
  fi
  echo "sysdeps: installing ${missing[*]}"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
}

main "$@"
