#!/bin/sh
# edge-auth.sh — the guarded public edge (issue 11, the gateway's half):
# HTTPS, API keys and rate limits, with curl and openssl against real
# `tiers run` processes on loopback.
#
#   tls     a certificate made here (openssl) is served: curl --cacert
#           gets 200 over https; plain HTTP to the TLS port is answered
#           400 in plain text and the port keeps serving; garbage is
#           closed; past the connection limit a TLS client gets a TLS
#           alert at once; an expired certificate, a key that is not the
#           certificate's, a missing file and half a pair refuse to start
#           with a message that says which
#   keys    401 (no header, a wrong key, a malformed Authorization) with
#           WWW-Authenticate, 403 (a read key writing, a key for another
#           collection, /metrics without the right), 200/201 with the right
#           key; nothing refused changed anything; /health and /ready stay
#           open; the keys never appear in the log (at log = debug); a
#           malformed key file refuses to start at FILE:LINE without
#           showing the line
#   rates   a burst past the per-key limit gets 429 with Retry-After, and
#           so does one past the per-address limit (requests without a
#           valid key); a key is limited by its own bucket, not by its
#           address's; after Retry-After requests pass again; nothing
#           refused was applied; the refusals are counted by reason
#
# Each scenario is its own single-box cluster (the edge is the same
# whatever sits behind the balancer: api.sh runs both placements). Prints
# TAP. Every process started here is killed by pid on exit, also when a
# test fails.

dir=$(mktemp -d "${TMPDIR:-/tmp}/tiers-auth-XXXXXX")
. "${top_srcdir:-.}/t/cluster/lib.sh"

[ -x "$TOOL" ] || { echo "1..0 # SKIP t/cluster/tool not built"; exit 0; }
command -v openssl >/dev/null || { echo "1..0 # SKIP openssl is not installed (to make the test certificates)"; exit 0; }

map_head () { box_map_head "$1" "log = debug"; }   # the cluster block and the back end
# refuses MAP TEXT DESCRIPTION: `tiers run` exits 1 before it is ready,
# saying TEXT; its output is in $dir/refused
refuses () {
    timeout 20 "$TIERS" run -m "$1" >"$dir/refused" 2>&1; status=$?
    is "$status" 1 "$3: tiers run exits 1"
    if grep -qF -- "$2" "$dir/refused"; then ok 0 "$3: ... saying \"$2\""
    else ok 1 "$3: ... saying \"$2\""; sed 's/^/#   /' "$dir/refused" | grep -v DEBUG | tail -n 5; fi
}
auth () { echo "Authorization: Bearer $1"; }
codes () {        # codes CURL ARGS... URLS: the status of each URL, one curl
    curl -s -m 5 -w '\ncode %{http_code}\n' "$@" | sed -n 's/^code //p' | tr '\n' ' ' | sed 's/ $//'
}

# The keys: a writer of users, a reader of everything, a writer of orders
# only, a scraper of /metrics (which makes /metrics need a key), and one
# given only as its SHA-256 (of "digest-only-key-0123456789").
WRITER=wk-7f3a9c1e5b2d8f4a6c0e
READER=rk-2b8d4f6a0c1e3a5c7e9b
ORDERS=ok-9e1c3a5b7d2f4e6a8c0b
SCRAPER=sk-4d6f8a0c2e1b3d5f7a9c
HASHED=digest-only-key-0123456789
digest=$(printf %s "$HASHED" | openssl dgst -sha256 -r | cut -d' ' -f1)
cat >"$dir/keys" <<EOF
# NAME    KEY                        RIGHTS       COLLECTIONS
writer    $WRITER     read,write   users
reader    $READER     read         *     # reads everything
orders    $ORDERS     read,write   orders
scraper   $SCRAPER     metrics
hashed    sha256:$digest   read   users
EOF
chmod 600 "$dir/keys"

# --------------------------------------------------------------------------
# TLS

days=30
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days $days \
    -keyout "$dir/key.pem" -out "$dir/cert.pem" -subj /CN=localhost \
    -addext subjectAltName=IP:127.0.0.1,DNS:localhost >"$dir/openssl.log" 2>&1
