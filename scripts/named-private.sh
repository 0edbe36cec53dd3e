#!/usr/bin/env bash
# A private BIND `named` on 127.0.0.1 for demos and benchmarks (the Rust
# tests use tests/it/support/named.rs, which sets up the same thing).
#
#   named-private.sh start DIR [PORT] [CTLPORT] [INCLUDE]
#   named-private.sh stop DIR
#   named-private.sh status DIR
#
# start writes DIR/named.conf, DIR/rndc.conf and DIR/rndc.key, includes
# INCLUDE (default DIR/zones.conf, created empty if missing), starts named
# (pid in DIR/named.pid, log in DIR/named.log), waits until `rndc status`
# answers and prints shell-sourceable lines on stdout:
#
#   NAMED_PORT=5353
#   NAMED_CTL_PORT=9953
#   RNDC="/usr/sbin/rndc -c DIR/rndc.conf -s 127.0.0.1 -p 9953"
#
#   eval "$(scripts/named-private.sh start /tmp/ns)"
#   $RNDC reconfig; dig @127.0.0.1 -p "$NAMED_PORT" example.test SOA
#   scripts/named-private.sh stop /tmp/ns
#
# Ports default to 5353 (DNS, UDP+TCP) and 9953 (rndc); start refuses a port
# that is already in use: two nameds can share a port without error and the
# kernel then splits queries between them. stop is idempotent (by pid file).
# status exits 0 when running (and prints the same lines), 3 when not.
# Works as root and as a normal user: nothing is written outside DIR.
set -euo pipefail

# named, rndc and tsig-keygen live in /usr/sbin, which a non-root PATH lacks.
PATH="$PATH:/usr/sbin:/usr/local/sbin:/sbin"

readonly KEY_NAME="zoneagent-private-rndc"
readonly START_TIMEOUT_DS=100 # tenths of a second
readonly STOP_TIMEOUT_DS=100

die() {
    printf 'named-private: %s\n' "$*" >&2
    exit 1
}

usage() {
    cat >&2 <<'EOF'
usage: named-private.sh start DIR [PORT] [CTLPORT] [INCLUDE]
       named-private.sh stop DIR
       named-private.sh status DIR
EOF
    exit 2
}

need() {
    command -v "$1" >/dev/null 2>&1 ||
        die "$1 not found; install BIND 9: apt-get install -y bind9 bind9-utils bind9-dnsutils"
}

# Absolute path of $1 (a file that need not exist yet, in an existing dir).
abspath() {
    local parent
    parent=$(cd "$(dirname -- "$1")" && pwd -P) || die "no such directory: $(dirname -- "$1")"
    printf '%s/%s\n' "$parent" "$(basename -- "$1")"
}

