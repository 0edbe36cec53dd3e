#!/usr/bin/env bash
# Checks the files in systemd/ without a running systemd (CI runs as root in
# a container, with no systemd as PID 1):
#
#   1. `systemd-analyze verify` on zoneagent.service, with ExecStart= pointed
#      at BINARY: fails on any message about the unit (typos in keys are only
#      warnings to systemd, errors here).
#   2. `systemd-analyze security --offline=true`: prints the exposure score;
#      fails above ZONEAGENT_MAX_EXPOSURE (default 1.2; the unit scores 1.1
#      with systemd 252, Debian 12) or when a check fails that is not in
#      ACCEPTED below, so that dropping any one hardening option is caught
#      even when the score rounds to the same tenth.
#   3. zoneagent.sysusers.conf and zoneagent.tmpfiles.conf:
#      `systemd-sysusers` and `systemd-tmpfiles --create` into a scratch
#      root (which has BIND's bind user), and every directory must come out
#      of it with the owner, group and mode of OWNERSHIP below, every
#      ReadWritePaths= directory among them (as root only: chown needs it).
#   4. zoneagent.toml.example: BINARY must accept it (render a tiny zone),
#      and its [paths] must lie inside ReadWritePaths=, its socket under the
#      RuntimeDirectory=.
#   5. Identity: the unit runs as zoneagent (never bind or root) with bind
#      and zoneagent-submit as supplementary groups, and has TasksMax=,
#      MemoryMax= and LimitNOFILE=; the example gives the socket to
#      zoneagent-submit and never tells producers to join group bind.
#
#   usage: scripts/check-systemd.sh BINARY      e.g. target/debug/zoneagent
#
# Installs Debian's systemd (and procps, for ExecReload's /bin/kill) when
# missing; that needs root and apt. Exits 0 when all is well, 1 on a failed
# check, 2 on bad usage.
set -euo pipefail

# Checks allowed to fail, each for a reason the unit's header explains.
readonly ACCEPTED=(
    'RootDirectory=/RootImage='                 # runs BIND's tools from the host
    'PrivateNetwork='                           # rndc and DNS over 127.0.0.1
    'IPAddressDeny='                            # ... so localhost is allowed
    'RestrictAddressFamilies=~AF_(INET|INET6)'  # ... over IPv4/IPv6
    'RestrictAddressFamilies=~AF_UNIX'          # the event socket, NOTIFY_SOCKET
    'PrivateUsers='                             # SO_PEERCRED uids must be real
    'DeviceAllow='                              # char-rtc:r, implied by ProtectClock=
    'UMask='                                    # 0027: group bind may read
    'SupplementaryGroups='                      # bind (rndc.key, zones), zoneagent-submit (socket)
)
# Who owns what (zoneagent.tmpfiles.conf explains why): path, mode,
# user:group.
readonly OWNERSHIP=(
    '/var/spool/zoneagent 750 zoneagent:zoneagent-submit'
    '/var/spool/zoneagent/tmp 3770 zoneagent:zoneagent-submit'
    '/var/spool/zoneagent/new 3770 zoneagent:zoneagent-submit'
    '/var/spool/zoneagent/failed 2750 zoneagent:zoneagent-submit'
    '/var/lib/zoneagent 750 zoneagent:zoneagent'
    '/var/lib/bind/zoneagent 2750 zoneagent:bind'
    '/var/lib/bind/zoneagent/named.conf.zoneagent 640 zoneagent:bind'
)
readonly MAX_EXPOSURE="${ZONEAGENT_MAX_EXPOSURE:-1.2}"

die() {
    printf 'check-systemd: %s\n' "$*" >&2
    exit 1
}