ok $? "tls: openssl made a certificate for 127.0.0.1"
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$dir/other.pem" \
    -out "$dir/other.csr" -subj /CN=other >>"$dir/openssl.log" 2>&1
# An expired certificate: openssl 3.0's req cannot date one in the past,
# its ca can (self-signed, 2020-01-01 to 2020-01-02).
mkdir "$dir/ca" && : >"$dir/ca/index.txt" && echo 01 >"$dir/ca/serial"
printf '[ca]\ndefault_ca = d\n[d]\ndatabase = %s/ca/index.txt\nnew_certs_dir = %s/ca\nserial = %s/ca/serial\ndefault_md = sha256\npolicy = p\n[p]\ncommonName = supplied\n' \
    "$dir" "$dir" "$dir" >"$dir/ca/ca.cnf"
openssl ca -batch -config "$dir/ca/ca.cnf" -selfsign -keyfile "$dir/other.pem" \
    -in "$dir/other.csr" -startdate 20200101000000Z -enddate 20200102000000Z \
    -out "$dir/expired.pem" >>"$dir/openssl.log" 2>&1
ok $? "tls: openssl made an expired certificate"

port=$(freeport)
tls_map () {      # tls_map NAME CERT KEY: a gateway with those files
    { map_head "$1"; cat <<EOF
    gateway
        http = 127.0.0.1:$port
        connections = 2
        api_keys = $dir/keys
EOF
      [ -n "$2" ] && echo "        tls_cert = $2"
      [ -n "$3" ] && echo "        tls_key = $3"
    } >"$dir/$1.map"
}
tls_map tls "$dir/cert.pem" "$dir/key.pem"
if start_node "$dir/tls.log" run -m "$dir/tls.map"; then
    web=$pid
    grep -q "tiers: gateway gateway listening on https://127.0.0.1:$port" "$dir/tls.log"
    ok $? "tls: the gateway says it listens on https://"
    grep -Eq "TLS: certificate CN=localhost \(1 in the chain\), expires .* \(in ($((days - 1))|$days) days\)" "$dir/tls.log"
    ok $? "tls: ... and logs the certificate and its expiry"
    base="https://127.0.0.1:$port"
    req GET /health --cacert "$dir/cert.pem"
    is "$code" 200 "tls: curl --cacert: GET /health over https is 200"
    req PUT /v1/users/t1 --cacert "$dir/cert.pem" -H "$(auth $WRITER)" -d '{"over":"tls"}'
    is "$code" 201 "tls: a PUT with a key over https is 201"
    req GET /v1/users/t1 --cacert "$dir/cert.pem" -H "$(auth $READER)"
    is "$code $(body)" '200 {"over":"tls"}' "tls: ... and reads back"
    req GET /v1/users/t1 --cacert "$dir/cert.pem"
    is "$code" 401 "tls: without a key over https: 401"
    curl -s -m 5 -o /dev/null "$base/health" 2>/dev/null
    is "$?" 60 "tls: curl without --cacert refuses the certificate (unknown issuer)"
    # Plain HTTP to the TLS port: a plain 400 that says so, at once.
    printf 'GET /v1/users/t1 HTTP/1.1\r\nHost: x\r\n\r\n' | "$TOOL" send "$port" >"$dir/plain" 2>&1
    is "$(head -n 1 "$dir/plain" | tr -d '\r')" "HTTP/1.1 400 Bad Request" "tls: plain HTTP to the TLS port: 400"
    grep -q '"detail":"this port speaks HTTPS: plain HTTP is not served here (use https://)"' "$dir/plain"
    ok $? "tls: ... saying it speaks HTTPS"
    grep -q '^Connection: close' "$dir/plain"; ok $? "tls: ... and closing"
    code=$(curl -s -m 3 -o "$dir/body" -w '%{http_code}' "http://127.0.0.1:$port/health")
    is "$code" 400 "tls: curl http:// to the TLS port: 400, no hang"
    # Bytes that are neither: the handshake fails and the connection closes.
    start=$(date +%s)
    printf '\001\002\003garbage\r\n\r\n' | "$TOOL" send "$port" >"$dir/garbage" 2>&1
    is "$(( $(date +%s) - start <= 1 )):$(grep -c HTTP "$dir/garbage")" "1:0" \
        "tls: garbage on the TLS port: closed at once, no HTTP answer"
    req GET /health --cacert "$dir/cert.pem"
    is "$code" 200 "tls: ... and the port still serves"
    # Past the limit (connections = 2, held by two clients that say
    # nothing yet, for 6 s: on a loaded machine the refusal may take a
    # while to ask for): a TLS alert at once, where a 503 cannot be written.
    # On a loaded machine the gateway may not have let go of the last
    # request's connection when the two come, and then one of them is
    # refused in its place: the round is played again (three times at
    # most), and every refusal a client saw is counted.
    req GET /metrics --cacert "$dir/cert.pem" -H "$(auth $SCRAPER)"
    before=$(sed -n 's/^tiers_gateway_refused_total{limit="connections"} //p' "$dir/body")
    seen=0
    round=0
    while :; do
        round=$((round + 1))
        "$TOOL" hold "$port" 2 6 >"$dir/hold" 2>&1 &
        hold=$!
        pids="$pids $hold"
        i=0
        while [ $i -lt 40 ] && ! grep -q "connected 2" "$dir/hold"; do sleep 0.05; i=$((i + 1)); done
        # The kernel took the two; until the gateway has accepted them (a
        # moment later on a loaded machine) a third is served: ask again, 2 s.
        i=0
        while :; do
            start=$(date +%s)
            curl -s -m 3 -o /dev/null --cacert "$dir/cert.pem" "$base/health" 2>"$dir/alert"
            status=$?
            [ $status -ne 0 ] && break
            i=$((i + 1)); [ $i -lt 40 ] || break
            sleep 0.05
        done
        fast=$(( $(date +%s) - start <= 1 ))
        [ $status = 35 ] && seen=$((seen + 1))
        curl -sv -m 3 -o /dev/null --cacert "$dir/cert.pem" "$base/health" 2>"$dir/alert"
        alert=1
        grep -q "alert internal error" "$dir/alert" && { alert=0; seen=$((seen + 1)); }
        wait "$hold"; forget "$hold"
        held=$(sed -n 's/^open //p' "$dir/hold")
        seen=$((seen + 2 - ${held:-0}))
        [ "$status:$fast:$alert:$held" = "35:1:0:2" ] || [ $round -ge 3 ] && break
        echo "# round $round: curl $status, alert $alert, the hold kept $held open: again"
        sleep 1
    done
    is "$status:$fast" "35:1" "tls: over the connection limit: the handshake fails at once (curl 35)"
    ok $alert "tls: ... with a TLS alert"
    is "$held" 2 "tls: ... while the two held their slots"
    req GET /metrics --cacert "$dir/cert.pem" -H "$(auth $SCRAPER)"
    after=$(sed -n 's/^tiers_gateway_refused_total{limit="connections"} //p' "$dir/body")
    is "$(( ${after:-0} - ${before:-0} ))" "$seen" "tls: the refusals are counted ($seen in $round rounds)"
    stop_pid "$web" TERM; ok $? "tls: node stops with exit 0"
