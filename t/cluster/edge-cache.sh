#!/bin/sh
# edge-cache.sh — the gateway's edge cache (gateway/edge.h) end to end,
# with curl, against a real cluster whose shards have commit streams:
# hits answered without the read-api (its read count does not move), the
# same bytes as the forwarded answer, writes and deletes never read back
# old, tokens, strong reads, If-None-Match, HEAD, the byte cap, and a shard
# that stops: its keys are no longer served from the edge once edge_silent
# has passed. (edge_silent = 3s, not less: with heartbeats every 200 ms a
# stall of a loaded machine must not take a shard out of the edge in the
# middle of the exact hit counts below.)
#
# Every scenario runs twice: one process (inproc) and node web + node
# storage as two processes on loopback tcp. Prints TAP. Every process
# started here is killed by pid on exit, also when a test fails.

dir=$(mktemp -d "${TMPDIR:-/tmp}/tiers-edge-cache-XXXXXX")
. "${top_srcdir:-.}/t/cluster/lib.sh"

CAP=65536
map () {   # map MODE: the cluster's map, to stdout
    if [ "$1" = one ]; then s0=inproc://s0; s1=inproc://s1; t0=inproc://s0-stream; t1=inproc://s1-stream
    else
        s0=tcp://127.0.0.1:$(freeport); s1=tcp://127.0.0.1:$(freeport)
        t0=tcp://127.0.0.1:$(freeport); t1=tcp://127.0.0.1:$(freeport)
    fi
    cat <<EOF
cluster
    name = edge
    data = $dir/$1-data
    sync = normal
    security = none
node = web
    gateway
        http = 127.0.0.1:0
        deadline = 1500ms
        edge_cache = $CAP
        edge_silent = 3s
        edge_negative_ttl = 2s
    gateway = other
        http = 127.0.0.1:0
        edge_cache = $CAP
    balancer
        bind = inproc://balancer
    read-api
    write-api
EOF
    [ "$1" = one ] || echo "node = storage"
    cat <<EOF
    shard = s0
        bind = $s0
        bind.stream = $t0
        slots = 0-511
    shard = s1
        bind = $s1
        bind.stream = $t1
        slots = 512-1023
EOF
}

start_cluster () {
    mode=$1
    map "$mode" >"$dir/$mode.map"
    if [ "$mode" = one ]; then
        start_node "$dir/one.log" run -m "$dir/one.map" || return 1
        web=$pid; storage=$pid; weblog="$dir/one.log"
    else
        start_node "$dir/storage.log" run -m "$dir/two.map" -n storage || return 1
        storage=$pid
        start_node "$dir/web.log" run -m "$dir/two.map" -n web || return 1
        web=$pid; weblog="$dir/web.log"
    fi
    base=$(sed -n 's|.*gateway gateway listening on \(http://[^ ]*\).*|\1|p' "$weblog" | head -n 1)
    other=$(sed -n 's|.*gateway other listening on \(http://[^ ]*\).*|\1|p' "$weblog" | head -n 1)
    [ -n "$base" ] && [ -n "$other" ] || return 1
    # The follower is live once a shard answered its follow: wait for a
    # read to be a hit (at most 5 s).
    req PUT /v1/warm/w -d '{}'
    i=0
    while [ $i -lt 100 ]; do
        h=$(metric tiers_gateway_edge_hits_total)
        req GET /v1/warm/w
        [ "$(metric tiers_gateway_edge_hits_total)" != "$h" ] && return 0
        sleep 0.05; i=$((i + 1))
    done
    echo "# the edge never served /v1/warm/w"
    return 1
}

