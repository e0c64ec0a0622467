#!/usr/bin/env bash
# System setup for the WebGPU backend's tests on a machine without a GPU
# (CI): software adapters for dawn (the optional `webgpu` npm package) and a
# Chromium for the browser test. Idempotent; installs only what is missing.
#
#   OpenGL ES on Mesa llvmpipe (the faster route here):
#     libegl1 libegl-mesa0 libgl1-mesa-dri, and libegl-dev for the unversioned
#     libEGL.so that dawn opens; used with EGL_PLATFORM=surfaceless.
#   Vulkan on SwiftShader: Debian's chromium ships the driver
#     (/usr/lib/chromium/vk_swiftshader_icd.json); libvulkan1 is the loader
#     dawn opens (chromium's own copy is not on the library path).
#   Headless Chromium itself (--enable-unsafe-webgpu) for navigator.gpu.
#
# (Debian's lavapipe, mesa-vulkan-drivers, is deliberately not installed: dawn
# rejects it for missing dynamic-indexing features.) src/backend/webgpu/node.ts
# picks a route at run time; a failure here only makes the WebGPU tests skip
# with the reason, so this script never fails the build.
# Usage: bash scripts/setup-webgpu.sh    (root, or sudo without a password)
set -u

PKGS=(libegl1 libegl-mesa0 libegl-dev libgl1-mesa-dri libvulkan1 chromium)

say() { echo "setup-webgpu: $*"; }

if ! command -v apt-get >/dev/null 2>&1 || ! command -v dpkg-query >/dev/null 2>&1; then
  say "no apt-get/dpkg here; install by hand: ${PKGS[*]} (Debian names). WebGPU tests will skip if no adapter can be created."
  exit 0
fi

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  say "all present (${PKGS[*]})"
else
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
      say "not root and no passwordless sudo; missing: ${missing[*]}. WebGPU tests will skip if no adapter can be created."
      exit 0
    fi
  fi
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if ! $SUDO apt-get install -y --no-install-recommends "${missing[@]}" >/tmp/setup-webgpu-apt.log 2>&1; then
    # stale or absent package lists in a fresh container: refresh once and retry
    $SUDO apt-get update >>/tmp/setup-webgpu-apt.log 2>&1 || true
    if ! $SUDO apt-get install -y --no-install-recommends "${missing[@]}" >>/tmp/setup-webgpu-apt.log 2>&1; then
      # one package may be unavailable (e.g. chromium on another distribution): take what installs
      for p in "${missing[@]}"; do
        $SUDO apt-get install -y --no-install-recommends "$p" >>/tmp/setup-webgpu-apt.log 2>&1 || say "could not install $p (see /tmp/setup-webgpu-apt.log)"
      done
    fi
  fi
fi

[ -f /usr/lib/chromium/vk_swiftshader_icd.json ] && say "SwiftShader Vulkan ICD: /usr/lib/chromium/vk_swiftshader_icd.json"
ls /usr/lib/*/libEGL.so >/dev/null 2>&1 && say "libEGL.so present (OpenGL ES route)"
exit 0
