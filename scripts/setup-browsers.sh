#!/usr/bin/env bash
# System setup for the browser tests and `npm run bench:browsers`: Debian's
# headless-capable Chromium and Firefox ESR (driven by puppeteer-core, over
# CDP and WebDriver BiDi respectively; test/browsers.ts). Idempotent; installs
# only what is missing. A failure here makes the browser tests skip, saying
# why, so this script never fails the build.
# Usage: bash scripts/setup-browsers.sh    (root, or sudo without a password)
set -u

PKGS=(chromium firefox-esr)

say() { echo "setup-browsers: $*"; }

if ! command -v apt-get >/dev/null 2>&1 || ! command -v dpkg-query >/dev/null 2>&1; then
  say "no apt-get/dpkg here; install by hand: ${PKGS[*]} (Debian names), or point \$CAIT_CHROMIUM / \$CAIT_FIREFOX at them. Browser tests will skip otherwise."
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
      say "not root and no passwordless sudo; missing: ${missing[*]}. Browser tests will skip."
      exit 0
    fi
  fi
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if ! $SUDO apt-get install -y --no-install-recommends "${missing[@]}" >/tmp/setup-browsers-apt.log 2>&1; then
    # stale or absent package lists in a fresh container: refresh once and retry
    $SUDO apt-get update >>/tmp/setup-browsers-apt.log 2>&1 || true
    if ! $SUDO apt-get install -y --no-install-recommends "${missing[@]}" >>/tmp/setup-browsers-apt.log 2>&1; then
      for p in "${missing[@]}"; do
        $SUDO apt-get install -y --no-install-recommends "$p" >>/tmp/setup-browsers-apt.log 2>&1 || say "could not install $p (see /tmp/setup-browsers-apt.log)"
      done
    fi
  fi
fi

for b in /usr/bin/chromium /usr/bin/firefox-esr; do
  [ -x "$b" ] && say "$b: $("$b" --version 2>/dev/null | head -1)" || say "$b: missing (its browser tests will skip)"
done
exit 0