else
    ok 1 "tls: cluster started"
fi

# Files that cannot be served: nothing starts, and the message says why.
tls_map expired "$dir/expired.pem" "$dir/other.pem"
refuses "$dir/expired.map" "tls_cert $dir/expired.pem: the certificate expired on 2020-01-02 00:00:00 UTC" \
    "tls: an expired certificate"
tls_map mismatch "$dir/cert.pem" "$dir/other.pem"
refuses "$dir/mismatch.map" "tls_key $dir/other.pem is not the key of the certificate in tls_cert $dir/cert.pem" \
    "tls: a key that is not the certificate's"
tls_map missing "$dir/nothing.pem" "$dir/key.pem"
refuses "$dir/missing.map" "cannot read tls_cert $dir/nothing.pem: No such file or directory" \
    "tls: a missing certificate"
tls_map notpem "$dir/keys" "$dir/key.pem"
refuses "$dir/notpem.map" "tls_cert $dir/keys holds no PEM certificate" "tls: a file that is no certificate"
if grep -qF -e "$WRITER" -e "$READER" "$dir/refused"; then ok 1 "tls: ... and it shows nothing of that file"
else ok 0 "tls: ... and it shows nothing of that file"; fi
tls_map half "$dir/cert.pem" ""
refuses "$dir/half.map" "tls_cert and tls_key go together: the entry has only tls_cert" \
    "tls: a certificate without its key"