[[ $# -eq 1 ]] || {
    printf 'usage: %s BINARY   (a built zoneagent, e.g. target/debug/zoneagent)\n' "$0" >&2
    exit 2
}
[[ -f $1 && -x $1 ]] || die "$1 is not an executable file"
bin=$(cd "$(dirname -- "$1")" && pwd -P)/$(basename -- "$1")
repo=$(cd "$(dirname -- "$0")/.." && pwd -P)
unit_src=$repo/systemd/zoneagent.service
tmpfiles_src=$repo/systemd/zoneagent.tmpfiles.conf
sysusers_src=$repo/systemd/zoneagent.sysusers.conf
example=$repo/systemd/zoneagent.toml.example
for f in "$unit_src" "$tmpfiles_src" "$sysusers_src" "$example"; do
    [[ -f $f ]] || die "missing $f"
done

# ASCII output ("+"/"-" instead of check marks), no colours, no pager.
export LC_ALL=C SYSTEMD_COLORS=0 SYSTEMD_PAGER=cat
PATH=$PATH:/usr/sbin:/sbin

if ! command -v systemd-analyze >/dev/null || ! command -v systemd-tmpfiles >/dev/null ||
    ! command -v systemd-sysusers >/dev/null || [[ ! -x /bin/kill ]]; then
    [[ $(id -u) -eq 0 ]] || die "systemd-analyze or /bin/kill missing; run as root to install them"
    command -v apt-get >/dev/null || die "systemd-analyze missing and no apt-get to install it"
    echo "== installing systemd and procps"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq -o Dpkg::Use-Pty=0 --no-install-recommends systemd procps >/dev/null
fi
systemd-analyze --version | head -n 1

tmp=$(mktemp -d "${TMPDIR:-/tmp}/check-systemd.XXXXXX")
trap 'rm -rf -- "$tmp"' EXIT
mkdir "$tmp/units"
unit=$tmp/units/zoneagent.service
failed=0
fail() {
    printf 'FAIL: %s\n' "$*"
    failed=1
}

# --- 1. verify ---------------------------------------------------------------
# The same unit with ExecStart= running BINARY: verify insists that it exists.
rewritten=0
while IFS= read -r line || [[ -n $line ]]; do
    if [[ $line == 'ExecStart=/usr/local/bin/zoneagent '* ]]; then
        line="ExecStart=$bin ${line#'ExecStart=/usr/local/bin/zoneagent '}"
        rewritten=$((rewritten + 1))
    fi
    printf '%s\n' "$line"
done <"$unit_src" >"$unit"
[[ $rewritten -eq 1 ]] || die "expected one 'ExecStart=/usr/local/bin/zoneagent …' line, found $rewritten"

echo "== systemd-analyze verify"
# Our directory first, then the system's (the trailing colon), for the
# targets the unit is ordered against. --man=no: no man pages in CI.
status=0
out=$(SYSTEMD_UNIT_PATH="$tmp/units:" systemd-analyze verify --man=no "$unit" 2>&1) || status=$?
if [[ -n $out ]]; then
    printf '%s\n' "$out" | sed 's/^/  /'
fi
if [[ $status -ne 0 ]]; then
    fail "systemd-analyze verify exited with status $status"
elif grep -qF zoneagent <<<"$out"; then
    fail "systemd-analyze verify warned about the unit"
else
    echo "  ok: no warnings"
fi

# --- 2. security -------------------------------------------------------------
echo "== systemd-analyze security --offline=true"
status=0
out=$(systemd-analyze security --offline=true --no-pager "$unit" 2>&1) || status=$?
score=$(sed -n 's/^.*Overall exposure level for zoneagent\.service: \([0-9][0-9.]*\).*$/\1/p' <<<"$out")
if [[ $status -ne 0 || -z $score ]]; then
    printf '%s\n' "$out"
    fail "systemd-analyze security failed (status $status)"
else
    # Failed checks are the lines marked "-" (ASCII for a cross).
    while read -r name; do
        accepted=0
        for a in "${ACCEPTED[@]}"; do
            [[ $name == "$a" ]] && accepted=1
        done
        if [[ $accepted -eq 1 ]]; then
            printf '  accepted: %s\n' "$name"
        else
            fail "security check $name is not met"
        fi
    done < <(sed -n 's/^- \([^ ]*\) .*$/\1/p' <<<"$out")
    grep 'Overall exposure level' <<<"$out" | sed 's/^[^A-Za-z]*/  /'
    if awk -v s="$score" -v m="$MAX_EXPOSURE" 'BEGIN { exit !(s + 0 <= m + 0) }'; then
        echo "  ok: exposure $score <= $MAX_EXPOSURE"
    else
        fail "exposure $score is above $MAX_EXPOSURE (ZONEAGENT_MAX_EXPOSURE)"
    fi
fi

# The directories the unit may write, and its runtime directory.
rw_paths=$(sed -n 's/^ReadWritePaths=//p' "$unit_src" | tr ' ' '\n' | sed '/^$/d; s/^[-+]//')
runtime_dir=$(sed -n 's/^RuntimeDirectory=//p' "$unit_src")
[[ -n $rw_paths ]] || fail "the unit has no ReadWritePaths="

# --- 3. sysusers and tmpfiles ------------------------------------------------
echo "== systemd-sysusers and systemd-tmpfiles --create (scratch root)"
if [[ $(id -u) -ne 0 ]]; then
    echo "  skipped: needs root to chown"
else
    root=$tmp/root
    mkdir -p "$root/etc"
    # BIND's bind user of our own: the host may not have BIND installed.
    printf 'root:x:0:0::/root:/bin/sh\nbind:x:4242:4242::/var/cache/bind:/usr/sbin/nologin\n' \
        >"$root/etc/passwd"
    printf 'root:x:0:\nbind:x:4242:\n' >"$root/etc/group"
    for step in "systemd-sysusers --root=$root $sysusers_src" \
        "systemd-tmpfiles --create --root=$root $tmpfiles_src"; do
        status=0
        out=$($step 2>&1) || status=$?
        # sysusers reports what it creates; anything else is a problem.
        out=$(grep -v '^Creating ' <<<"$out" || true)
        [[ -z $out ]] || printf '%s\n' "$out" | sed 's/^/  /'
        if [[ $status -ne 0 || -n $out ]]; then
            fail "${step%% *} exited with status $status"
        fi
    done
    for g in bind zoneagent-submit; do
        if grep -q "^$g:.*[:,]zoneagent\(,\|\$\)" "$root/etc/group"; then
            printf '  ok: zoneagent is in group %s\n' "$g"
        else
            fail "zoneagent.sysusers.conf does not put zoneagent in group $g"
        fi
    done
    if grep -q '^bind:.*[:,]\(bind\|zoneagent-submit\)' "$root/etc/group" ||
        grep -q '^zoneagent-submit:.*bind' "$root/etc/group"; then
        fail "bind and zoneagent-submit must stay apart"
    fi
    declare -A owned=()
    for row in "${OWNERSHIP[@]}"; do
        read -r path mode owner <<<"$row"
        owned[$path]=1
        if [[ ! -e $root$path ]]; then
            fail "$path is not created by zoneagent.tmpfiles.conf"
            continue
        fi
        # stat names users from the host's database: compare numbers.
        want_u=$(sed -n "s/^${owner%%:*}:x:\([0-9]*\):.*/\1/p" "$root/etc/passwd")
        want_g=$(sed -n "s/^${owner#*:}:x:\([0-9]*\):.*/\1/p" "$root/etc/group")
        got=$(stat -c '%a %u:%g' "$root$path")
        if [[ $got == "$mode $want_u:$want_g" ]]; then
            printf '  ok: %s %s %s\n' "$mode" "$path" "$owner"
        else
            fail "$path is $got, not $mode $owner ($want_u:$want_g)"
        fi
    done
    for d in $rw_paths; do
        [[ -n ${owned[$d]:-} ]] || fail "ReadWritePaths=$d has no row in OWNERSHIP"
    done
fi

# --- 4. the example config ---------------------------------------------------
echo "== zoneagent.toml.example"
cat >"$tmp/zone.json" <<'EOF'
{"uuid": "check-systemd", "domain": "example.test", "created_at": "2026-01-01T00:00:00Z",
 "records": [{"uuid": "r1", "record_type": "A", "name": "www", "value": "192.0.2.1",
              "ttl": 3600, "priority": null, "created_at": "2026-01-01T00:00:00Z"}]}
EOF
status=0
out=$("$bin" --config "$example" render "$tmp/zone.json" 2>&1) || status=$?
if [[ $status -ne 0 ]]; then
    printf '%s\n' "$out" | sed 's/^/  /'
    fail "$bin refused the example config (status $status)"
else
    echo "  ok: parses (render exit 0)"
fi
# Inside a writable directory? (The include's directory: the agent writes a
# temporary file beside it.)
inside_rw() {
    local p=$1 d
    for d in $rw_paths; do
        [[ $p == "$d" || $p == "$d"/* ]] && return 0
    done
    return 1
}
for key in spool state zones include; do
    value=$(sed -n "s/^$key = \"\\(.*\\)\"\$/\\1/p" "$example")
    [[ -n $value ]] || {
        fail "paths.$key is not set in the example"
        continue
    }
    [[ $key == include ]] && value=$(dirname -- "$value")
    if inside_rw "$value"; then
        printf '  ok: paths.%s under ReadWritePaths=\n' "$key"
    else
        fail "paths.$key ($value) is not under ReadWritePaths= of the unit"
    fi
done
socket=$(sed -n 's/^path = "\(.*\)"$/\1/p' "$example")
if [[ -n $runtime_dir && $(dirname -- "$socket") == "/run/$runtime_dir" ]]; then
    printf '  ok: socket.path in /run/%s (RuntimeDirectory=)\n' "$runtime_dir"
else
    fail "socket.path ($socket) is not in the unit's RuntimeDirectory= (/run/$runtime_dir)"
fi

# --- 5. identity -------------------------------------------------------------
echo "== identity and bounds"
unit_key() { sed -n "s/^$1=//p" "$unit_src"; }
if [[ $(unit_key User) == zoneagent ]]; then
    echo "  ok: User=zoneagent"
else
    fail "the unit must run as User=zoneagent, not '$(unit_key User)'"
fi
[[ $(unit_key Group) != bind ]] || fail "Group=bind makes named's group the agent's own"
for g in bind zoneagent-submit; do
    if tr ' ' '\n' <<<"$(unit_key SupplementaryGroups)" | grep -qx "$g"; then
        printf '  ok: SupplementaryGroups= has %s\n' "$g"
    else
        fail "SupplementaryGroups= lacks $g"
    fi
done
for key in TasksMax MemoryMax LimitNOFILE; do
    if [[ -n $(unit_key "$key") ]]; then
        printf '  ok: %s=%s\n' "$key" "$(unit_key "$key")"
    else
        fail "the unit has no $key="
    fi
done
if grep -q '^group = "zoneagent-submit"$' "$example"; then
    echo '  ok: socket.group = "zoneagent-submit" in the example'
else
    fail 'the example must give the socket to group zoneagent-submit (socket.group)'
fi
if grep -Eiq 'group = "bind"|(be|join|add[^.]*to) (in )?(the )?group bind' "$example"; then
    fail "the example tells producers to use group bind"
fi

if [[ $failed -ne 0 ]]; then
    echo "check-systemd: FAILED"
    exit 1
fi
echo "check-systemd: ok (exposure $score)"
