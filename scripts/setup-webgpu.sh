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

. "$(dirname "${BASH_SOURCE[0]}")/apt-ensure.sh"
apt_ensure /tmp/setup-webgpu-apt.log \
  ". WebGPU tests will skip if no adapter can be created." \
  "WebGPU tests will skip if no adapter can be created." \
  "${PKGS[@]}" || exit 0

[ -f /usr/lib/chromium/vk_swiftshader_icd.json ] && say "SwiftShader Vulkan ICD: /usr/lib/chromium/vk_swiftshader_icd.json"
ls /usr/lib/*/libEGL.so >/dev/null 2>&1 && say "libEGL.so present (OpenGL ES route)"
exit 0
