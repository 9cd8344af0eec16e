#!/bin/sh
# faults.sh — what a write's answer promises when storage fails, with real
# processes and curl: EIO on the shard's fsync (t/fault/eio.so, preloaded),
# kill -9 after it, Idempotency-Key retries, and the shard file's
# incarnation (an empty data dir must not make old ETags match). Prints TAP.

dir=$(mktemp -d "${TMPDIR:-/tmp}/tiers-faults-XXXXXX")
. "${top_srcdir:-.}/t/cluster/lib.sh"
SHIM="$(cd "$top_builddir" && pwd)/t/fault/eio.so"
# An ASan build wants its runtime first among the preloaded libraries.
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"; export ASAN_OPTIONS

data="$dir/data"
# A gateway deadline of 30 s: the hung write below must still be waited
# for when the disk thaws, however long the machine took to see it hang.
sed -e "s|data = ./tiers-data|data = $data|" \
    -e "s|^        http = 127.0.0.1:8080|        http = 127.0.0.1:8080\n        deadline = 30s|" \
    "$top_srcdir/maps/single-box.map" >"$dir/one.map"
echo 0 >"$dir/fail"
start () {   # the single box, with the failing-fsync shim armed by $dir/fail
    TIERS_FAULT_SYNC="$dir/fail" LD_PRELOAD="$SHIM" \
        start_node "$dir/one.log" run -m "$dir/one.map" --http "${1:-127.0.0.1:0}" || return 1
    box=$pid
    base=$(sed -n 's|.*listening on \(http://[^ ]*\).*|\1|p' "$dir/one.log" | head -n 1)
    [ -n "$base" ] && until_ready      # the APIs in their pools, the shards answering
}
crash () { kill -9 "$box"; wait "$box" 2>/dev/null; forget "$box"; }
left () { tr -d ' \n' <"$dir/fail"; }

start; ok $? "the single box starts with the failing-disk shim"
grep -q "^        deadline = 30s" "$dir/one.map"; ok $? "... its gateway's deadline 30 s"
req PUT /v1/d/warm -d '{"n":0}'; is "$code" 201 "a write with a good disk is 201"

# --- One failed fsync: the commit fails, the fence after it commits.
echo 1 >"$dir/fail"
req PUT /v1/d/one -d '{"n":1}'
is "$code" 503 "EIO on the commit's fsync: 503"
has '"type":"urn:tiers:problem:not-applied"'; ok $? "... problem type not-applied ($(body))"
[ -n "$(hdr Retry-After)" ]; ok $? "... with Retry-After"
is "$(left)" 0 "... the shim failed exactly one fsync"
grep -q "fence committed" "$dir/one.log"; ok $? "... the shard reopened its file and fenced"
req GET /v1/d/one; is "$code" 404 "the refused write is not there"
req PUT /v1/d/after -d '{"n":2}'; is "$code" 201 "the next write is acknowledged (201)"
crash
start "${base#http://}"; ok $? "restart after kill -9"
req GET /v1/d/one; is "$code" 404 "after kill -9 and restart the refused write is still not there"
req GET /v1/d/after; is "$code" 200 "... and the acknowledged one is"

# --- Two failed fsyncs: the commit and its fence. Unknown, and a keyed
# retry settles it whichever way the file went.
echo 2 >"$dir/fail"
req PUT /v1/d/two -H 'Idempotency-Key: "k-two"' -d '{"n":3}'
is "$code" 500 "EIO on the commit and on the fence: 500"
has '"type":"urn:tiers:problem:outcome-unknown"'; ok $? "... problem type outcome-unknown"
has 'Idempotency-Key'; ok $? "... telling the client how to retry"
is "$(left)" 0 "... the shim failed two fsyncs"
crash
start "${base#http://}"; ok $? "restart after kill -9"
req GET /v1/d/two; there=$code
ok "$([ "$there" = 200 ] || [ "$there" = 404 ] && echo 0 || echo 1)" \
   "after the restart the unknown write is there or not ($there)"
req PUT /v1/d/two -H 'Idempotency-Key: "k-two"' -d '{"n":3}'
if [ "$there" = 200 ]; then
    is "$code:$(hdr Idempotent-Replayed)" "201:true" "the keyed retry replays the first outcome"
