# Sourced by scripts/setup-*.sh: apt-installs the Debian packages that are
# missing, never failing the caller's run. The caller defines say() (its
# prefixed message).
#
# apt_ensure LOG NO_APT NO_SUDO PKG...
#   LOG      apt's output goes here (appended after the first try)
#   NO_APT   said after "install by hand: PKG... (Debian names)" when there is no apt-get/dpkg
#   NO_SUDO  said after the missing list when not root and no passwordless sudo
# Returns 1, having said why, when it could not try (no apt, no root); else 0,
# with "could not install P" said for any package that would not install.
apt_ensure() {
  local log=$1 no_apt=$2 no_sudo=$3; shift 3
  local pkgs=("$@") missing=() p SUDO=""
  if ! command -v apt-get >/dev/null 2>&1 || ! command -v dpkg-query >/dev/null 2>&1; then
    say "no apt-get/dpkg here; install by hand: ${pkgs[*]} (Debian names)$no_apt"
    return 1
  fi
  for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    say "all present (${pkgs[*]})"
    return 0
  fi
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
      say "not root and no passwordless sudo; missing: ${missing[*]}. $no_sudo"
      return 1
    fi
  fi
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if ! $SUDO apt-get install -y --no-install-recommends "${missing[@]}" >"$log" 2>&1; then
    # stale or absent package lists in a fresh container: refresh once and retry
    $SUDO apt-get update >>"$log" 2>&1 || true
    if ! $SUDO apt-get install -y --no-install-recommends "${missing[@]}" >>"$log" 2>&1; then
      # one package may be unavailable (e.g. chromium on another distribution): take what installs
      for p in "${missing[@]}"; do
        $SUDO apt-get install -y --no-install-recommends "$p" >>"$log" 2>&1 || say "could not install $p (see $log)"
      done
    fi
  fi
  return 0
}
