#!/usr/bin/env bash
# The test command: installs what the tests need (BIND 9 from Debian's
# packages, systemd for systemd-analyze) when it is missing, then runs
# rustfmt, clippy and every test, including those against a real named.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v named >/dev/null 2>&1 || [ -x /usr/sbin/named ] || need+=(bind9)
command -v named-checkzone >/dev/null 2>&1 || need+=(bind9-utils)
command -v dig >/dev/null 2>&1 || need+=(bind9-dnsutils)
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
command -v python3 >/dev/null 2>&1 || need+=(python3)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing packages: ${need[*]}; run as root or install them" >&2
    exit 1
  fi
  echo "installing: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

cargo fmt --all --check
cargo clippy --all-targets --locked -- -D warnings
cargo build --locked
scripts/check-systemd.sh target/debug/zoneagent
cargo test --locked -- --skip crash:: --skip hostile_ --skip fuzz_regressions::
# The proof tests on their own, printing their figures (kills survived,
# events checked, bad inputs tried, fuzz inputs replayed).
cargo test --locked --test it -- crash:: hostile_ fuzz_regressions:: --nocapture
# The system benchmark's quick mode (100 zones, private named): it prints
# its table, every figure beside named's own from the same run.
cargo build --release --locked
python3 benches/system/run.py --quick --no-build
# The Debian package: build, lintian, dpkg -i, check, purge. Only as root
# (it installs a package; CI runs as root), with the quick deb-check profile.
if [ "$(id -u)" -eq 0 ]; then
  ZONEAGENT_DEB_PROFILE=deb-check scripts/deb.sh
fi
