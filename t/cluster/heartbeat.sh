#!/bin/sh
# heartbeat.sh — heartbeats do not starve behind work (issue 10, item 13).
#
# 64 PUTs of 1 MB each at once, from one curl with 64 connections, on a
# cluster whose heartbeat is the shortest a map allows (10 ms: a worker is
# silent after 30 ms). The write-api spends milliseconds on each body and
# takes them in bursts; its heartbeats must go out between them and the
# balancer must not take its own stalls for the worker's silence. Every PUT
# gets its real answer, 201: no 502 "worker lost", no 503, and the
# balancer's metrics show no worker lost.
#
# Both placements: maps/single-box.map (one process, inproc) and
# maps/storage-apart.map (node web and node storage on loopback tcp).
# Prints TAP (t/cluster/lib.sh). Every process started here is killed by
# pid on exit.

dir=$(mktemp -d "${TMPDIR:-/tmp}/tiers-heartbeat-XXXXXX")
. "${top_srcdir:-.}/t/cluster/lib.sh"

# The example maps with this run's data, ports, and a 10 ms heartbeat.
HEARTBEAT='s|^    sync = full|    sync = full\n    heartbeat = 10ms|'
start_cluster () {
    mode=$1
    data="$dir/$mode-data"
    if [ "$mode" = one ]; then
        sed -e "s|data = ./tiers-data|data = $data|" -e "$HEARTBEAT" \
            "$top_srcdir/maps/single-box.map" >"$dir/one.map"
        start_node "$dir/one.log" run -m "$dir/one.map" --http 127.0.0.1:0 || return 1
        nodes=$pid; weblog="$dir/one.log"
    else
        p1=$(freeport); p2=$(freeport); p3=$(freeport)
        sed -e "s|data = ./tiers-data|data = $data|" -e "$HEARTBEAT" \
            -e "s|127.0.0.1:7101|127.0.0.1:$p1|" -e "s|127.0.0.1:7102|127.0.0.1:$p2|" \
            -e "s|127.0.0.1:9101|127.0.0.1:$p3|" -e "s|keys = ./tiers-keys|keys = $dir/keys|" \
            "$top_srcdir/maps/storage-apart.map" >"$dir/two.map"
        "$TIERS" keys -m "$dir/two.map" >/dev/null || return 1
        start_node "$dir/storage.log" run -m "$dir/two.map" -n storage || return 1
        nodes=$pid
        start_node "$dir/web.log" run -m "$dir/two.map" -n web --http 127.0.0.1:0 || return 1
        nodes="$pid $nodes"; weblog="$dir/web.log"
    fi
    grep -q "heartbeat = 10ms" "$dir/$mode.map" || { diag "no heartbeat in the map"; return 1; }
    base=$(sed -n 's|.*listening on \(http://[^ ]*\).*|\1|p' "$weblog" | head -n 1)
    [ -n "$base" ] || return 1
    # Both pools have their worker before the flood.
    i=0
    while [ $i -lt 200 ]; do
        [ "$(curl -s -m 2 -o /dev/null -w '%{http_code}' "$base/ready")" = 200 ] && return 0
        sleep 0.05; i=$((i + 1))
    done
    return 1
}

# A JSON document of 1 MB (within the gateway's default max_body, 1m).
{ printf '{"x":"'; head -c 1000000 /dev/zero | tr '\0' a; printf '"}'; } >"$dir/body.json"
size=$(wc -c <"$dir/body.json" | tr -d ' ')

flood () {
    M=$mode
    : >"$dir/urls"
    i=1
    while [ $i -le 64 ]; do
        printf 'url = "%s/v1/big/doc%d"\noutput = "/dev/null"\n' "$base" $i >>"$dir/urls"
        i=$((i + 1))
    done
    start=$(date +%s)
    curl -s -Z --parallel-max 64 --parallel-immediate -m 60 -X PUT \
         -H 'Content-Type: application/json' --data-binary @"$dir/body.json" \
         -w '%{http_code}\n' -K "$dir/urls" >"$dir/codes" 2>/dev/null
    end=$(date +%s)
    codes=$(sort "$dir/codes" | uniq -c | tr -s ' ' | tr '\n' ' ')
    is "$(grep -c '^201$' "$dir/codes")" 64 "$M: all 64 PUTs of 1 MB answered 201 in $((end - start)) s ($codes)"
    is "$(grep -c '^502$' "$dir/codes")" 0 "$M: none answered 502 worker lost"
    curl -s -m 5 "$base/metrics" >"$dir/metrics"
    lost=$(sed -n 's/^tiers_balancer_workers_lost_total{pool="write"} //p' "$dir/metrics")
    is "$lost" 0 "$M: the balancer lost no write worker"
    ok "$(grep -q '^tiers_balancer_requests_total{pool="write",status="502"}' "$dir/metrics" \
          && echo 1 || echo 0)" "$M: the balancer answered no 502"
    silent=$(sed -n 's/^tiers_balancer_workers_silent_total{pool="write"} //p' "$dir/metrics")
    diag "$M: the write worker went silent for a window $silent times (it may; then it came back)"
    code=$(curl -s -m 10 -o "$dir/doc" -w '%{http_code}' "$base/v1/big/doc64")
    is "$code $(wc -c <"$dir/doc" | tr -d ' ')" "200 $size" "$M: a document reads back whole"
}

[ -x "$TOOL" ] || { echo "1..0 # SKIP t/cluster/tool not built"; exit 0; }
curl --help all 2>/dev/null | grep -q -- '--parallel-max' \
    || { echo "1..0 # SKIP this curl has no --parallel"; exit 0; }
for mode in one two; do
    if start_cluster $mode; then
        ok 0 "$mode: cluster started with a 10 ms heartbeat ($base)"
        flood
    else
        ok 1 "$mode: cluster started"
    fi
    if [ $failed -gt 0 ]; then
        grep -h "silent\|left pool\|said nothing\|spoke again\|refused" "$dir"/*.log \
            | head -n 20 | sed 's/^/# /'
    fi
    for p in $nodes; do
        stop_pid "$p" TERM; ok $? "$mode: node stops with exit 0 on SIGTERM"
    done
    nodes=""
done
echo "1..$n"
[ $failed -eq 0 ]
