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

. "$(dirname "${BASH_SOURCE[0]}")/apt-ensure.sh"
apt_ensure /tmp/setup-browsers-apt.log \
  ", or point \$CAIT_CHROMIUM / \$CAIT_FIREFOX at them. Browser tests will skip otherwise." \
  "Browser tests will skip." \
  "${PKGS[@]}" || exit 0

for b in /usr/bin/chromium /usr/bin/firefox-esr; do
  [ -x "$b" ] && say "$b: $("$b" --version 2>/dev/null | head -1)" || say "$b: missing (its browser tests will skip)"
done
exit 0