else
    is "$code:$(hdr Idempotent-Replayed)" "201:" "the keyed retry applies it, once"
fi
req GET /v1/d/two; is "$code:$(body)" '200:{"n":3}' "the document is there, once"

# --- Idempotency-Key over HTTP
req PUT /v1/d/k -H 'Idempotency-Key: "order-1"' -d '{"v":1}'
is "$code" 201 "a keyed PUT is 201"; etag=$(hdr ETag)
req PUT /v1/d/k -H 'Idempotency-Key: "order-1"' -d '{"v":1}'
is "$code:$(hdr ETag):$(hdr Idempotent-Replayed)" "201:$etag:true" \
   "the same PUT again: 201, the same ETag, Idempotent-Replayed: true"
req PUT /v1/d/k -H 'Idempotency-Key: "order-1"' -d '{"v":2}'
is "$code" 422 "the same key with another body: 422"
has '"type":"urn:tiers:problem:idempotency-key-reused"'; ok $? "... problem type idempotency-key-reused"
req GET /v1/d/k; is "$(body)" '{"v":1}' "... and it was not applied"
req DELETE /v1/d/k -H 'Idempotency-Key: del-1'; is "$code" 204 "a keyed DELETE (bare key) is 204"
req DELETE /v1/d/k -H 'Idempotency-Key: del-1'
is "$code:$(hdr Idempotent-Replayed)" "204:true" "... again: 204 replayed, not 404"
req PUT /v1/d/k -H 'Idempotency-Key: "unterminated' -d '{}'
is "$code" 400 "a malformed Idempotency-Key is 400"
req PUT /v1/d/k -H 'Idempotency-Key: "a"' -H 'Idempotency-Key: "b"' -d '{}'
is "$code" 400 "two Idempotency-Key lines are 400"
req GET /v1/d/k; is "$code" 404 "... neither changed anything"

# --- Readiness asks the shards: a frozen disk (every WAL fsync waits).
req GET /ready; is "$code" 200 "/ready is 200 with every shard fine"
has '"shards":{"s0":{'; ok $? "... and shows the shards ($(body | cut -c1-160))"
echo hang >"$dir/fail"
curl -s -m 60 -o "$dir/hung.out" -w '%{http_code}' -X PUT -d '{"n":"hung"}' \
    "$base/v1/d/hung" >"$dir/hung.code" 2>/dev/null &
hung=$!; pids="$pids $hung"
# Until /ready says the commit hangs (2 s after it began; 20 s at most),
# then /health, then the thaw at once.
i=0; code=200
while [ $i -lt 100 ]; do
    sleep 0.2; req GET /ready; i=$((i + 1))
    [ "$code" = 503 ] && has 'a commit has been running for' && break
done
ready_code=$code; cp "$dir/body" "$dir/ready.body"; cp "$dir/hdr" "$dir/ready.hdr"
req GET /health; health=$code
echo 0 >"$dir/fail"
is "$ready_code" 503 "/ready is 503 while a commit hangs on a frozen disk"
grep -qF 'a commit has been running for' "$dir/ready.body"
ok $? "... saying so ($(cut -c1-200 "$dir/ready.body"))"
grep -qi '^Retry-After:' "$dir/ready.hdr"; ok $? "... with Retry-After"
is "$health" 200 "/health (liveness) stays 200"
wait "$hung"; forget "$hung"
is "$(cat "$dir/hung.code")" 201 "the hung write completes when the disk thaws (201)"
until_ready; ok $? "/ready is 200 again"

