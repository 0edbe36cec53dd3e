#!/usr/bin/env bash
# The main job on a fresh machine: installs BIND 9 if it is missing, builds
# zoneagent, starts a private named on 127.0.0.1 (DNS port 5353, rndc 9953
# unless NAMED_PORT / NAMED_CTL_PORT say otherwise), imports the sample
# zones from testdata/samples/dump.json, shows dig answering from them,
# sends one change event through the agent, and shows the new answer.
#
# On a terminal it then runs the agent daemon in the foreground (events in
# DIR/spool/new or on the socket DIR/agent.sock, metrics at
# http://127.0.0.1:METRICS_PORT/metrics, default 9853) until Ctrl-C;
# elsewhere, or with --no-serve, it runs the daemon for a moment to show
# one scrape of its metrics, and stops. named is stopped on exit either way.
#
#   scripts/demo.sh [--no-serve] [DIR]      (DIR defaults to /tmp/zoneagent-demo)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

serve=auto
if [ "${1:-}" = "--no-serve" ]; then serve=no; shift; fi
dir=${1:-/tmp/zoneagent-demo}
port=${NAMED_PORT:-5353}
ctl=${NAMED_CTL_PORT:-9953}
metrics_port=${METRICS_PORT:-9853}

need=()
command -v named >/dev/null 2>&1 || [ -x /usr/sbin/named ] || need+=(bind9)
command -v named-checkzone >/dev/null 2>&1 || need+=(bind9-utils)
command -v dig >/dev/null 2>&1 || need+=(bind9-dnsutils)
command -v curl >/dev/null 2>&1 || need+=(curl)
if [ ${#need[@]} -gt 0 ]; then
  [ "$(id -u)" -eq 0 ] || { echo "install first: apt-get install -y ${need[*]}" >&2; exit 1; }
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

cargo build --release --locked --quiet
bin="$root/target/release/zoneagent"

scripts/named-private.sh stop "$dir/named" >/dev/null 2>&1 || true
rm -rf "$dir"
mkdir -p "$dir"
eval "$(scripts/named-private.sh start "$dir/named" "$port" "$ctl" "$dir/named.conf.zoneagent")"
trap 'scripts/named-private.sh stop "$dir/named" >/dev/null 2>&1 || true' EXIT
read -r -a rndc <<<"$RNDC"

rndc_toml=$(printf '"%s", ' "${rndc[@]}")
cat >"$dir/zoneagent.toml" <<TOML
[paths]
spool = "$dir/spool"
state = "$dir/state"
zones = "$dir/zones"
include = "$dir/named.conf.zoneagent"

[bind]
rndc = [${rndc_toml%, }]
server = "127.0.0.1:$NAMED_PORT"

[socket]
path = "$dir/agent.sock"

[metrics]
listen = "127.0.0.1:$metrics_port"
TOML

echo "== import testdata/samples/dump.json"
"$bin" --config "$dir/zoneagent.toml" import testdata/samples/dump.json
"$bin" --config "$dir/zoneagent.toml" status
q() { echo "\$ dig @127.0.0.1 -p $NAMED_PORT +short $*"; dig @127.0.0.1 -p "$NAMED_PORT" +short +norec "$@"; }
q example.com SOA
q example.com MX
q www.example.com AAAA
q _dmarc.myapp.io TXT

echo "== one change event through the spool"
echo '{"id": "demo-1", "type": "record.created", "zone_uuid": "abc123-def456-ghi789",
 "record": {"uuid": "rec-demo", "record_type": "A", "name": "demo", "value": "192.0.2.99", "ttl": 60}}' |
  "$bin" --config "$dir/zoneagent.toml" submit -
"$bin" --config "$dir/zoneagent.toml" run --once
q demo.example.com A
q example.com SOA

if [ "$serve" = auto ] && [ -t 0 ]; then
  echo "== the agent is running; submit events with:"
  echo "   $bin --config $dir/zoneagent.toml submit EVENT.json"
  echo "   or one JSON event per line to the socket $dir/agent.sock; Ctrl-C stops"
  echo "   metrics: curl 127.0.0.1:$metrics_port/metrics   health: curl 127.0.0.1:$metrics_port/healthz"
  "$bin" --config "$dir/zoneagent.toml" run
else
  echo "== the daemon for a moment, and one scrape of its metrics"
  "$bin" --config "$dir/zoneagent.toml" run 2>"$dir/daemon.log" &
  agent=$!
  for _ in $(seq 50); do
    curl -sf "127.0.0.1:$metrics_port/healthz" >/dev/null 2>&1 && break
    sleep 0.1
  done
  echo "\$ curl 127.0.0.1:$metrics_port/healthz"
  curl -s "127.0.0.1:$metrics_port/healthz" || true
  echo "\$ curl -s 127.0.0.1:$metrics_port/metrics | grep -E '^zoneagent_(events_total|zones|build_info)'"
  curl -s "127.0.0.1:$metrics_port/metrics" | grep -E '^zoneagent_(events_total|zones|build_info)' || true
  kill -TERM "$agent"
  wait "$agent" || true
fi
