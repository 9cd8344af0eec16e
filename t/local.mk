# Unit tests (one per module) and cluster tests; all print TAP.
UNIT_TESTS = t/unit/tags.t t/unit/wire.t t/unit/map.t t/unit/log.t t/unit/metrics.t t/unit/node.t t/unit/shard.t \
    t/unit/poller.t t/unit/names.t t/unit/problem.t
CLUSTER_TESTS = t/cluster/balancer.t t/cluster/gateway.t t/cluster/wire_api.t
check_PROGRAMS += $(UNIT_TESTS) $(CLUSTER_TESTS)
TESTS += $(UNIT_TESTS) $(CLUSTER_TESTS) t/cluster/cli.sh

t_unit_wire_t_SOURCES = t/unit/wire.c t/tap.h t/fuzz/wire_cases.h
t_unit_wire_t_LDADD = $(TIERS_LIBS)
t_unit_map_t_SOURCES = t/unit/map.c t/tap.h
t_unit_map_t_LDADD = $(TIERS_LIBS)
t_unit_log_t_SOURCES = t/unit/log.c t/tap.h
t_unit_log_t_LDADD = $(TIERS_LIBS)
t_unit_metrics_t_SOURCES = t/unit/metrics.c t/tap.h
t_unit_metrics_t_LDADD = $(TIERS_LIBS)
t_cluster_balancer_t_SOURCES = t/cluster/balancer.c t/cluster/harness.c t/cluster/harness.h t/cluster/ports.c t/cluster/ports.h t/tap.h
t_cluster_balancer_t_LDADD = $(TIERS_LIBS)

EXTRA_DIST += t/cluster/cli.sh t/fuzz/corpus t/fuzz/wire_fuzz.c t/fuzz/make-corpus.c \
    t/fuzz/header_fuzz.c t/fuzz/keys_fuzz.c

if FUZZING
noinst_PROGRAMS += t/fuzz/wire_fuzz
# wire.c and what it calls (poller.c: tiers_poller_sent) are compiled here,
# not taken from libtiers.a, so that libFuzzer's coverage instruments them.
t_fuzz_wire_fuzz_SOURCES = t/fuzz/wire_fuzz.c runtime/wire.c runtime/poller.c
t_fuzz_wire_fuzz_CFLAGS = $(AM_CFLAGS) -fsanitize=fuzzer
t_fuzz_wire_fuzz_LDFLAGS = $(AM_LDFLAGS) -fsanitize=fuzzer
t_fuzz_wire_fuzz_LDADD = $(CZMQ_LIBS) $(ZMQ_LIBS)
# The API tier's header decoders (If-Match lists, Idempotency-Key,
# Tiers-Token): api_core.c and token.c are compiled here for coverage;
# libtiers.a gives the rest.
noinst_PROGRAMS += t/fuzz/header_fuzz
t_fuzz_header_fuzz_SOURCES = t/fuzz/header_fuzz.c actors/api_core.c actors/token.c
t_fuzz_header_fuzz_CFLAGS = $(AM_CFLAGS) -fsanitize=fuzzer
t_fuzz_header_fuzz_LDFLAGS = $(AM_LDFLAGS) -fsanitize=fuzzer
t_fuzz_header_fuzz_LDADD = $(TIERS_LIBS)
# The commit stream's keys bodies (actors/follow.c), compiled here for
# coverage.
noinst_PROGRAMS += t/fuzz/keys_fuzz
t_fuzz_keys_fuzz_SOURCES = t/fuzz/keys_fuzz.c actors/follow.c
t_fuzz_keys_fuzz_CFLAGS = $(AM_CFLAGS) -fsanitize=fuzzer
t_fuzz_keys_fuzz_LDFLAGS = $(AM_LDFLAGS) -fsanitize=fuzzer
t_fuzz_keys_fuzz_LDADD = $(TIERS_LIBS)
endif
t_unit_node_t_SOURCES = t/unit/node.c t/tap.h
t_unit_node_t_LDADD = $(TIERS_LIBS)
t_unit_shard_t_SOURCES = t/unit/shard.c t/tap.h
t_unit_shard_t_LDADD = $(TIERS_LIBS)