# --- The incarnation: an empty data dir where the shard used to be.
req PUT /v1/d/inc -d '{"v":"old"}'; old=$(hdr ETag)
t=${old#\"}; t=${t%\"}
req GET '/v1/d?limit=1000'; has "\"etag\":\"\\\"$t\\\"\""; ok $? "a listing gives each document's etag"
stop_pid "$box" TERM; forget "$box"
rm -rf "$data"
start "${base#http://}"; ok $? "restart on an empty data dir"
grep -q "is new: incarnation" "$dir/one.log"; ok $? "... the shards say they start a new incarnation"
req PUT /v1/d/inc -d '{"v":"new"}'; new=$(hdr ETag)
ok "$([ "$new" != "$old" ] && echo 0 || echo 1)" "the same document's ETag differs ($old, $new)"
req PUT /v1/d/inc -H "If-Match: $old" -d '{"v":"lost update"}'
is "$code" 412 "If-Match with the ETag of before is 412"
req GET /v1/d/inc; is "$(body)" '{"v":"new"}' "... and changed nothing"

# --- A shard whose file was removed takes no writes: not ready.
rm -f "$data/s0.db" "$data/s0.db-wal"
i=0; while [ $i -lt 300 ]; do   # a write to s0 makes it notice (at its next commit)
    req PUT "/v1/d/x$i" -d '{}'; [ "$code" = 503 ] && break; i=$((i + 1)); done
is "$code" 503 "a write to the shard whose file was removed is 503"
req GET /ready; is "$code" 503 "/ready is 503"
has 'shard s0: acknowledges no writes'; ok $? "... naming the shard"

stop_pid "$box" TERM; forget "$box"

# --- A stopped storage node (SIGSTOP): the gateway's 504 must stay true.
# The split map, two processes; the writes queued at the stopped node have
# passed their deadline when it comes back, and are not applied.
p1=$(freeport); p2=$(freeport); p3=$(freeport)
sed -e "s|data = ./tiers-data|data = $dir/apart-data|" \
    -e "s|127.0.0.1:7101|127.0.0.1:$p1|" -e "s|127.0.0.1:7102|127.0.0.1:$p2|" \
    -e "s|127.0.0.1:9101|127.0.0.1:$p3|" \
    -e "s|^        http = 127.0.0.1:8080|        http = 127.0.0.1:8080\n        deadline = 1s|" \
    -e "s|keys = ./tiers-keys|keys = $dir/keys|" \
    "$top_srcdir/maps/storage-apart.map" >"$dir/two.map"
"$TIERS" keys -m "$dir/two.map" >/dev/null; ok $? "split: tiers keys"
start_node "$dir/storage.log" run -m "$dir/two.map" -n storage; ok $? "split: the storage node starts"
storage=$pid
start_node "$dir/web.log" run -m "$dir/two.map" -n web --http 127.0.0.1:0; ok $? "split: the web node starts"
web=$pid
base=$(sed -n 's|.*listening on \(http://[^ ]*\).*|\1|p' "$dir/web.log" | head -n 1)
until_ready; ok $? "split: /ready is 200"
kill -STOP "$storage"
req PUT /v1/d/frozen -d '{"n":1}'; is "$code" 504 "split: a PUT while the storage node is stopped is 504"
req GET /ready; is "$code" 503 "split: /ready is 503 while the storage node is stopped"
has 'shard s0: no answer within'; ok $? "... the shards did not answer ($(body | cut -c1-160))"
req GET /health; is "$code" 200 "split: /health stays 200"
kill -CONT "$storage"
sleep 1                       # the write queued there is handled (or dropped)
until_ready; ok $? "split: /ready is 200 again after SIGCONT"
# (the deadline is 1 s: a loaded machine's first answers may miss it; asked
# again for 10 s while they do)
i=0
while :; do
    req GET /v1/d/frozen
    [ "$code" = 504 ] || [ "$code" = 503 ] || break
    i=$((i + 1)); [ $i -lt 20 ] || break; sleep 0.5
done
is "$code" 404 "split: after SIGCONT the write that got 504 was not applied"
i=0; late=""
while :; do
    req PUT /v1/d/frozen -d '{"n":2}'
    [ "$code" = 504 ] || [ "$code" = 503 ] || break
    late=1                    # that one may yet be applied: the next is 200
    i=$((i + 1)); [ $i -lt 20 ] || break; sleep 0.5
done
ok $([ "$code" = 201 ] || { [ -n "$late" ] && [ "$code" = 200 ]; } && echo 0 || echo 1) \
    "split: writes go on: $code (201$([ -n "$late" ] && echo ", or 200 after a 504"))"
stop_pid "$web" TERM; ok $? "split: the web node stops"
stop_pid "$storage" TERM; ok $? "split: the storage node stops"
echo "1..$n"
[ "$failed" -eq 0 ]