# --------------------------------------------------------------------------
# API keys

port=$(freeport)
{ map_head keys; cat <<EOF
    gateway
        http = 127.0.0.1:$port
        api_keys = $dir/keys
EOF
} >"$dir/keys.map"
if start_node "$dir/keys.log" run -m "$dir/keys.map"; then
    web=$pid
    base="http://127.0.0.1:$port"
    grep -q "api_keys $dir/keys: 5 keys, /metrics needs a key; rate_per_key 1000/s (burst 1000), rate_per_client 20/s (burst 20)" "$dir/keys.log"
    ok $? "keys: the log says how many keys and the default limits"

    req PUT /v1/users/u1 -H "$(auth $WRITER)" -d '{"v":1}'
    is "$code" 201 "keys: the writer key PUTs users/u1: 201"
    etag=$(hdr ETag)
    req GET /v1/users/u1 -H "$(auth $READER)"
    is "$code $(body)" '200 {"v":1}' "keys: the reader key GETs it: 200"
    req GET /v1/users/u1 -H "$(auth $HASHED)"
    is "$code" 200 "keys: a key given in the file as sha256: works"
    req GET /v1/users?limit=5 -H "$(auth $READER)"
    is "$code" 200 "keys: the reader key lists users: 200"

    # 401: no key, a wrong one, malformed ones.
    req GET /v1/users/u1
    is "$code" 401 "keys: no Authorization: 401"
    is "$(hdr Content-Type)" "application/problem+json" "keys: ... problem+json"
    is "$(hdr WWW-Authenticate)" 'Bearer realm="tiers"' "keys: ... WWW-Authenticate: Bearer realm=\"tiers\""
    has '"detail":"this API takes requests with a key: send Authorization: Bearer KEY"'
    ok $? "keys: ... saying how to send one"
    req GET /v1/users/u1 -H "$(auth wk-7f3a9c1e5b2d8f4a6c0f)"
    is "$code" 401 "keys: a wrong key (one character off): 401"
    is "$(hdr WWW-Authenticate)" 'Bearer realm="tiers", error="invalid_token"' "keys: ... error=\"invalid_token\""
    for bad in "Basic $WRITER" "Bearer" "Bearer $WRITER extra" "Bearer ==$WRITER" "$WRITER"; do
        req GET /v1/users/u1 -H "Authorization: $bad"
        is "$code:$(hdr WWW-Authenticate)" '401:Bearer realm="tiers", error="invalid_request"' \
            "keys: a malformed Authorization: 401 invalid_request ($(echo "$bad" | sed "s/$WRITER/KEY/"))"
    done
    req GET /v1/users/u1 -H "$(auth $WRITER)" -H "$(auth $READER)"
    is "$code" 401 "keys: two Authorization lines: 401"
    req GET /v1/users/u1 -H "authorization: bearer $READER"
    is "$code" 200 "keys: the header and the scheme in any case: 200"

    # Refused writes, none applied.
    req PUT /v1/users/u1 -d '{"v":"no key"}'
    is "$code" 401 "keys: a PUT without a key: 401"
    req PUT /v1/users/u1 -H "$(auth nope-not-a-key-at-all)" -d '{"v":"wrong key"}'
    is "$code" 401 "keys: a PUT with a wrong key: 401"
    req PUT /v1/users/u1 -H "$(auth $READER)" -d '{"v":"read key"}'
    is "$code" 403 "keys: a PUT with a read key: 403"
    is "$(hdr WWW-Authenticate)" 'Bearer realm="tiers", error="insufficient_scope"' "keys: ... error=\"insufficient_scope\""
    has "\"detail\":\"the key 'reader' may not write to collection 'users'\""
    ok $? "keys: ... naming the key, not its secret"
    req DELETE /v1/users/u1 -H "$(auth $READER)"
    is "$code" 403 "keys: a DELETE with a read key: 403"
    req PUT /v1/users/u2 -H "$(auth $ORDERS)" -d '{"v":"orders key"}'
    is "$code" 403 "keys: a PUT to users with the orders key: 403"
    req DELETE /v1/users/u1 -H "$(auth $ORDERS)"
    is "$code" 403 "keys: a DELETE in users with the orders key: 403"
    req GET /v1/orders/o1 -H "$(auth $WRITER)"
    is "$code" 403 "keys: a GET in orders with the users key: 403"
    req GET /v1/orders -H "$(auth $WRITER)"
    is "$code" 403 "keys: a list of orders with the users key: 403"
    req PUT /v1/orders/o1 -H "$(auth $ORDERS)" -d '{"o":1}'
    is "$code" 201 "keys: the orders key PUTs orders/o1: 201"
    req GET /v1/users/u1 -H "$(auth $READER)"
    is "$code $(body) $(hdr ETag)" "200 {\"v\":1} $etag" "keys: after all that users/u1 is as it was (body and ETag)"
    req GET /v1/users/u2 -H "$(auth $READER)"
    is "$code" 404 "keys: ... and users/u2 was never made"

    # What stays open.
    req GET /health
    is "$code" 200 "keys: /health without a key: 200"
    req GET /ready
    is "$code" 200 "keys: /ready without a key: 200"
    req GET /metrics
    is "$code" 401 "keys: /metrics without a key (a key holds metrics): 401"
    req GET /metrics -H "$(auth $WRITER)"
    is "$code" 403 "keys: /metrics with a key without the right: 403"
    req GET /metrics -H "$(auth $SCRAPER)"
    is "$code" 200 "keys: /metrics with the scraper key: 200"
    cp "$dir/body" "$dir/metrics"
    grep -q '^tiers_gateway_denied_total{reason="key_missing"} 3$' "$dir/metrics"
    ok $? "keys: tiers_gateway_denied_total counts 3 without a key"
    grep -q '^tiers_gateway_denied_total{reason="key_unknown"} 2$' "$dir/metrics"
    ok $? "keys: ... 2 unknown keys"
    grep -q '^tiers_gateway_denied_total{reason="key_malformed"} 6$' "$dir/metrics"
    ok $? "keys: ... 6 malformed"
    grep -q '^tiers_gateway_denied_total{reason="key_rights"} 7$' "$dir/metrics"
    ok $? "keys: ... 7 beyond their rights"
    grep -c '^tiers_gateway_denied_total' "$dir/metrics" >"$dir/count"
    is "$(cat "$dir/count")" 6 "keys: ... six series, one per reason (no key in a label)"
    stop_pid "$web" TERM; ok $? "keys: node stops with exit 0"
    # The log is at debug: every request and refusal is in it, no key.
    leaked=0
    for k in "$WRITER" "$READER" "$ORDERS" "$SCRAPER" "$HASHED" "$digest" wk-7f3a9c1e5b2d8f4a6c0f; do
        grep -qF -- "$k" "$dir/keys.log" && { leaked=1; diag "key in the log: $k"; }
    done
    ok $leaked "keys: no key appears in the log (at debug)"
    grep -q "403 key_rights (the key 'reader' may not write to collection 'users')" "$dir/keys.log"
    ok $? "keys: ... where the refusals are, by key name"
