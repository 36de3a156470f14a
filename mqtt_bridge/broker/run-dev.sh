#!/usr/bin/env bash
# `make run`: a development Mosquitto on loopback, the simulated room and the clinic archive
# (clinicd) against it.
# Environment: PORT (first port to try, default 1883), ROOM (default room-dev),
# DATA (journal folder, default .run), TIME_SCALE (default 1).
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
port=${PORT:-1883}
room=${ROOM:-room-dev}
data=${DATA:-$top/.run}
scale=${TIME_SCALE:-1}
mkdir -p "$data"

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for _ in $(seq 1 20); do port_busy "$port" || break; port=$((port + 1)); done
if port_busy "$port"; then echo "run-dev: no free port near ${PORT:-1883}" >&2; exit 1; fi
wsport=$((port + 8000))
for _ in $(seq 1 20); do port_busy "$wsport" || break; wsport=$((wsport + 1)); done

{
  cat "$top/mqtt_bridge/broker/dev.conf"
  echo "listener $port 127.0.0.1"
  echo "listener $wsport 127.0.0.1"
  echo "protocol websockets"
  echo "http_dir $top/mqtt_bridge/tablet"
} > "$data/mosquitto.conf"
cat > "$data/roomd.toml" <<TOML
[room]
id = "$room"
site = "dev"
[mqtt]
host = "127.0.0.1"
port = $port
TOML
cat > "$data/clinicd.toml" <<TOML
[mqtt]
host = "127.0.0.1"
port = $port
TOML

mosquitto -c "$data/mosquitto.conf" &
broker=$!
archive=""
trap 'kill $archive $broker 2>/dev/null || true' EXIT
for _ in $(seq 1 50); do port_busy "$port" && break; sleep 0.1; done
"$top/.venv/bin/clinicd" --config "$data/clinicd.toml" --data-dir "$data/archive" \
  2>>"$data/clinicd.log" &
archive=$!

cat <<MSG
------------------------------------------------------------------------------------------
 Simulated room '$room' on the dev broker 127.0.0.1:$port (journal in $data).
 In another terminal:
   export ROOMCTL_PORT=$port ROOMCTL_BY=dr-you
   $top/.venv/bin/roomctl --room $room watch
   $top/.venv/bin/roomctl --room $room plan $top/docs/example-plan.json
   $top/.venv/bin/roomctl --room $room start_session
   $top/.venv/bin/roomctl --room $room advance        # … and so on: see README.md
 The tablet page: http://127.0.0.1:$wsport/ (any user name and password on this dev broker).
 The clinic archive (clinicd) runs beside them (log: $data/clinicd.log); ask it with
   mosquitto_rr -p $port -t clinic/archive/cmd/rooms -e clinic/archive/replies -m '{"request_id":"r1","by":"dr-you"}'
   $top/.venv/bin/clinicd report P-7F3A --config $data/clinicd.toml --data-dir $data/archive
 Ctrl-C stops the room, the archive and the broker.
------------------------------------------------------------------------------------------
MSG
"$top/.venv/bin/roomd" --simulate --time-scale "$scale" --config "$data/roomd.toml" --data-dir "$data"