# Paths go into named.conf strings and into the word-split $RNDC line.
check_path() {
    case "$1" in
    *[[:space:]\"\\]*) die "path must not contain whitespace, quotes or backslashes: $1" ;;
    esac
}

check_port() {
    if ! [[ "$1" =~ ^[1-9][0-9]{0,4}$ ]] || (($1 > 65535)); then
        die "not a port number: $1"
    fi
}

# True if anything holds port $1: a TCP listener or any UDP socket, IPv4 or
# IPv6, on any address (a wildcard bind would clash with 127.0.0.1 too).
port_in_use() {
    local hex files=() f
    hex=$(printf '%04X' "$1")
    for f in /proc/net/tcp /proc/net/tcp6 /proc/net/udp /proc/net/udp6; do
        [[ -r "$f" ]] && files+=("$f")
    done
    ((${#files[@]})) || die "cannot read /proc/net to check ports"
    awk -v hex="$hex" '
        FNR > 1 {
            n = split($2, addr, ":")
            if (addr[n] == hex && (FILENAME ~ /udp/ || $4 == "0A")) found = 1
        }
        END { exit !found }' "${files[@]}"
}

# Pid of the named started for DIR $1, if it is running; empty otherwise.
# The command line must name our config, so a stale pid file whose pid was
# reused (or a zombie, whose cmdline is empty) never counts.
running_pid() {
    local pidfile="$1/named.pid" pid cmdline
    [[ -r "$pidfile" ]] || return 0
    pid=$(tr -dc '0-9' <"$pidfile")
    [[ -n "$pid" && -r "/proc/$pid/cmdline" ]] || return 0
    cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 0
    [[ "$cmdline" == *"-c $1/named.conf"* ]] && printf '%s\n' "$pid"
    return 0
}

log_tail() {
    {
        printf -- '--- %s/named.log (tail) ---\n' "$1"
        tail -n 30 "$1/named.log" 2>/dev/null || true
        if [[ -s "$1/named.stderr" ]]; then
            printf -- '--- %s/named.stderr ---\n' "$1"
            tail -n 30 "$1/named.stderr"
        fi
    } >&2
}

rndc_cmd() { # DIR CTLPORT -> the argv prefix, one line
    printf '%s -c %s/rndc.conf -s 127.0.0.1 -p %s\n' "$(command -v rndc)" "$1" "$2"
}

cmd_start() {
    (($# >= 1 && $# <= 4)) || usage
    local dir port="${2:-5353}" ctl="${3:-9953}" include pid rndc i
    check_port "$port"
    check_port "$ctl"
    [[ "$port" != "$ctl" ]] || die "PORT and CTLPORT must differ"
    need named
    need rndc
    need tsig-keygen

    check_path "$1"
    if [[ -d "$1" ]]; then
        dir=$(cd "$1" && pwd -P)
        pid=$(running_pid "$dir")
        [[ -z "$pid" ]] || die "named already running for $dir (pid $pid); run: $0 stop $dir"
    fi
    if port_in_use "$port"; then
        die "port $port (UDP or TCP) on this host is already in use; pick another PORT"
    fi
    if port_in_use "$ctl"; then
        die "control port $ctl is already in use; pick another CTLPORT"
    fi

    mkdir -p -- "$1"
    dir=$(cd "$1" && pwd -P)
    check_path "$dir"
    include=$(abspath "${4:-$dir/zones.conf}")
    check_path "$include"

    [[ -e "$include" ]] || : >"$include"
    (
        umask 077
        tsig-keygen -a hmac-sha256 "$KEY_NAME" >"$dir/rndc.key"
    )
    cat >"$dir/rndc.conf" <<EOF
include "$dir/rndc.key";
options {
    default-key "$KEY_NAME";
    default-server 127.0.0.1;
    default-port $ctl;
};
EOF
    # lock-file and session-keyfile default to /run/named, shared with the
    # system named (and not writable by a normal user). dnssec-validation no:
    # no trust-anchor refresh, hence no resolver priming queries off the box.
    cat >"$dir/named.conf" <<EOF
// Private named written by scripts/named-private.sh.
include "$dir/rndc.key";

options {
    directory "$dir";
    managed-keys-directory "$dir";
    pid-file "$dir/named.pid";
    lock-file "$dir/named.lock";
    session-keyfile "$dir/session.key";
    listen-on port $port { 127.0.0.1; };
    listen-on-v6 { none; };
    recursion no;
    dnssec-validation no;
    notify no;
    allow-new-zones yes;
    automatic-interface-scan no;
    interface-interval 0;
};

controls {
    inet 127.0.0.1 port $ctl allow { 127.0.0.1; } keys { "$KEY_NAME"; };
};

logging {
    channel private_log {
        file "$dir/named.log";
        severity info;
        print-time yes;
        print-severity yes;
        print-category yes;
    };
    category default { private_log; };
};

include "$include";
EOF

    # Without -f/-g named daemonizes once its configuration has loaded and
    # exits non-zero if that failed; -L sends messages logged before the
    # logging statement applies (config errors) to the log, not syslog.
    # stdio goes to a file so `eval "$(… start …)"` does not wait on named.
    if ! named -4 -L "$dir/named.log" -c "$dir/named.conf" \
        </dev/null >>"$dir/named.stderr" 2>&1; then
        log_tail "$dir"
        die "named failed to start"
    fi

    rndc=$(rndc_cmd "$dir" "$ctl")
    for ((i = 0; i < START_TIMEOUT_DS; i++)); do
        # shellcheck disable=SC2086 # $rndc is an argv prefix without spaces in its words
        if $rndc status >/dev/null 2>&1; then
            printf 'NAMED_PORT=%s\nNAMED_CTL_PORT=%s\nRNDC="%s"\n' "$port" "$ctl" "$rndc" |
                tee "$dir/named.env"
            printf 'named-private: running, pid %s, log %s/named.log\n' \
                "$(running_pid "$dir")" "$dir" >&2
            return 0
        fi
        sleep 0.1
    done
    log_tail "$dir"
    cmd_stop "$dir" >&2
    die "named did not answer rndc status within $((START_TIMEOUT_DS / 10)) s"
}

cmd_stop() {
    (($# == 1)) || usage
    local dir pid i
    [[ -d "$1" ]] || {
        printf 'named-private: %s: no such directory, nothing to stop\n' "$1" >&2
        return 0
    }
    dir=$(cd "$1" && pwd -P)
    pid=$(running_pid "$dir")
    if [[ -z "$pid" ]]; then
        rm -f -- "$dir/named.pid"
        printf 'named-private: not running (%s)\n' "$dir" >&2
        return 0
    fi
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < STOP_TIMEOUT_DS; i++)); do
        [[ -n "$(running_pid "$dir")" ]] || break
        sleep 0.1
    done
    if [[ -n "$(running_pid "$dir")" ]]; then
        printf 'named-private: pid %s ignored SIGTERM for %s s, sending SIGKILL\n' \
            "$pid" "$((STOP_TIMEOUT_DS / 10))" >&2
        kill -KILL "$pid" 2>/dev/null || true
        for ((i = 0; i < 50; i++)); do
            [[ -n "$(running_pid "$dir")" ]] || break
            sleep 0.1
        done
        [[ -z "$(running_pid "$dir")" ]] || die "pid $pid survived SIGKILL"
    fi
    rm -f -- "$dir/named.pid"
    printf 'named-private: stopped pid %s (%s)\n' "$pid" "$dir" >&2
}

cmd_status() {
    (($# == 1)) || usage
    local dir pid
    [[ -d "$1" ]] || {
        printf 'named-private: not running (%s: no such directory)\n' "$1" >&2
        exit 3
    }
    dir=$(cd "$1" && pwd -P)
    pid=$(running_pid "$dir")
    if [[ -z "$pid" ]]; then
        printf 'named-private: not running (%s)\n' "$dir" >&2
        exit 3
    fi
    cat "$dir/named.env"
    printf 'named-private: running, pid %s (%s)\n' "$pid" "$dir" >&2
}

(($# >= 1)) || usage
command=$1
shift
case "$command" in
start) cmd_start "$@" ;;
stop) cmd_stop "$@" ;;
status) cmd_status "$@" ;;
*) usage ;;
esac