# metric NAME [LABEL-TEXT]: the value of the gateway's series (0 if absent)
metric () {
    curl -s -m 10 "$base/metrics" >"$dir/metrics"
    v=$(awk -v name="$1" -v want="${2:-}" '
        index($1, name) == 1 {
            rest = substr($1, length(name) + 1)
            if (rest != "" && substr(rest, 1, 1) != "{") next
            if (want != "" && index(rest, want) == 0) next
            sum += $2; found = 1
        }
        END { if (found) printf "%d", sum; else print 0 }' "$dir/metrics")
    echo "$v"
}
api_reads () { metric tiers_api_reads_total 'copy="primary"'; }
hits () { metric tiers_gateway_edge_hits_total 'gateway="gateway"'; }
bypass () { metric tiers_gateway_edge_bypass_total "gateway=\"gateway\",reason=\"$1\""; }

# The response headers but Date (and, unless the same id was sent, the
# request id), in the order they came.
headers () { tr -d '\r' <"$dir/hdr" | grep -v -i '^date:' | grep -v '^$'; }

scenarios () {
    M=$1

    # A hit: the read-api does not see it.
    req PUT /v1/docs/a -d '{"name":"a","n":1}'
    is "$code" 201 "$M: PUT docs/a is 201"
    req GET /v1/docs/a
    is "$code" 200 "$M: the first GET is 200 (a miss: forwarded, fills)"
    r0=$(api_reads); h0=$(hits)
    req GET /v1/docs/a
    is "$code" 200 "$M: the second GET is 200"
    is "$(body)" '{"name":"a","n":1}' "$M: ... with the document"
    is "$(hits)" $((h0 + 1)) "$M: ... answered from the edge (hits + 1)"
    is "$(api_reads)" "$r0" "$M: ... and the read-api read nothing"

    # The same bytes as the forwarded path (strong goes to storage).
    rid="-H X-Request-Id:same-id"
    req GET /v1/docs/a $rid; headers >"$dir/cached.h"; cp "$dir/body" "$dir/cached.b"
    req GET /v1/docs/a $rid -H 'Tiers-Consistency: strong'; headers >"$dir/direct.h"
    cmp -s "$dir/cached.h" "$dir/direct.h"
    ok $? "$M: a hit's headers are the forwarded answer's, in order (Date aside)"
    [ $? -eq 0 ] || { diff "$dir/cached.h" "$dir/direct.h" | sed 's/^/# /'; }
    cmp -s "$dir/cached.b" "$dir/body"; ok $? "$M: ... and its body too"
    tag=$(hdr ETag)
    req GET /v1/docs/a $rid -H "If-None-Match: $tag"; c1=$code; headers >"$dir/cached.h"
    req GET /v1/docs/a $rid -H "If-None-Match: $tag" -H 'Tiers-Consistency: strong'
    headers >"$dir/direct.h"
    is "$c1" 304 "$M: If-None-Match with the tag: 304 from the edge"
    cmp -s "$dir/cached.h" "$dir/direct.h"; ok $? "$M: ... the same 304 as the forwarded one"
    # A conditional GET that misses still fills: it goes without its
    # If-None-Match, and the 304 is made here on the 200.
    req PUT /v1/docs/cond -d '{"cond":1}'; ctag=$(hdr ETag)
    : >"$dir/body"      # (curl leaves the file as it was when no body comes)
    req GET /v1/docs/cond $rid -H "If-None-Match: $ctag"; c1=$code; headers >"$dir/cached.h"
    b1=$(wc -c <"$dir/body")
    req GET /v1/docs/cond $rid -H "If-None-Match: $ctag" -H 'Tiers-Consistency: strong'
    headers >"$dir/direct.h"
    is "$c1:$b1" "304:0" "$M: a conditional miss with the tag: 304, no body"
    cmp -s "$dir/cached.h" "$dir/direct.h"; ok $? "$M: ... the same 304 as the forwarded one"
    [ $? -eq 0 ] || { diff "$dir/cached.h" "$dir/direct.h" | sed 's/^/# /'; }
    h0=$(hits); r0=$(api_reads)
    req GET /v1/docs/cond
    is "$code $(body)" '200 {"cond":1}' "$M: ... and it filled: the next GET is 200"
    is "$(hits):$(api_reads)" "$((h0 + 1)):$r0" "$M: ... from the edge"
    req PUT /v1/docs/cond2 -d '{"cond":2}'
    req GET /v1/docs/cond2 -H 'If-None-Match: "other.1", W/"x.9"'
    is "$code $(body)" '200 {"cond":2}' "$M: a conditional miss with other tags: 200 with the document"
    h0=$(hits); req GET /v1/docs/cond2 -H "If-None-Match: $(hdr ETag)"
    is "$code:$(hits)" "304:$((h0 + 1))" "$M: ... filled: the next, with its tag, a 304 hit"
    h0=$(hits)
    req HEAD /v1/docs/a $rid; c1=$code; headers >"$dir/cached.h"
    is "$(hits)" $((h0 + 1)) "$M: HEAD is a hit"
    req HEAD /v1/docs/a $rid -H 'Tiers-Consistency: strong'; headers >"$dir/direct.h"
    is "$c1" 200 "$M: ... 200"
    cmp -s "$dir/cached.h" "$dir/direct.h"; ok $? "$M: ... with the forwarded HEAD's headers"
    req GET /v1/docs/none $rid
    req GET /v1/docs/none $rid; c1=$code; headers >"$dir/cached.h"; cp "$dir/body" "$dir/cached.b"
    req GET /v1/docs/none $rid -H 'Tiers-Consistency: strong'; headers >"$dir/direct.h"
    is "$c1" 404 "$M: a missing document is 404 (a negative entry)"
    cmp -s "$dir/cached.h" "$dir/direct.h" && cmp -s "$dir/cached.b" "$dir/body"
    ok $? "$M: ... the read-api's own 404 problem+json, byte for byte"

    # Strong is never answered from the edge.
    h0=$(hits); r0=$(api_reads); b0=$(bypass strong)
    for i in 1 2 3; do req GET /v1/docs/a -H 'Tiers-Consistency: strong'; done
    is "$(hits)" "$h0" "$M: strong reads: no hit"
    is "$(api_reads)" $((r0 + 3)) "$M: ... all three read by the read-api"
    is "$(bypass strong)" $((b0 + 3)) "$M: ... counted as bypass{reason=strong}"
    h0=$(hits)
    req GET /v1/docs/a -H "If-Match: $tag"
    is "$code" 200 "$M: If-Match: 200"
    is "$(hits)" "$h0" "$M: ... forwarded, not a hit"

    # Writes through the gateway: never read back old.
    stale=0
    i=1
    while [ $i -le 200 ]; do
        code=$(curl -s -m 10 -o /dev/null -w '%{http_code}' -X PUT -d "{\"n\":$i}" "$base/v1/loop/k")
        for again in 1 2; do
            got=$(curl -s -m 10 "$base/v1/loop/k")
            [ "$got" = "{\"n\":$i}" ] || { stale=$((stale + 1)); [ $stale -le 3 ] && diag "PUT $i then GET: $got"; }
        done
        i=$((i + 1))
    done
    is "$stale" 0 "$M: 200 PUTs each read twice: every GET has the PUT's body"
    ok $([ "$(hits)" -ge $((h0 + 150)) ] && echo 0 || echo 1) "$M: ... the second GETs from the edge ($(($(hits) - h0)) hits)"
    req GET /v1/docs/a; req DELETE /v1/docs/a
    is "$code" 204 "$M: DELETE docs/a (cached) is 204"
    req GET /v1/docs/a; is "$code" 404 "$M: ... then GET is 404"
    req GET /v1/docs/a; is "$code" 404 "$M: ... and again"
    req GET /v1/docs/new; is "$code" 404 "$M: docs/new is 404 (cached as negative)"
    req GET /v1/docs/new; is "$code" 404 "$M: ... from the edge"
    req PUT /v1/docs/new -d '{"new":1}'; is "$code" 201 "$M: PUT creates it"
    req GET /v1/docs/new; is "$code" 200 "$M: ... and the next GET is 200"
    is "$(body)" '{"new":1}' "$M: ... with the new document"

    # A write through the other gateway: this one hears of it from the
    # stream only, within moments, and never reads it back old after.
    req PUT /v1/docs/s -d '{"s":1}'
    req GET /v1/docs/s; req GET /v1/docs/s
    h0=$(hits); req GET /v1/docs/s
    is "$(hits)" $((h0 + 1)) "$M: docs/s is cached here"
    v0=$(metric tiers_gateway_edge_invalidations_total 'gateway="gateway"')
    code=$(curl -s -m 10 -o /dev/null -w '%{http_code}' -X PUT -d '{"s":2}' "$other/v1/docs/s")
    is "$code" 200 "$M: PUT docs/s through the other gateway"
    i=0
    while [ $i -lt 200 ]; do
        req GET /v1/docs/s; [ "$(body)" = '{"s":2}' ] && break; sleep 0.05; i=$((i + 1))
    done
    is "$(body)" '{"s":2}' "$M: ... this gateway reads the new body within moments ($i reads of the old one first)"
    ok $([ "$(metric tiers_gateway_edge_invalidations_total 'gateway="gateway"')" -gt "$v0" ] && echo 0 || echo 1) \
        "$M: ... its edge was invalidated by the stream"
    old=0
    for i in 1 2 3 4 5 6 7 8 9 10; do req GET /v1/docs/s; [ "$(body)" = '{"s":2}' ] || old=$((old + 1)); done
    is "$old" 0 "$M: ... and never reads the old body after"

    # Tokens: a read may be answered here only when the follower has
    # heard the token's write (same incarnation, position at least its
    # sequence); else storage answers.
    req PUT /v1/docs/tok -d '{"v":1}'; token=$(hdr Tiers-Token)
    req GET /v1/docs/tok -H "Tiers-Token: $token"
    is "$code" 200 "$M: a read with the write's token is 200"
    i=0; h0=$(hits)
    while [ $i -lt 50 ] && [ "$(hits)" = "$h0" ]; do
        req GET /v1/docs/tok -H "Tiers-Token: $token"; i=$((i + 1))
    done
    is "$(body)" '{"v":1}' "$M: ... and a hit with the token once the edge has seen it"
    shard=${token%%=*}; rest=${token#*=}; inc=${rest%%.*}
    h0=$(hits); b0=$(bypass token); r0=$(api_reads)
    req GET /v1/docs/tok -H "Tiers-Token: $shard=$inc.999999"
    is "$code" 200 "$M: a token past what the shard has: 200 (storage answers)"
    is "$(hits)" "$h0" "$M: ... not a hit"
    is "$(bypass token)" $((b0 + 1)) "$M: ... bypass{reason=token}"
    is "$(api_reads)" $((r0 + 1)) "$M: ... read by the read-api"
    req GET /v1/docs/tok -H "Tiers-Token: $shard=0123456789ab.1"
    is "$(bypass token)" $((b0 + 2)) "$M: a token of another incarnation: forwarded"
    req GET /v1/docs/tok -H "Tiers-Token: $shard=bad"
    is "$code" 400 "$M: a malformed token: the read-api's 400"

    # The cap: bytes never above edge_cache under many distinct keys.
    pad=$(printf '%0400d' 0)
    : >"$dir/load.cfg"
    i=0
    while [ $i -lt 300 ]; do
        [ $i -gt 0 ] && echo next >>"$dir/load.cfg"
        printf 'url = "%s/v1/many/k%03d"\nrequest = "PUT"\ndata = "{\\"pad\\":\\"%s\\"}"\noutput = "/dev/null"\n' "$base" $i "$pad" >>"$dir/load.cfg"
        i=$((i + 1))
    done
    curl -s -Z --parallel-max 8 -K "$dir/load.cfg" >/dev/null 2>&1
    over=0; max=0
    for round in 1 2; do
        i=0
        while [ $i -lt 300 ]; do
            curl -s -m 10 -o /dev/null "$base/v1/many/k$(printf %03d $i)"
            if [ $((i % 25)) -eq 0 ]; then
                b=$(metric tiers_gateway_edge_bytes 'gateway="gateway"')
                [ "$b" -gt "$max" ] && max=$b
                [ "$b" -gt $CAP ] && over=$((over + 1))
            fi
            i=$((i + 1))
        done
    done
    is "$over" 0 "$M: 600 GETs of 300 documents of 420 bytes: the edge's bytes never over $CAP (max seen $max)"
    ok $([ "$(metric tiers_gateway_edge_evictions_total 'gateway="gateway"')" -gt 0 ] && echo 0 || echo 1) \
        "$M: ... entries were evicted to stay under it"
    is "$(metric tiers_gateway_edge_cap_bytes 'gateway="gateway"')" $CAP "$M: the cap gauge says $CAP"
}

# A shard that stops: its stream falls silent, the edge stops answering
# its keys once edge_silent (3 s) has passed, and reads go to storage
# (which cannot answer: 504), never to a stale hit.
stopped_shard () {
    M=$1
    req PUT /v1/stop/x -d '{"x":1}'
    req GET /v1/stop/x; req GET /v1/stop/x
    h0=$(hits)
    req GET /v1/stop/x; is "$(hits)" $((h0 + 1)) "$M: stop/x is served from the edge"
    kill -STOP "$storage"
    stopped_at=$(date +%s)
    # Until a read is not live (each read before that is a hit of the
    # document as it is, which is no stale read: nothing was written since),
    # at most 15 s; the read that bypasses is the one looked at.
    i=0
    while :; do
        h0=$(hits); nb=$(bypass not-live); at=$(($(date +%s) - stopped_at))
        req GET /v1/stop/x
        [ "$(bypass not-live)" -gt "$nb" ] && break
        [ $(($(date +%s) - stopped_at)) -lt 15 ] || break
        sleep 0.2; i=$((i + 1))
    done
    ok $([ "$code" = 503 ] || [ "$code" = 504 ] && echo 0 || echo 1) \
        "$M: storage stopped (edge_silent 3 s): a GET $at s later is $code, from storage, not the edge"
    is "$(hits)" "$h0" "$M: ... no hit"
    is "$(bypass not-live)" $((nb + 1)) "$M: ... bypass{reason=not-live} ($i reads before it)"
    kill -CONT "$storage"
    i=0; h0=$(hits)
    while [ $i -lt 200 ] && [ "$(hits)" = "$h0" ]; do
        req GET /v1/stop/x; sleep 0.05; i=$((i + 1))
    done
    is "$code" 200 "$M: storage back: GET is 200"
    ok $([ "$(hits)" -gt "$h0" ] && echo 0 || echo 1) "$M: ... and the edge serves it again"
    req PUT /v1/stop/x -d '{"x":2}'
    req GET /v1/stop/x; is "$(body)" '{"x":2}' "$M: ... and a write after it is read back"

    # Killed and restarted: the follower starts again from a reset.
    stop_pid "$storage" 9
    start_node "$dir/storage.log" run -m "$dir/two.map" -n storage; ok $? "$M: storage restarted"
    storage=$pid
    i=0
    while [ $i -lt 100 ]; do
        req GET /v1/stop/x; [ "$code" = 200 ] && break; sleep 0.1; i=$((i + 1))
    done
    is "$(body)" '{"x":2}' "$M: after the restart the document reads as it was written"
    req PUT /v1/stop/x -d '{"x":3}'
    req GET /v1/stop/x; is "$(body)" '{"x":3}' "$M: ... and a new write reads back"
}

for mode in one two; do
    if start_cluster $mode; then
        ok 0 "$mode: the cluster with shard streams starts and its edge serves"
        scenarios $mode
        [ $mode = two ] && stopped_shard $mode
    else
        ok 1 "$mode: the cluster with shard streams starts and its edge serves"
    fi
    for p in $web $storage; do stop_pid "$p" TERM >/dev/null 2>&1; done
done
# The defaults: on (32m) when the shards have streams, off without; asked
# for without streams, or under the store's least, it is refused.
defaults () {   # defaults NAME STREAM-LINE EDGE-LINE: a one-shard box map
    printf 'cluster\n    name = %s\n    data = %s\nnode = box\n    gateway\n        http = 127.0.0.1:0\n' "$1" "$dir/$1-data"
    [ -n "$3" ] && printf '        %s\n' "$3"
    printf '    balancer\n        bind = inproc://balancer\n    read-api\n    write-api\n'
    printf '    shard = s0\n        bind = inproc://s0\n'
    [ -n "$2" ] && printf '        %s\n' "$2"
    return 0
}
defaults on 'bind.stream = inproc://s0-stream' '' >"$dir/on.map"
if start_node "$dir/on.log" run -m "$dir/on.map"; then
    base=$(sed -n 's|.*listening on \(http://[^ ]*\).*|\1|p' "$dir/on.log" | head -n 1)
    is "$(metric tiers_gateway_edge_cap_bytes)" 33554432 "streams and no edge_cache: the edge is on, 32m"
    stop_pid "$pid" TERM
else
    ok 1 "a map with streams and no edge_cache starts"
fi
defaults off '' '' >"$dir/off.map"
if start_node "$dir/off.log" run -m "$dir/off.map"; then
    base=$(sed -n 's|.*listening on \(http://[^ ]*\).*|\1|p' "$dir/off.log" | head -n 1)
    req PUT /v1/docs/a -d '{}'; req GET /v1/docs/a
    is "$code" 200 "no streams: GET is 200"
    curl -s "$base/metrics" | grep -q '^tiers_gateway_edge_'
    ok $([ $? -ne 0 ] && echo 0 || echo 1) "... and there is no edge cache (no tiers_gateway_edge_ metric)"
    stop_pid "$pid" TERM
else
    ok 1 "a map without streams starts"
fi
for bad in "edge_cache = 1m|no shard of the map binds a stream port|" \
           "edge_cache = 100|the least is 4096|bind.stream = inproc://s0-stream"; do
    line=${bad%%|*}; rest=${bad#*|}; want=${rest%%|*}; stream=${rest#*|}
    defaults bad "$stream" "$line" >"$dir/bad.map"
    timeout 20 "$TIERS" run -m "$dir/bad.map" >"$dir/bad.log" 2>&1
    status=$?
    ok $([ $status -ne 0 ] && [ $status -ne 124 ] && grep -qF "$want" "$dir/bad.log" && echo 0 || echo 1) \
        "$line${stream:+ with a stream}: the start is refused ($want)"
    [ $status -ne 0 ] && [ $status -ne 124 ] || sed 's/^/# /' "$dir/bad.log" | tail -n 3
done

echo "1..$n"
[ $failed -eq 0 ]
