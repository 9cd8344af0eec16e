#!/bin/sh
# security.sh — the VPC rung with real processes: `tiers keys`, a split
# cluster with CURVE on, and strangers at a shard's port (no keys, a key
# the map does not know, the key of a node the map does not let reach the
# shard, garbage and truncated handshakes): nothing they send is served or
# stored, and /metrics counts them. Also the map's security and subnet
# rules, and key files that are missing, readable by others or corrupt.
# Prints TAP.

dir=$(mktemp -d "${TMPDIR:-/tmp}/tiers-security-XXXXXX")
. "${top_srcdir:-.}/t/cluster/lib.sh"
PROBE="$top_builddir/t/cluster/probe"
contains () { grep -qF -- "$2" "$1"; }

# --- The map's rules
cat >"$dir/plain.map" <<MAP
cluster
    data = $dir/plain-data
node = web
    gateway
        http = 127.0.0.1:0
    balancer
        bind = inproc://balancer
    read-api
    write-api
node = storage
    shard = s0
        bind = tcp://127.0.0.1:7101
MAP
"$TIERS" check -m "$dir/plain.map" >"$dir/out" 2>&1; st=$?
is "$st" 2 "a map with tcp:// endpoints and no security line is refused"
contains "$dir/out" "security = curve"; ok $? "... naming security = curve"
contains "$dir/out" "security = none"; ok $? "... and security = none"
contains "$dir/out" "plain.map:12:"; ok $? "... at the endpoint's line"
sed -e 's|^    data = |    security = none\n    data = |' "$dir/plain.map" >"$dir/none.map"
"$TIERS" check -m "$dir/none.map" >"$dir/out" 2>&1; st=$?
is "$st" 0 "security = none is allowed"
contains "$dir/out" "warning: security = none"; ok $? "... with a warning"
sed -e 's|tcp://127.0.0.1:7101|tcp://198.51.100.7:7101|' "$dir/none.map" >"$dir/public.map"
"$TIERS" check -m "$dir/public.map" >"$dir/out" 2>&1; st=$?
is "$st" 2 "a shard that binds a public address is refused"
contains "$dir/out" "a public address"; ok $? "... saying so"
sed -e 's|^        bind = tcp://198.51.100.7:7101|        bind = tcp://198.51.100.7:7101\n        public = yes|' \
    "$dir/public.map" >"$dir/public-yes.map"
"$TIERS" check -m "$dir/public-yes.map" >"$dir/out" 2>&1; st=$?
is "$st" 0 "... unless its entry says public = yes"
sed -e 's|tcp://127.0.0.1:7101|tcp://10.1.2.3:7101|' "$dir/none.map" >"$dir/private.map"
"$TIERS" check -m "$dir/private.map" >"$dir/out" 2>&1
grep -q 's0 .*tcp://10.1.2.3:7101 *private *reached by: web' "$dir/out"; ok $? \
    "check prints the subnet view: s0 private, reached by web"

# --- Keys
p1=$(freeport); p2=$(freeport); p3=$(freeport)
keys="$dir/keys"
sed -e "s|data = ./tiers-data|data = $dir/data|" -e "s|keys = ./tiers-keys|keys = $keys|" \
    -e "s|127.0.0.1:7101|127.0.0.1:$p1|" -e "s|127.0.0.1:7102|127.0.0.1:$p2|" \
    -e "s|127.0.0.1:9101|127.0.0.1:$p3|" "$top_srcdir/maps/storage-apart.map" >"$dir/two.map"
grep -q '^    security = curve' "$dir/two.map"; ok $? "maps/storage-apart.map says security = curve"
"$TIERS" run -m "$dir/two.map" -n storage >"$dir/nokeys.log" 2>&1; st=$?
is "$st" 1 "a node without its keys does not start"
contains "$dir/nokeys.log" "tiers keys"; ok $? "... and says how to make them"
"$TIERS" keys -m "$dir/two.map" >"$dir/keys.out" 2>&1; ok $? "tiers keys makes the keys"
ls "$keys" | sort | tr '\n' ' ' >"$dir/ls"
is "$(cat "$dir/ls")" "storage.cert storage.cert_secret web.cert web.cert_secret " "... one certificate per node"
is "$(stat -c %a "$keys/web.cert_secret"):$(stat -c %a "$keys/web.cert"):$(stat -c %a "$keys")" \
   "600:644:700" "... secrets 0600, public parts 0644, the directory 0700"
first=$(grep '^web:' "$dir/keys.out")
"$TIERS" keys -m "$dir/two.map" >"$dir/keys2.out" 2>&1
is "$(grep '^web:' "$dir/keys2.out" | sed 's/kept/made/')" "$first" "run again, it keeps the keys"
cp -p "$keys/storage.cert_secret" "$dir/saved"
chmod 644 "$keys/storage.cert_secret"
"$TIERS" run -m "$dir/two.map" -n storage >"$dir/mode.log" 2>&1; st=$?
is "$st" 1 "a secret readable by others: the node does not start"
contains "$dir/mode.log" "must be mode 0600"; ok $? "... saying so"
! contains "$dir/mode.log" "serving"; ok $? "... and nothing was started"
echo "garbage" >"$keys/storage.cert_secret"; chmod 600 "$keys/storage.cert_secret"
"$TIERS" run -m "$dir/two.map" -n storage >"$dir/corrupt.log" 2>&1; st=$?
is "$st" 1 "a corrupt secret: the node does not start"
contains "$dir/corrupt.log" "corrupt"; ok $? "... saying so"
cp -p "$dir/saved" "$keys/storage.cert_secret"
cp -p "$keys/storage.cert" "$dir/saved.cert"
cp "$keys/web.cert" "$keys/storage.cert"
"$TIERS" run -m "$dir/two.map" -n storage >"$dir/pair.log" 2>&1; st=$?
is "$st" 1 "a public key that is not the secret's (another node's .cert): the node does not start"
contains "$dir/pair.log" "does not hold the secret"; ok $? "... saying so"
cp -p "$dir/saved.cert" "$keys/storage.cert"

