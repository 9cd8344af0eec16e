#!/bin/sh
# cli.sh — the tiers command line: help, version, check, run + SIGTERM.
# Prints TAP. Every process it starts is stopped by pid, also on failure.

: "${top_builddir:=.}"
: "${top_srcdir:=.}"
TIERS="$top_builddir/tiers"
dir=$(mktemp -d "${TMPDIR:-/tmp}/tiers-cli-XXXXXX")
pid=""
spid=""
TOOL="$top_builddir/t/cluster/tool"
cleanup () {
    [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    [ -n "$spid" ] && kill -9 "$spid" 2>/dev/null && wait "$spid" 2>/dev/null
    rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

n=0; failed=0
ok () {   # ok STATUS DESCRIPTION
    n=$((n + 1))
    if [ "$1" -eq 0 ]; then echo "ok $n - $2"
    else echo "not ok $n - $2"; failed=$((failed + 1)); fi
}
contains () { # contains FILE TEXT
    grep -qF -- "$2" "$1"
}
# wait_ready LOG...: up to 30 s for "; ready" in every LOG (sanitizer
# builds on a loaded CI machine start slowly)
wait_ready () {
    i=0
    while [ $i -lt 600 ]; do
        all=0
        for log in "$@"; do contains "$log" "; ready" || all=1; done
        [ $all -eq 0 ] && return 0
        sleep 0.05; i=$((i + 1))
    done
    return 1
}
# stop PID [SIG]: send SIG (TERM), wait up to 10 s for the exit; returns
# the exit status, or 124 after a kill -9 when it did not stop
stop () {
    kill -"${2:-TERM}" "$1" 2>/dev/null
    i=0
    while [ $i -lt 100 ] && kill -0 "$1" 2>/dev/null; do sleep 0.1; i=$((i + 1)); done
    if kill -0 "$1" 2>/dev/null; then
        kill -9 "$1" 2>/dev/null; wait "$1" 2>/dev/null; return 124
    fi
    wait "$1"
}
# Runs that must be refused get at most 10 s, in $dir: if a regression
# let one start, it must neither hang the suite nor leave ./tiers-data.
refused () { # refused ARGS...: runs tiers ARGS in $dir, output in $dir/out
    ( cd "$dir" && exec timeout -s KILL 10 "$TIERS" "$@" ) >"$dir/out" 2>&1
}

"$TIERS" --help >"$dir/out" 2>&1; ok $? "--help exits 0"
contains "$dir/out" "Usage: tiers"; ok $? "--help prints usage"
contains "$dir/out" "check"; ok $? "--help lists check"
"$TIERS" --version >"$dir/out" 2>&1; ok $? "--version exits 0"
grep -Eq '^tiers [0-9]+\.[0-9]+\.[0-9]+$' "$dir/out"; ok $? "--version prints tiers X.Y.Z"
"$TIERS" >"$dir/out" 2>&1; [ $? -eq 2 ]; ok $? "no command exits 2"
"$TIERS" frobnicate >"$dir/out" 2>&1; [ $? -eq 2 ]; ok $? "unknown command exits 2"
contains "$dir/out" "unknown command 'frobnicate'"; ok $? "unknown command is named"
"$TIERS" --bogus >"$dir/out" 2>&1; [ $? -eq 2 ]; ok $? "unknown option exits 2"
# Options go before or after the command (one parser reads both places).
sa="$top_srcdir/maps/storage-apart.map"
"$TIERS" -m "$sa" -n storage check >"$dir/out" 2>&1; ok $? "options before the command: check exits 0"
contains "$dir/out" "node storage"; ok $? "... and -n storage was taken"
"$TIERS" -m "$sa" check -n storage >"$dir/out" 2>&1; ok $? "options on both sides: check exits 0"
contains "$dir/out" "node storage"; ok $? "... and -n storage was taken"
"$TIERS" -l bogus check >"$dir/out" 2>&1; [ $? -eq 2 ]; ok $? "-l bogus before the command exits 2"
contains "$dir/out" "unknown log level 'bogus'"; ok $? "... and names the level"
"$TIERS" check -l bogus >"$dir/out" 2>&1; [ $? -eq 2 ]; ok $? "-l bogus after the command exits 2"
contains "$dir/out" "unknown log level 'bogus'"; ok $? "... and names the level"
"$TIERS" check --help >"$dir/out" 2>&1; ok $? "check --help exits 0"
contains "$dir/out" "Usage: tiers"; ok $? "... and prints usage"
"$TIERS" check -V >"$dir/out" 2>&1; ok $? "check -V exits 0"
"$TIERS" check --bogus >"$dir/out" 2>&1; [ $? -eq 2 ]; ok $? "an unknown option after the command exits 2"
"$TIERS" check stray >"$dir/out" 2>&1; [ $? -eq 2 ]; ok $? "a stray argument exits 2"
contains "$dir/out" "unexpected argument 'stray'"; ok $? "... and is named"
"$TIERS" kinds >"$dir/out" 2>&1; ok $? "kinds exits 0"
contains "$dir/out" "balancer"; ok $? "kinds lists balancer"
contains "$dir/out" "port requests (ROUTER)"; ok $? "kinds shows the ports a kind binds"
contains "$dir/out" "link shards -> shard requests (DEALER, every entry)"; ok $? "... and the links it connects"

# check: the built-in map, every example map and the bench maps are valid.
"$TIERS" check >"$dir/out" 2>&1; ok $? "check of the built-in map exits 0"
contains "$dir/out" "node box"; ok $? "plan names node box"
contains "$dir/out" "inproc://balancer"; ok $? "plan shows the balancer's endpoint"
for map in "$top_srcdir"/maps/*.map "$top_srcdir"/bench/*.map; do
    "$TIERS" check -m "$map" >"$dir/out" 2>&1; ok $? "check $(basename "$map") exits 0"
done
"$TIERS" check | sed 1d >"$dir/builtin.plan"
"$TIERS" check -m "$top_srcdir/maps/single-box.map" | sed 1d >"$dir/file.plan"
[ -s "$dir/builtin.plan" ] && cmp -s "$dir/builtin.plan" "$dir/file.plan"
ok $? "the built-in map places what maps/single-box.map places"
contains "$dir/builtin.plan" "http 127.0.0.1:8080 (public)"; ok $? "the built-in gateway listens on 127.0.0.1:8080"

# check: bad maps exit 2 with FILE:LINE: messages and start nothing.
cat >"$dir/bad.map" <<'MAP'
cluster
    name = bad
node = box
    balancer
        bind = inproc://balancer
        frequency = 3
    teleporter
MAP
"$TIERS" check -m "$dir/bad.map" >"$dir/out" 2>&1; [ $? -eq 2 ]; ok $? "check of a bad map exits 2"
contains "$dir/out" "$dir/bad.map:6: unknown key 'frequency'"; ok $? "bad key reported at line 6"
contains "$dir/out" "$dir/bad.map:7: unknown actor kind 'teleporter'"; ok $? "bad kind reported at line 7"
refused run -m "$dir/bad.map"; [ $? -eq 2 ]; ok $? "run of a bad map exits 2"
contains "$dir/out" "nothing was started"; ok $? "run of a bad map starts nothing"
sed -e 's/^    read-api$/    read-api\n        pool = read\/quoted/' "$top_srcdir/maps/single-box.map" >"$dir/badpool.map"
"$TIERS" check -m "$dir/badpool.map" >"$dir/out" 2>&1; [ $? -eq 2 ]; ok $? "a pool name with a slash: check exits 2"
line=$(grep -n 'pool = read/quoted' "$dir/badpool.map" | cut -d: -f1)
contains "$dir/out" "badpool.map:$line: bad pool 'read/quoted'"; ok $? "... naming file, line ($line) and value"
# A capacity the balancer would refuse (its READY limit is 10000) is a
# map error, not a worker that never joins its pool.
sed -e 's/^    read-api$/    read-api\n        capacity = 10001/' "$top_srcdir/maps/single-box.map" >"$dir/badcap.map"
"$TIERS" check -m "$dir/badcap.map" >"$dir/out" 2>&1; [ $? -eq 2 ]; ok $? "capacity 10001: check exits 2"
line=$(grep -n 'capacity = 10001' "$dir/badcap.map" | cut -d: -f1)
contains "$dir/out" "badcap.map:$line: bad capacity '10001'"; ok $? "... naming file, line ($line) and value"
sed -e 's/^    read-api$/    read-api\n        capacity = 10000/' "$top_srcdir/maps/single-box.map" >"$dir/cap.map"
"$TIERS" check -m "$dir/cap.map" >"$dir/out" 2>&1; ok $? "capacity 10000 (the balancer's limit) is accepted"
mkfifo "$dir/fifo.map"
timeout -s KILL 10 "$TIERS" check -m "$dir/fifo.map" >"$dir/out" 2>&1; [ $? -eq 2 ]; ok $? "a FIFO as the map: exits 2 at once, no wait for a writer"
contains "$dir/out" "fifo.map: cannot read: not a regular file"; ok $? "... saying it is not a regular file"
timeout -s KILL 10 "$TIERS" check -m "$dir" >"$dir/out" 2>&1; [ $? -eq 2 ]; ok $? "a directory as the map exits 2"
"$TIERS" check -m "$dir/missing.map" >"$dir/out" 2>&1; [ $? -eq 2 ]; ok $? "missing map exits 2"
contains "$dir/out" "missing.map"; ok $? "missing map is named"
"$TIERS" check -m "$top_srcdir/maps/storage-apart.map" -n storage >"$dir/out" 2>&1; ok $? "check -n storage exits 0"
contains "$dir/out" "node storage"; ok $? "check -n storage shows node storage"
if contains "$dir/out" "node web"; then ok 1 "check -n storage leaves node web out"; else ok 0 "check -n storage leaves node web out"; fi
contains "$dir/out" "(exporter on node storage)"; ok $? "check -n storage lists that node's listener"
if contains "$dir/out" "(gateway on node web)"; then ok 1 "check -n storage leaves the web node's listener out"; else ok 0 "check -n storage leaves the web node's listener out"; fi
refused run -m "$top_srcdir/maps/storage-apart.map" --http 127.0.0.1:9101; [ $? -eq 2 ]; ok $? "--http on the exporter's port exits 2"
contains "$dir/out" "port 9101 is exporter's listener (line"; ok $? "... naming what holds the port"
refused run -m "$top_srcdir/maps/storage-apart.map" -n storage --http 127.0.0.1:0; [ $? -eq 2 ]; ok $? "--http on a node without a gateway exits 2"
contains "$dir/out" "no gateway on node storage"; ok $? "... saying so"
refused run -n nosuchnode; [ $? -eq 2 ]; ok $? "unknown node exits 2"
contains "$dir/out" "no node 'nosuchnode'"; ok $? "unknown node is named"

# run, then SIGTERM: clean exit 0 within 10 s; SIGINT likewise.
for sig in TERM INT; do
    : >"$dir/run.log"       # emptied before the start (see api.sh's start_node)
    ( cd "$dir" && exec "$TIERS" run --http 127.0.0.1:0 ) >>"$dir/run.log" 2>&1 &
    pid=$!
    wait_ready "$dir/run.log"; ok $? "run (built-in map) reports ready"
    port=$(sed -n 's|.*listening on http://127.0.0.1:\([0-9]*\).*|\1|p' "$dir/run.log" | head -n 1)
    code=$(curl -s -m 5 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/health")
    [ "$code" = 200 ]; ok $? "the single-box cluster answers /health (SIG$sig run)"
    started=$(date +%s%N)
    stop "$pid" $sig; status=$?
    echo "# SIG$sig: stopped in $(( ($(date +%s%N) - started) / 1000000 )) ms"
    [ $status -ne 124 ]; ok $? "SIG$sig stops run within 10 s"
    [ $status -eq 0 ]; ok $? "exit status 0 after SIG$sig ($status)"
    pid=""
    contains "$dir/run.log" "stopped"; ok $? "run says it stopped (SIG$sig)"
    if contains "$dir/run.log" "dangling"; then ok 1 "no dangling sockets (SIG$sig)"; else ok 0 "no dangling sockets (SIG$sig)"; fi
done

# put_get LOG PATH BODY LABEL: PUT BODY at PATH of the gateway whose
# address LOG names (201), then GET it back
put_get () {
    port=$(sed -n 's|.*listening on http://127.0.0.1:\([0-9]*\).*|\1|p' "$1" | head -n 1)
    code=$(curl -s -m 5 -o /dev/null -w '%{http_code}' -X PUT -d "$3" "http://127.0.0.1:$port$2")
    [ "$code" = 201 ]; ok $? "$4: PUT is 201 ($code)"
    body=$(curl -s -m 5 "http://127.0.0.1:$port$2")
    [ "$body" = "$3" ]; ok $? "$4: GET returns the body ($body)"
}

# spin_us = 0: every actor sleeps at once when idle; the cluster still serves
sed -e "s|data = ./tiers-data|data = $dir/nospin-data|" -e "s|^    sync = full|    sync = full\n    spin_us = 0|" \
    "$top_srcdir/maps/single-box.map" >"$dir/nospin.map"
contains "$dir/nospin.map" "spin_us = 0"; ok $? "a single-box map with spin_us = 0"
"$TIERS" run -m "$dir/nospin.map" --http 127.0.0.1:0 >"$dir/nospin.log" 2>&1 &
pid=$!
wait_ready "$dir/nospin.log"; ok $? "spin_us = 0: ready"
put_get "$dir/nospin.log" /v1/t/a '{"spin":0}' "spin_us = 0"
stop "$pid"; ok $? "spin_us = 0: exit 0 after SIGTERM"
pid=""

# Readiness: /ready is 200 when every pool an outlet sends to has a live
# worker, 503 naming the pool that has none (a map without a write-api).
sed -e "s|data = ./tiers-data|data = $dir/ready-data|" "$top_srcdir/maps/single-box.map" >"$dir/ready.map"
"$TIERS" run -m "$dir/ready.map" --http 127.0.0.1:0 >"$dir/ready.log" 2>&1 &
pid=$!
wait_ready "$dir/ready.log"; ok $? "/ready: the single box runs"
rport=$(sed -n 's|.*listening on http://127.0.0.1:\([0-9]*\).*|\1|p' "$dir/ready.log" | head -n 1)
i=0; code=0
while [ $i -lt 200 ]; do     # the APIs join their pools a moment after ready (20 s)
    code=$(curl -s -m 5 -o "$dir/ready.out" -w '%{http_code}' "http://127.0.0.1:$rport/ready")
    [ "$code" = 200 ] && break
    sleep 0.1; i=$((i + 1))
done
[ "$code" = 200 ]; ok $? "/ready is 200 with both pools served ($code)"
contains "$dir/ready.out" '"status":"ready","pools":{"read":1,"write":1}'; ok $? "... and says how many workers each pool has"
stop "$pid"; ok $? "/ready: the single box stops"
pid=""
grep -v '^    write-api$\|^        instances = 1$' "$dir/ready.map" | sed -e 's|^    read-api$|    read-api\n        instances = 1|' >"$dir/noread.map"
"$TIERS" run -m "$dir/noread.map" --http 127.0.0.1:0 >"$dir/noread.log" 2>&1 &
pid=$!
wait_ready "$dir/noread.log"; ok $? "/ready: a box without a write-api runs"
rport=$(sed -n 's|.*listening on http://127.0.0.1:\([0-9]*\).*|\1|p' "$dir/noread.log" | head -n 1)
# Asked again while the read pool has no worker yet either (it joins a
# moment after ready; 20 s at most): then only the write pool is missing.
i=0
while :; do
    code=$(curl -s -m 5 -o "$dir/ready.out" -D "$dir/ready.hdr" -w '%{http_code}' "http://127.0.0.1:$rport/ready")
    [ "$code" = 503 ] && contains "$dir/ready.out" "no live worker in pool read" || break
    i=$((i + 1)); [ $i -lt 200 ] || break
    sleep 0.1
done
[ "$code" = 503 ]; ok $? "/ready is 503 without a write worker ($code)"
contains "$dir/ready.out" "no live worker in pool write"; ok $? "... naming the pool"
grep -qi '^Retry-After: 1' "$dir/ready.hdr"; ok $? "... with Retry-After"
code=$(curl -s -m 5 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$rport/health")
[ "$code" = 200 ]; ok $? "... while /health (liveness) stays 200"
stop "$pid"; ok $? "/ready: that box stops"
pid=""

# One file, one shard: the README's two maps share ./tiers-data. With the
# single box running, the storage node of the split map on the same data
# is refused at start, naming the pid that serves the files; nothing of it
# keeps running. Once the single box has stopped, it starts.
sed -e "s|data = ./tiers-data|data = $dir/shared-data|" "$top_srcdir/maps/single-box.map" >"$dir/box.map"
sp1=$("$TOOL" freeport); sp2=$("$TOOL" freeport); sp3=$("$TOOL" freeport)
sed -e "s|data = ./tiers-data|data = $dir/shared-data|" -e "s|127.0.0.1:7101|127.0.0.1:$sp1|" \
    -e "s|127.0.0.1:7102|127.0.0.1:$sp2|" -e "s|127.0.0.1:9101|127.0.0.1:$sp3|" \
    -e "s|keys = ./tiers-keys|keys = $dir/keys|" \
    "$top_srcdir/maps/storage-apart.map" >"$dir/apart.map"
"$TIERS" keys -m "$dir/apart.map" >/dev/null
"$TIERS" run -m "$dir/box.map" --http 127.0.0.1:0 >"$dir/box.log" 2>&1 &
pid=$!
wait_ready "$dir/box.log"; ok $? "one data dir: the single box runs"
refused run -m "$dir/apart.map" -n storage; st=$?
[ $st -ne 0 ] && [ $st -ne 137 ]; ok $? "... a storage node on the same files is refused ($st)"
contains "$dir/out" "shared-data/s0.db is served by another shard (pid $pid"; ok $? "... naming the holder's pid ($pid)"
stop "$pid"; ok $? "one data dir: the single box stops"
pid=""
"$TIERS" run -m "$dir/apart.map" -n storage >"$dir/apart.log" 2>&1 &
spid=$!
wait_ready "$dir/apart.log"; ok $? "... then the storage node starts on the same files"
stop "$spid"; ok $? "... and stops"
spid=""

# Pools and routes: an API in a pool no gateway outlet sends to is a map
# error (every request it was meant for would be 503); pointing the
# gateway's outlet there makes it the read pool.
sed -e 's/^    read-api$/    read-api\n        pool = fast/' "$top_srcdir/maps/single-box.map" >"$dir/fast.map"
"$TIERS" check -m "$dir/fast.map" >"$dir/out" 2>&1; [ $? -eq 2 ]; ok $? "a read-api in pool fast that no route uses: check exits 2"
line=$(grep -n 'pool = fast' "$dir/fast.map" | cut -d: -f1)
contains "$dir/out" "fast.map:$line: read-api 'read-api' joins pool 'fast', but no route of the map sends to it (routed pools: read, write)"; ok $? "... naming the line ($line), the pool and the routed pools"
# A bare `pool` line (no value) is a map error, not a crash of the check.
sed -e 's/^    read-api$/    read-api\n        pool/' "$top_srcdir/maps/single-box.map" >"$dir/barepool.map"
"$TIERS" check -m "$dir/barepool.map" >"$dir/out" 2>&1; [ $? -eq 2 ]; ok $? "a bare pool line: check exits 2 (no crash)"
sed -e 's/^        http = 127.0.0.1:8080$/        http = 127.0.0.1:8080\n        pool.read/' "$top_srcdir/maps/single-box.map" >"$dir/barepool2.map"
"$TIERS" check -m "$dir/barepool2.map" >"$dir/out" 2>&1; [ $? -eq 2 ]; ok $? "a bare pool.read line: check exits 2 (no crash)"
sed -e "s|data = ./tiers-data|data = $dir/fast-data|" -e 's/^    read-api$/    read-api\n        pool = fast/' \
    -e 's/^        http = 127.0.0.1:8080$/        http = 127.0.0.1:8080\n        pool.read = fast/' \
    "$top_srcdir/maps/single-box.map" >"$dir/fast2.map"
"$TIERS" check -m "$dir/fast2.map" >"$dir/out" 2>&1; ok $? "with the gateway's pool.read = fast the map is valid"
"$TIERS" run -m "$dir/fast2.map" --http 127.0.0.1:0 >"$dir/fast2.log" 2>&1 &
pid=$!
wait_ready "$dir/fast2.log"; ok $? "pool.read = fast: ready"
put_get "$dir/fast2.log" /v1/t/f '{"fast":1}' "reads through pool fast"
stop "$pid"; ok $? "pool.read = fast: exit 0 after SIGTERM"
pid=""

# Log level precedence: an unknown $TIERS_LOG is ignored with a warning
# and the map's `log` applies (here warn: no INFO lines); a valid one wins.
sed -e "s|data = ./tiers-data|data = $dir/log-data|" -e "s|^    sync = full|    sync = full\n    log = warn|" \
    "$top_srcdir/maps/single-box.map" >"$dir/log.map"
for env in bogus info; do
    TIERS_LOG=$env "$TIERS" run -m "$dir/log.map" --http 127.0.0.1:0 >"$dir/log-$env.out" 2>"$dir/log-$env.err" &
    pid=$!
    wait_ready "$dir/log-$env.out"; ok $? "TIERS_LOG=$env with map log = warn: ready"
    stop "$pid"; ok $? "TIERS_LOG=$env: exit 0 after SIGTERM"
    pid=""
done
contains "$dir/log-bogus.err" "ignoring TIERS_LOG=bogus"; ok $? "TIERS_LOG=bogus: warned about"
! grep -q " INFO " "$dir/log-bogus.err"; ok $? "TIERS_LOG=bogus: the map's log = warn applies (no INFO lines)"
grep -q " INFO " "$dir/log-info.err"; ok $? "TIERS_LOG=info: wins over the map's log = warn"

# IPv6 endpoints: the storage-apart map with its shards on tcp://[::1]
if p1=$("$TOOL" freeport6) && p2=$("$TOOL" freeport6); then
    sed -e "s|data = ./tiers-data|data = $dir/v6-data|" -e "s|tcp://127.0.0.1:7101|tcp://[::1]:$p1|" \
        -e "s|tcp://127.0.0.1:7102|tcp://[::1]:$p2|" -e "s|http = 127.0.0.1:9101|http = 127.0.0.1:0|" \
        -e "s|keys = ./tiers-keys|keys = $dir/v6-keys|" \
        "$top_srcdir/maps/storage-apart.map" >"$dir/v6.map"
    "$TIERS" keys -m "$dir/v6.map" >/dev/null
    ! grep -v '^ *#' "$dir/v6.map" | grep -q ':710[12]\|:9101'; ok $? "IPv6: no fixed port of storage-apart.map is left"
    "$TIERS" check -m "$dir/v6.map" >"$dir/out" 2>&1; ok $? "a map with shards on tcp://[::1] checks"
    "$TIERS" run -m "$dir/v6.map" -n storage >"$dir/v6s.log" 2>&1 &
    spid=$!
    "$TIERS" run -m "$dir/v6.map" -n web --http 127.0.0.1:0 >"$dir/v6w.log" 2>&1 &
    pid=$!
    wait_ready "$dir/v6s.log" "$dir/v6w.log"
    contains "$dir/v6s.log" "; ready"; ok $? "IPv6: the storage node is ready"
    put_get "$dir/v6w.log" /v1/t/v6 '{"v6":1}' "IPv6 (shards on [::1])"
    stop "$pid"; ok $? "IPv6: web exits 0"
    stop "$spid"; ok $? "IPv6: storage exits 0"
    pid=""; spid=""
else
    for t in 1 2 3 4 5 6 7; do n=$((n + 1)); echo "ok $n # SKIP no IPv6 loopback"; done
fi

echo "1..$n"
[ $failed -eq 0 ]