else
    ok 1 "keys: cluster started"
fi

# A malformed key file: refused at its line, without the line's text.
printf '# ok so far\nwriter %s read,write users\nreader %s admin *\n' "$WRITER" "$READER" >"$dir/bad-keys"
{ map_head badkeys; cat <<EOF
    gateway
        http = 127.0.0.1:$port
        api_keys = $dir/bad-keys
EOF
} >"$dir/badkeys.map"
refuses "$dir/badkeys.map" "$dir/bad-keys:3: the rights (field 3) are read, write or metrics" \
    "keys: an unknown right on line 3"
if grep -qF -e "$READER" -e "$WRITER" -e admin "$dir/refused"; then ok 1 "keys: ... showing nothing of the file"
else ok 0 "keys: ... showing nothing of the file"; fi
printf 'writer %s read,write users\nshort abc read *\n' "$WRITER" >"$dir/bad-keys"
refuses "$dir/badkeys.map" "$dir/bad-keys:2: the key (field 2) must be 16 to 256" "keys: a key too short on line 2"
: >"$dir/bad-keys"
refuses "$dir/badkeys.map" "$dir/bad-keys: no keys" "keys: an empty key file"
rm -f "$dir/bad-keys"
refuses "$dir/badkeys.map" "cannot read api_keys $dir/bad-keys: No such file or directory" \
    "keys: a missing key file"

