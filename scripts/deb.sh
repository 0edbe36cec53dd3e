#!/usr/bin/env bash
# Builds the Debian package, installs it on this machine with dpkg -i,
# checks it, and purges it again:
#
#   1. cargo build --release, then `zoneagent-assets target/assets` (man
#      pages, completions, the packaged unit and tmpfiles snippet), then
#      `cargo deb --no-build`: target/debian/zoneagent_*.deb;
#   2. lintian (errors fail; the warnings left are listed in the README);
#   3. dpkg -i, then: `zoneagent --version`, `man -w zoneagent` (and
#      zoneagent.toml(5), zoneagent-doctor(8)), `systemd-analyze verify` of
#      the installed unit, the user, groups and directories postinst made,
#      and `zoneagent doctor` against a private named (scripts/named-private.sh)
#      that includes the packaged include file: every line must be ok;
#   4. dpkg --purge, and the agent's state and spool must be gone.
#
#   usage: scripts/deb.sh          (as root: it installs a package)
#
# ZONEAGENT_DEB_PROFILE picks the cargo profile (default release; CI uses
# deb-check, an unoptimized build that takes a third of the CPU time).
#
# Installs cargo-deb (cargo install --locked, about 2 minutes on 2 cores,
# once), lintian and man-db when missing. Refuses to run when a zoneagent
# package is already installed, so it never replaces an operator's.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd -P)
PATH=$PATH:/usr/sbin:/sbin:$HOME/.cargo/bin

die() {
    printf 'deb.sh: %s\n' "$*" >&2
    exit 1
}

[[ $(id -u) -eq 0 ]] || die "run as root: it installs and purges the package"
if dpkg-query -W -f '${Status}' zoneagent 2>/dev/null | grep -q installed; then
    die "a zoneagent package is installed already; not touching it"
fi

