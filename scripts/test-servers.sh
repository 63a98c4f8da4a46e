#!/usr/bin/env bash
# Install (if missing) and start the servers the integration tests talk to, then wait until
# each answers. Idempotent: a server whose port already answers is left alone. Quiet unless
# something fails. Usage: bash test-servers.sh [start|stop]
#   memcached        127.0.0.1:11211
#   redis            127.0.0.1:6379
#   redis cluster    127.0.0.1:7000-7002 (3 masters, no replicas)
#   SecantusDB       127.0.0.1:27017 (MongoDB wire protocol, in-memory, standalone)
set -euo pipefail

TS_DIR=${TS_DIR:-${TMPDIR:-/tmp}/test-servers}   # pid files, logs, redis cluster state
TS_VENV=${TS_VENV:-$HOME/.cache/test-servers-venv}
MONGO_PORT=${MONGO_PORT:-27017}
SECANTUS_PIN=${SECANTUS_PIN:-secantusdb==0.7.0b3}
CLUSTER_PORTS=(7000 7001 7002)

log() { echo "test-servers: $*" >&2; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_for() { # wait_for NAME SECONDS CMD...
  local name=$1 budget=$2 deadline=$((SECONDS + $2)); shift 2
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then log "$name not ready after ${budget}s"; return 1; fi
    sleep 0.1
  done
}
mc_up() { [[ $(printf 'version\r\n' | timeout 2 bash -c 'exec 3<>/dev/tcp/127.0.0.1/11211; cat >&3; head -c 7 <&3' 2>/dev/null) == VERSION ]]; }
redis_up() { [[ $(redis-cli -p "$1" ping 2>/dev/null) == PONG ]]; }
cluster_up() {
  local p
  for p in "${CLUSTER_PORTS[@]}"; do
    redis-cli -p "$p" cluster info 2>/dev/null | grep -q '^cluster_state:ok' || return 1
  done
}
mongo_up() {
  "$TS_VENV/bin/python" -c 'import sys,pymongo; pymongo.MongoClient(sys.argv[1], serverSelectionTimeoutMS=1000).admin.command("ping")' \
    "mongodb://127.0.0.1:$MONGO_PORT/"
}

stop_all() {
  local f
  for f in "$TS_DIR"/*.pid "$TS_DIR"/*/*.pid; do
    [[ -f $f ]] && kill "$(cat "$f")" 2>/dev/null || true
    rm -f "$f"
  done
}

start_all() {
  mkdir -p "$TS_DIR"

  # --- packages: apt (memcached, redis) and the SecantusDB venv, installed in parallel ---
  local need=() pip_pid=
  command -v memcached >/dev/null || need+=(memcached)
  command -v redis-server >/dev/null || need+=(redis-server)
  command -v redis-cli >/dev/null || need+=(redis-tools)
  if ! "$TS_VENV/bin/python" -c 'import secantus, pymongo' 2>/dev/null; then
    ( rm -rf "$TS_VENV" && python3 -m venv "$TS_VENV" \
      && "$TS_VENV/bin/pip" install -q --disable-pip-version-check "$SECANTUS_PIN" ) \
      >"$TS_DIR/pip.log" 2>&1 &
    pip_pid=$!
  fi
  if ((${#need[@]})); then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >"$TS_DIR/apt.log" 2>&1 \
      && apt-get install -y -qq --no-install-recommends "${need[@]}" >>"$TS_DIR/apt.log" 2>&1 \
      || { log "apt-get failed, see $TS_DIR/apt.log"; tail -5 "$TS_DIR/apt.log" >&2; return 1; }
  fi

  # --- memcached ---
  if ! mc_up; then
    install -d -o memcache "$TS_DIR/memcached"   # memcached writes its pid file after dropping root
    memcached -d -u memcache -l 127.0.0.1 -p 11211 -U 0 -m 64 -P "$TS_DIR/memcached/memcached.pid"
  fi

  # --- redis single ---
  redis_up 6379 || redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save '' --appendonly no \
    --dir "$TS_DIR" --pidfile "$TS_DIR/redis-6379.pid" --logfile "$TS_DIR/redis-6379.log"

  # --- redis cluster: 3 masters ---
  local p
  if ! cluster_up; then
    for p in "${CLUSTER_PORTS[@]}"; do
      redis-cli -p "$p" shutdown nosave >/dev/null 2>&1 || true   # half-built leftovers
    done
    for p in "${CLUSTER_PORTS[@]}"; do
      wait_for "port $p to close" 10 bash -c "! (exec 3<>/dev/tcp/127.0.0.1/$p)"
      rm -rf "$TS_DIR/redis-$p" && mkdir -p "$TS_DIR/redis-$p"
      redis-server --daemonize yes --bind 127.0.0.1 --port "$p" --dir "$TS_DIR/redis-$p" \
        --cluster-enabled yes --cluster-config-file nodes.conf --cluster-node-timeout 5000 \
        --save '' --appendonly no --pidfile "$TS_DIR/redis-$p/redis.pid" --logfile "$TS_DIR/redis-$p/redis.log"
    done
    for p in "${CLUSTER_PORTS[@]}"; do wait_for "redis $p" 10 redis_up "$p"; done
    redis-cli --cluster create "${CLUSTER_PORTS[@]/#/127.0.0.1:}" --cluster-replicas 0 --cluster-yes \
      >"$TS_DIR/redis-cluster-create.log" 2>&1 \
      || { log "redis cluster create failed"; tail -5 "$TS_DIR/redis-cluster-create.log" >&2; return 1; }
  fi

  # --- SecantusDB (MongoDB wire protocol) ---
  if [[ -n $pip_pid ]] && ! wait "$pip_pid"; then
    log "pip install $SECANTUS_PIN failed"; tail -5 "$TS_DIR/pip.log" >&2; return 1
  fi
  if ! port_open "$MONGO_PORT"; then
    # Launched through its Python API: the secantusd-py CLI ignores ttl_sweep_seconds
    # (TTL monitor every 60 s, like mongod); 1 s makes TTL tests fast.
    nohup "$TS_VENV/bin/python" -c '
import signal, sys
from secantus.server import SecantusDBServer
s = SecantusDBServer(host="127.0.0.1", port=int(sys.argv[1]), storage_path=":memory:",
                     replica_set_name=None, enable_test_commands=False,
                     ttl_sweep_seconds=1.0, cache_size="256M")
signal.signal(signal.SIGTERM, lambda *_: (s.stop(), sys.exit(0)))
s.start(); s.wait()' "$MONGO_PORT" >"$TS_DIR/mongo.log" 2>&1 &
    echo $! >"$TS_DIR/mongo.pid"
  fi

  # --- wait for everything ---
  wait_for memcached 10 mc_up
  wait_for "redis 6379" 10 redis_up 6379
  wait_for "redis cluster" 30 cluster_up
  wait_for "SecantusDB" 30 mongo_up || { tail -5 "$TS_DIR/mongo.log" >&2; return 1; }
}

case ${1:-start} in
  start) start_all ;;
  stop) stop_all ;;
  *) log "usage: $0 [start|stop]"; exit 2 ;;
esac