# --------------------------------------------------------------------------
# Rate limits: gateway `limited` takes 3 at once and 1 a second, per key
# and per address; gateway `open` (no keys, no limits) looks at the data.

port=$(freeport); other=$(freeport)
{ map_head rates; cat <<EOF
    gateway = limited
        http = 127.0.0.1:$port
        api_keys = $dir/keys
        rate_per_key = 1
        burst_per_key = 3
        rate_per_client = 1
        burst_per_client = 3
    gateway = open
        http = 127.0.0.1:$other
EOF
} >"$dir/rates.map"
if start_node "$dir/rates.log" run -m "$dir/rates.map"; then
    web=$pid
    base="http://127.0.0.1:$port"
    # A bucket of 3 refilled at 1 a second says exactly what it does only
    # to a round that takes less than a second from its first request to
    # its last: each round is one curl (its connection kept alive), timed;
    # a slower one is played again (three rounds at most) once the bucket
    # is full again, and what every round's answers said (the 429s, the
    # writes applied) is what the rest is checked against.
    now_ms () { echo $(( $(date +%s%N) / 1000000 )); }
    W='\ncode %{http_code}\n'
    round () {    # round CURL ARGS...: the codes in $got, the time in $round_ms
        r_t0=$(now_ms)
        got=$(curl -s -m 5 -w "$W" "$@" | sed -n 's/^code //p' | tr '\n' ' ' | sed 's/ $//')
        round_ms=$(($(now_ms) - r_t0))
    }
    nth () { nth_n=$1; set -- $got; eval "echo \${$nth_n}"; }   # nth N: the Nth code of $got
    fourth () {   # the 4th answer's head and body as $dir/hdr and $dir/body (hdr, has)
        awk '/^HTTP\// { n++ } n == 4' "$dir/rhdr" >"$dir/hdr"; cp "$dir/rbody" "$dir/body"
    }
    count429 () { echo "$got" | tr ' ' '\n' | grep -c '^429$'; }
    rate_client=0; rate_key=0
    # Per address: requests without a valid key (here, a wrong one), and
    # /ready from the same address.
    tries=0
    while :; do
        tries=$((tries + 1)); : >"$dir/rhdr"
        round -H "$(auth nope-not-a-key-at-all)" -D "$dir/rhdr" \
              -o /dev/null "$base/v1/users/g1" -o /dev/null "$base/v1/users/g2" \
              -o /dev/null "$base/v1/users/g3" -o "$dir/rbody" "$base/v1/users/g4" \
              --next -s -m 5 -w "$W" -o /dev/null "$base/ready"
        rate_client=$((rate_client + $(count429)))
        [ "$round_ms" -lt 1000 ] || [ $tries -ge 3 ] || {
            diag "rates: the address's round took $round_ms ms ($got): again"; sleep 3.5; continue; }
        break
    done
    fourth
    is "$(nth 1) $(nth 2) $(nth 3)" "401 401 401" "rates: 3 requests with a wrong key: 401 each (the address's burst; $round_ms ms, round $tries)"
    is "$(nth 4)" 429 "rates: the 4th from that address: 429"
    is "$(hdr Retry-After)" 1 "rates: ... Retry-After: 1"
    is "$(hdr Content-Type)" "application/problem+json" "rates: ... problem+json"
    has '"detail":"your address is over its limit of 1 requests a second (burst 3); nothing was done"'
    ok $? "rates: ... saying which limit"
    is "$(nth 5)" 429 "rates: /ready from that address: 429 too"
    req GET /health
    is "$code" 200 "rates: /health is never limited"
    # Per key: the writer's own bucket, whatever its address's says. What
    # the writes did, as their answers say: k1..k5 there (1) or not (0).
    k1=0; k2=0; k3=0; k4=0; k5=0
    put_code () { eval "[ \$$1 = 1 ]" && echo 200 || echo 201; }   # what a PUT of it answers
    tries=0
    while :; do
        tries=$((tries + 1)); : >"$dir/rhdr"
        want="$(put_code k1) $(put_code k2) $(put_code k3)"
        round -H "$(auth $WRITER)" -X PUT -d '{"r":1}' \
              -o /dev/null "$base/v1/users/k1" -o /dev/null "$base/v1/users/k2" \
              -o /dev/null "$base/v1/users/k3" -D "$dir/rhdr" -o "$dir/rbody" "$base/v1/users/k4" \
              --next -s -m 5 -w "$W" -H "$(auth $WRITER)" -X DELETE -o /dev/null "$base/v1/users/k1" \
              --next -s -m 5 -w "$W" -H "$(auth $READER)" -o /dev/null "$base/v1/users/k1"
        # the writer's 429s (the reader's GET is the 6th)
        rate_key=$((rate_key + $(echo "$got" | cut -d' ' -f1-5 | tr ' ' '\n' | grep -c '^429$')))
        i=1
        for k in k1 k2 k3 k4; do
            case $(nth $i) in 200|201) eval "$k=1" ;; esac; i=$((i + 1))
        done
        [ "$(nth 5)" = 204 ] && k1=0
        [ "$round_ms" -lt 1000 ] || [ $tries -ge 3 ] || {
            diag "rates: the key's round took $round_ms ms ($got): again"; sleep 3.5; continue; }
        break
    done
    fourth
    is "$(nth 1) $(nth 2) $(nth 3)" "$want" "rates: 3 PUTs with a key, from the same address: $want (the key's burst; $round_ms ms, round $tries)"
    is "$(nth 4)" 429 "rates: the 4th PUT with that key: 429"
    is "$(hdr Retry-After)" 1 "rates: ... Retry-After: 1"
    has "\"detail\":\"the key 'writer' is over its limit of 1 requests a second (burst 3); nothing was done\""
    ok $? "rates: ... saying which limit, by the key's name"
    is "$(nth 5)" 429 "rates: a DELETE with that key: 429"
    is "$(nth 6)" 200 "rates: another key is served meanwhile"
    sleep 1.1
    req PUT /v1/users/k5 -H "$(auth $WRITER)" -d '{"r":5}'
    is "$code" 201 "rates: after Retry-After, a PUT with the key passes again"
    case $code in 200|201) k5=1 ;; 429) rate_key=$((rate_key + 1)) ;; esac
    req GET /v1/users/g5 -H "$(auth nope-not-a-key-at-all)"
    is "$code" 401 "rates: ... and the address is answered again (401, not 429)"
    [ "$code" = 429 ] && rate_client=$((rate_client + 1))
    # What was applied: k1-k3 and k5; the refused k4 and DELETE were not
    # (unless a slow round's answers said otherwise).
    want=""
    for k in k1 k2 k3 k4 k5; do eval "[ \$$k = 1 ]" && want="$want 200" || want="$want 404"; done
    base="http://127.0.0.1:$other"
    got=$(codes "$base/v1/users/k1" "$base/v1/users/k2" "$base/v1/users/k3" "$base/v1/users/k4" "$base/v1/users/k5")
    is "$got" "${want# }" "rates: nothing refused was applied (k4 absent, k1 not deleted)"
    req GET /metrics
    grep -q "^tiers_gateway_denied_total{reason=\"rate_key\"} $rate_key\$" "$dir/body"
    ok $? "rates: tiers_gateway_denied_total counts $rate_key over the key's limit (2 a round)"
    grep -q "^tiers_gateway_denied_total{reason=\"rate_client\"} $rate_client\$" "$dir/body"
    ok $? "rates: ... and $rate_client over the address's"
    stop_pid "$web" TERM; ok $? "rates: node stops with exit 0"
else
    ok 1 "rates: cluster started"
fi

echo "1..$n"
[ $failed -eq 0 ]