need=()
command -v lintian >/dev/null || need+=(lintian)
command -v man >/dev/null && command -v mandb >/dev/null || need+=(man-db)
command -v systemd-analyze >/dev/null || need+=(systemd)
command -v adduser >/dev/null || need+=(adduser)
if [[ ${#need[@]} -gt 0 ]]; then
    echo "== installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq -o Dpkg::Use-Pty=0 --no-install-recommends "${need[@]}" >/dev/null
fi
if ! command -v cargo-deb >/dev/null; then
    echo "== cargo install cargo-deb --locked (once)"
    cargo install cargo-deb --locked
fi

profile=${ZONEAGENT_DEB_PROFILE:-release}
echo "== build (profile $profile)"
cargo build --profile "$profile" --locked --bins
rm -rf target/assets
"target/$profile/zoneagent-assets" target/assets
rm -f target/debian/zoneagent_*.deb
cargo deb --no-build --locked --profile "$profile"
deb=$(ls -t target/debian/zoneagent_*.deb | head -n 1)
echo "   $deb"

echo "== lintian"
# Errors fail; warnings are printed (the README says why each remains).
lintian --fail-on error --tag-display-limit 0 "$deb" | sed 's/^/   /' || die "lintian reported errors"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/deb-check.XXXXXX")
zones_dir_existed=1
named_dir=$tmp/named
cleanup() {
    runuser -u bind -- "$repo/scripts/named-private.sh" stop "$named_dir" >/dev/null 2>&1 || true
    if dpkg-query -W -f '${Status}' zoneagent 2>/dev/null | grep -q installed; then
        dpkg --purge zoneagent >/dev/null 2>&1 || true
    fi
    if [[ $zones_dir_existed -eq 0 ]]; then
        rm -rf -- "$zones_dir"
    fi
    rm -rf -- "$tmp"
}
trap cleanup EXIT

# The zones directory outlives a purge on purpose; remove it afterwards only
# if this script made it.
zones_dir=/var/lib/bind/zoneagent
zones_dir_existed=0
[[ -e $zones_dir ]] && zones_dir_existed=1

echo "== dpkg -i"
dpkg -i "$deb"

failed=0
fail() {
    printf '   FAIL: %s\n' "$*"
    failed=1
}
ok() {
    printf '   ok: %s\n' "$*"
}

echo "== checks"
version=$(zoneagent --version) || fail "zoneagent --version"
ok "$version"
for page in zoneagent zoneagent-doctor zoneagent-run "5 zoneagent.toml"; do
    # shellcheck disable=SC2086 # "5 zoneagent.toml" is section and page
    if where=$(man -w $page 2>/dev/null); then ok "man $page: $where"; else fail "man -w $page"; fi
done
unit=$(dpkg -L zoneagent | grep '/systemd/system/zoneagent.service$') || fail "no unit in the package"
out=$(systemd-analyze verify --man=no "$unit" 2>&1) || fail "systemd-analyze verify $unit"
if grep -qF zoneagent <<<"$out"; then
    printf '%s\n' "$out" | sed 's/^/   /'
    fail "systemd-analyze verify warned about $unit"
else
    ok "systemd-analyze verify $unit"
fi
if systemctl is-enabled zoneagent >/dev/null 2>&1; then fail "the unit is enabled"; else ok "unit installed disabled"; fi
id zoneagent | grep -q '(bind)' && ok "$(id zoneagent)" || fail "user zoneagent is not in group bind"
getent group zoneagent-submit >/dev/null && ok "group zoneagent-submit" || fail "no group zoneagent-submit"
# The owners systemd/zoneagent.tmpfiles.conf gives: producers' group on the
# spool, the agent's own on its state, named's on the zones.
for want in /var/spool/zoneagent=zoneagent:zoneagent-submit /var/lib/zoneagent=zoneagent:zoneagent \
    /var/lib/bind/zoneagent=zoneagent:bind; do
    d=${want%%=*}
    owner=$(stat -c %U:%G "$d" 2>/dev/null) || owner=missing
    [[ $owner == "${want#*=}" ]] && ok "$d $owner" || fail "$d is $owner, not ${want#*=}"
done
for f in /usr/share/bash-completion/completions/zoneagent /usr/share/zsh/vendor-completions/_zoneagent \
    /usr/share/fish/vendor_completions.d/zoneagent.fish /etc/zoneagent/zoneagent.toml; do
    [[ -f $f ]] && ok "$f" || fail "missing $f"
done

echo "== zoneagent doctor against a private named"
include=/var/lib/bind/zoneagent/named.conf.zoneagent
# As bind, as the system named runs: it reads the include through the
# package's group permissions (named started as root drops the
# capabilities that would let it read any file).
chmod 0755 "$tmp"
install -d -o bind -g bind "$named_dir"
started=0
for _ in 1 2 3 4 5; do
    port=$((20000 + RANDOM % 10000))
    if vars=$(runuser -u bind -- "$repo/scripts/named-private.sh" start "$named_dir" "$port" $((port + 1)) "$include" 2>"$tmp/named-start.err"); then
        started=1
        break
    fi
done
[[ $started -eq 1 ]] || die "could not start a private named: $(cat "$tmp/named-start.err")"
eval "$vars"
read -r -a rndc_argv <<<"$RNDC"
rndc_toml=$(printf '"%s", ' "${rndc_argv[@]}")
cat >"$tmp/zoneagent.toml" <<EOF
[bind]
rndc = [${rndc_toml%, }]
server = "127.0.0.1:$NAMED_PORT"
named_conf = "$named_dir/named.conf"
EOF
status=0
doctor=$(zoneagent --config "$tmp/zoneagent.toml" doctor) || status=$?
printf '%s\n' "$doctor" | sed 's/^/   /'
if [[ $status -ne 0 ]] || grep -qv '^ok ' <<<"$doctor"; then
    fail "zoneagent doctor is not all ok (exit $status)"
fi
runuser -u bind -- "$repo/scripts/named-private.sh" stop "$named_dir" >/dev/null

echo "== dpkg --purge"
dpkg --purge zoneagent
for d in /var/lib/zoneagent /var/spool/zoneagent /etc/zoneagent /usr/bin/zoneagent; do
    [[ ! -e $d ]] && ok "$d removed" || fail "$d left after purge"
done

if [[ $failed -ne 0 ]]; then
    echo "deb.sh: FAILED"
    exit 1
fi
echo "deb.sh: ok ($deb)"