# A helper of the shell cluster tests (free ports, slow clients).
check_PROGRAMS += t/cluster/tool
t_cluster_tool_SOURCES = t/cluster/tool.c t/cluster/ports.c t/cluster/ports.h
# the ports handed out to tests (t/cluster/ports.h)
CLEANFILES += t/cluster/.ports
t_cluster_gateway_t_SOURCES = t/cluster/gateway.c t/cluster/harness.c t/cluster/harness.h t/cluster/ports.c t/cluster/ports.h t/tap.h
t_cluster_gateway_t_LDADD = $(TIERS_LIBS)
TESTS += t/cluster/api.sh
EXTRA_DIST += t/cluster/api.sh
# The edge against floods and slow clients (raw sockets: tool flood, trickle).
TESTS += t/cluster/edge.sh
EXTRA_DIST += t/cluster/edge.sh
t_cluster_wire_api_t_SOURCES = t/cluster/wire_api.c t/cluster/harness.c t/cluster/harness.h t/cluster/ports.c t/cluster/ports.h t/tap.h
t_cluster_wire_api_t_LDADD = $(TIERS_LIBS)
t_unit_poller_t_SOURCES = t/unit/poller.c t/tap.h
t_unit_poller_t_LDADD = $(TIERS_LIBS)
# Reads over replicas (played by the test) with read-your-writes, both placements.
CLUSTER_TESTS += t/cluster/replicas.t
t_cluster_replicas_t_SOURCES = t/cluster/replicas.c t/cluster/harness.c t/cluster/harness.h t/cluster/ports.c t/cluster/ports.h t/tap.h
t_cluster_replicas_t_LDADD = $(TIERS_LIBS)
# The example kind of doc/actors.md (two ports, two links) in both placements.
CLUSTER_TESTS += t/cluster/relay.t
t_cluster_relay_t_SOURCES = t/cluster/relay.c t/cluster/harness.c t/cluster/harness.h t/cluster/ports.c t/cluster/ports.h t/tap.h
t_cluster_relay_t_LDADD = $(TIERS_LIBS)
t_unit_names_t_SOURCES = t/unit/names.c t/tap.h
t_unit_names_t_LDADD = $(TIERS_LIBS)
t_unit_problem_t_SOURCES = t/unit/problem.c t/tap.h
t_unit_problem_t_LDADD = $(TIERS_LIBS)
t_unit_tags_t_SOURCES = t/unit/tags.c t/tap.h
t_unit_tags_t_LDADD = $(TIERS_LIBS)
# Session tokens (Tiers-Token): the parser and a write's entry.
UNIT_TESTS += t/unit/token.t
t_unit_token_t_SOURCES = t/unit/token.c t/tap.h
t_unit_token_t_LDADD = $(TIERS_LIBS)
# Storage faults through HTTP: EIO on fsync (the shim t/fault/eio.c,
# LD_PRELOADed), kill -9, incarnations, Idempotency-Key.
check_PROGRAMS += t/fault/eio.so
t_fault_eio_so_SOURCES = t/fault/eio.c
t_fault_eio_so_CFLAGS = -fPIC -O2
t_fault_eio_so_LDFLAGS = -shared
t_fault_eio_so_LDADD = -ldl
TESTS += t/cluster/faults.sh
EXTRA_DIST += t/cluster/faults.sh t/cluster/lib.sh
# The reactor (timers between the messages of a burst) and the worker side
# of the balancer protocol (a quiet balancer keeps its link): issue 10,
# item 13.
UNIT_TESTS += t/unit/reactor.t t/unit/service.t
t_unit_reactor_t_SOURCES = t/unit/reactor.c t/tap.h
t_unit_reactor_t_LDADD = $(TIERS_LIBS)
t_unit_service_t_SOURCES = t/unit/service.c t/tap.h
t_unit_service_t_LDADD = $(TIERS_LIBS)
# Heartbeats under 64 concurrent 1 MB PUTs (issue 10, item 13).
TESTS += t/cluster/heartbeat.sh
EXTRA_DIST += t/cluster/heartbeat.sh
# The VPC rung: CURVE between nodes, strangers at a shard's port.
check_PROGRAMS += t/cluster/probe
t_cluster_probe_SOURCES = t/cluster/probe.c
t_cluster_probe_LDADD = $(TIERS_LIBS)
TESTS += t/cluster/security.sh
EXTRA_DIST += t/cluster/security.sh
# The public edge: the API key file and the rate limits' buckets (gateway/).
UNIT_TESTS += t/unit/keys.t t/unit/limit.t
t_unit_keys_t_SOURCES = t/unit/keys.c t/tap.h
t_unit_keys_t_LDADD = $(TIERS_LIBS)
t_unit_limit_t_SOURCES = t/unit/limit.c t/tap.h
t_unit_limit_t_LDADD = $(TIERS_LIBS)
# The guarded public edge: HTTPS, API keys, rate limits (curl, openssl).
TESTS += t/cluster/edge-auth.sh
EXTRA_DIST += t/cluster/edge-auth.sh
# The commit stream's primary side, with the test playing a replica.
CLUSTER_TESTS += t/cluster/stream.t
t_cluster_stream_t_SOURCES = t/cluster/stream.c t/cluster/harness.c t/cluster/harness.h t/cluster/ports.c t/cluster/ports.h t/tap.h
t_cluster_stream_t_LDADD = $(TIERS_LIBS)
# The replica against a primary the test plays by hand (inproc, and a
# `tiers run` process on tcp): snapshot, streaming, reads, resyncs.
CLUSTER_TESTS += t/cluster/replica.t
t_cluster_replica_t_SOURCES = t/cluster/replica.c t/cluster/harness.c t/cluster/harness.h t/cluster/ports.c t/cluster/ports.h t/tap.h
t_cluster_replica_t_LDADD = $(TIERS_LIBS)
# A real shard and real replicas as processes, CURVE between them: from
# empty and after kill -9 under curl write load (sqlite3 reads the files).
TESTS += t/cluster/replication.sh
EXTRA_DIST += t/cluster/replication.sh
# Losing the primary's machine with ack = replica; tiers promote; fencing.
TESTS += t/cluster/failover.sh
EXTRA_DIST += t/cluster/failover.sh
# A replica's node in a network namespace of its own (a veth pair the
# test makes and removes; root and iproute2, else skipped): the link cut
# for 5 s under curl write load, and the catch-up from the shard's log.
TESTS += t/cluster/partition.sh
EXTRA_DIST += t/cluster/partition.sh
# Tiers-Token and Tiers-Consistency on real replicas through the gateway:
# frozen replica nodes (SIGSTOP), tokens merged over two shards, eventual
# convergence, a re-snapshot past log_changes, strong reads; and in one
# process (inproc).
TESTS += t/cluster/consistency.sh
EXTRA_DIST += t/cluster/consistency.sh
# The caches' ring (rendezvous hashing): spread, 3 -> 4 caches, down marks.
UNIT_TESTS += t/unit/ring.t
t_unit_ring_t_SOURCES = t/unit/ring.c t/tap.h
t_unit_ring_t_LDADD = $(TIERS_LIBS)
# The cache tier and the read-api's cache-aside, in one process: hit, miss,
# fill, invalidation, negative entries, TTL, eviction under the cap, tokens,
# bad input on the cache's port, 1,000 concurrent GETs of one cold key.
CLUSTER_TESTS += t/cluster/cache.t
t_cluster_cache_t_SOURCES = t/cluster/cache.c t/cluster/harness.c t/cluster/harness.h t/cluster/ports.c t/cluster/ports.h t/tap.h
t_cluster_cache_t_LDADD = $(TIERS_LIBS)

# KEYS followers of the commit stream: the stream's side by hand, and the
# follower client (actors/follow.c) against real shards and a fake primary.
CLUSTER_TESTS += t/cluster/follow.t
t_cluster_follow_t_SOURCES = t/cluster/follow.c t/cluster/harness.c t/cluster/harness.h t/cluster/ports.c t/cluster/ports.h t/tap.h
t_cluster_follow_t_LDADD = $(TIERS_LIBS)
# maps/cache.map split over processes (CURVE) under a consistency checker
# (python3): tokens, committed versions, convergence, a cache killed -9 and
# started again.
TESTS += t/cluster/cache-consistency.sh
EXTRA_DIST += t/cluster/cache-consistency.sh

# The read cache's store: leases, floors, SIEVE under the byte cap.
UNIT_TESTS += t/unit/cachestore.t
t_unit_cachestore_t_SOURCES = t/unit/cachestore.c t/tap.h
t_unit_cachestore_t_LDADD = $(TIERS_LIBS)
# The gateway's edge cache over shards with commit streams (curl).
TESTS += t/cluster/edge-cache.sh
EXTRA_DIST += t/cluster/edge-cache.sh
