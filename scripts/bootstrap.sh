#!/usr/bin/env bash
# One bootstrap for `npm run demo`, `npm test`, `npm run bench` and .ci/run:
# installs the Debian packages flowgrab's lab needs, runs `npm ci` when
# node_modules is missing or older than package-lock.json, and builds.
# Idempotent; takes a second or two when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

quiet=0
[[ "${1:-}" == "--quiet" ]] && quiet=1
say() { [[ $quiet == 1 ]] || printf 'bootstrap: %s\n' "$*" >&2; }

# Debian packages: the kernel tools the lab, the tests and the demo drive.
apt_packages=(iproute2 nats-server nftables iptables conntrack dnsmasq-base dnsutils iputils-ping netcat-openbsd socat procps kmod time
  nfdump tshark softflowd ulogd2 mosquitto mosquitto-clients chromium sqlite3 curl)
missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) != 0 ]]; then
    echo "bootstrap: missing Debian packages: ${missing[*]}" >&2
    echo "bootstrap: run as root (sudo npm test / sudo npm run demo), or install them: sudo apt-get install ${missing[*]}" >&2
    exit 1
  fi
  if ! command -v apt-get >/dev/null; then
    echo "bootstrap: no apt-get here; install these by hand: ${missing[*]}" >&2
    exit 1
  fi
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm dependencies: reinstall when the lockfile changed since the last install.
stamp=node_modules/.flowgrab-lock
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [[ ! -f $stamp || $(cat "$stamp") != "$want" ]]; then
  say "npm ci"
  npm ci --no-audit --no-fund --loglevel=error >&2
  echo "$want" >"$stamp"
fi

# Build when any TypeScript source is newer than the last build.
built=dist/.build-stamp
if [[ ! -f $built ]] || [[ -n $(find src test bench examples scripts/bundle-cli.mjs tsconfig.json package.json -newer "$built" \( -name '*.ts' -o -name '*.json' -o -name '*.html' -o -name '*.css' -o -name '*.mjs' \) -print -quit 2>/dev/null) ]]; then
  say "building"
  npm run --silent build
  touch "$built"
fi