# --- A split cluster with CURVE on
start_node "$dir/storage.log" run -m "$dir/two.map" -n storage; ok $? "the storage node starts with its keys"
storage=$pid
start_node "$dir/web.log" run -m "$dir/two.map" -n web --http 127.0.0.1:0; ok $? "the web node starts"
web=$pid
base=$(sed -n 's|.*listening on \(http://[^ ]*\).*|\1|p' "$dir/web.log" | head -n 1)
req PUT /v1/d/a -d '{"v":1}'; is "$code" 201 "a PUT through the CURVE links is 201"
req GET /v1/d/a; is "$code:$(body)" '200:{"v":1}' "... and reads back"

# Strangers at shard s0's port (a probe's put of d/probe would land on
# some shard; every probe goes to s0 and to s1, so one of them owns it).
# A silent probe waits out its 5 s: the six run at once.
probes=""
for shard in "$p1" "$p2"; do
    "$PROBE" "tcp://127.0.0.1:$shard" "$keys/storage.cert" >"$dir/probe.$shard.plain" 2>&1 &
    probes="$probes $!"
    "$PROBE" "tcp://127.0.0.1:$shard" "$keys/storage.cert" new >"$dir/probe.$shard.new" 2>&1 &
    probes="$probes $!"
    "$PROBE" "tcp://127.0.0.1:$shard" "$keys/storage.cert" "$keys/storage.cert" \
        >"$dir/probe.$shard.storage" 2>&1 &
    probes="$probes $!"
done
pids="$pids $probes"
for p in $probes; do wait "$p"; forget "$p"; done
for shard in "$p1" "$p2"; do
    is "$(cat "$dir/probe.$shard.plain")" silent \
       "a client without CURVE gets nothing from the shard at $shard"
    is "$(cat "$dir/probe.$shard.new")" silent \
       "a key the map does not know gets nothing"
    is "$(cat "$dir/probe.$shard.storage")" silent \
       "the storage node's own key (no entry there links to a shard) gets nothing"
done
"$PROBE" garbage 127.0.0.1 "$p1" >/dev/null; ok $? "a garbage handshake sent"
"$PROBE" http 127.0.0.1 "$p1" >/dev/null; ok $? "an HTTP request at the shard's port sent"
is "$("$PROBE" truncated 127.0.0.1 "$p1")" dropped "a truncated handshake that stalls is dropped"
# The web node's key is served: the probe itself works, and its put of
# d/probe creating the document (201, not 200) shows that no stranger's
# put before it was stored, on either shard.
for shard in "$p1" "$p2"; do
    is "$("$PROBE" "tcp://127.0.0.1:$shard" "$keys/storage.cert" "$keys/web.cert")" "answered 201" \
       "the web node's key is served at $shard, and nothing of the strangers was stored there"
done
# The counts and the log lines come a moment after the refusals (later
# on a loaded machine): asked until they reach their least (10 s).
i=0
while :; do
    curl -s -m 5 "http://127.0.0.1:$p3/metrics" >"$dir/metrics"
    key=$(sed -n 's/^tiers_security_refused_total{actor="s0",port="requests",reason="key"} //p' "$dir/metrics")
    hs=$(sed -n 's/^tiers_security_refused_total{actor="s0",port="requests",reason="handshake"} //p' "$dir/metrics")
    refusals=$(grep -c 'refused a peer on s0/requests' "$dir/storage.log")
    [ "${key:-0}" -ge 2 ] && [ "${hs:-0}" -ge 3 ] && [ "$refusals" -ge 3 ] && break
    i=$((i + 1)); [ $i -lt 100 ] || break
    sleep 0.1
done
ok "$([ "${key:-0}" -ge 2 ] && echo 0 || echo 1)" "/metrics counts the refused keys at s0 ($key)"
ok "$([ "${hs:-0}" -ge 3 ] && echo 0 || echo 1)" "... and the failed handshakes: no CURVE, garbage, truncated ($hs)"
ok "$([ "$refusals" -ge 3 ] && [ "$refusals" -le 12 ] && echo 0 || echo 1)" \
   "refused peers are logged, once each ($refusals lines)"
grep 'refused a peer on s0/requests: a key of no node' "$dir/storage.log" | head -n 1 | grep -q 'address 127.0.0.1, key .\{40\})'
ok $? "... with the address and the key"
stop_pid "$web" TERM; ok $? "the web node stops"
stop_pid "$storage" TERM; ok $? "the storage node stops"

echo "1..$n"
[ "$failed" -eq 0 ]
