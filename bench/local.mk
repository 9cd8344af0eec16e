# `make bench`: build the floor and the test tool, then run the scenarios.
# make bench BENCH_SECONDS=10 BENCH_COMPARE=--compare adds webdis and etcd;
# BENCH_ROUNDS=3 repeats the tiers scenarios (medians, per-round ratios);
# BENCH_MAP=bench/one-shard.map runs the cluster from another map.
BENCH_SECONDS = 10
BENCH_COMPARE =
BENCH_ROUNDS = 1
BENCH_MAP =
EXTRA_PROGRAMS = bench/floor
bench_floor_SOURCES = bench/floor.c
bench_floor_LDADD = $(MHD_LIBS)
EXTRA_DIST += bench/run bench/curve bench/replication bench/get.lua bench/put.lua bench/mixed.lua bench/webdis-get.lua bench/etcd-put.lua bench/one-shard.map
CLEANFILES += bench/floor

# `make bench-cachesim`: the read cache's store under LRU and SIEVE, hit
# ratios and lookups/s (doc/cache.md, "Eviction: why SIEVE").
EXTRA_PROGRAMS += bench/cachesim
bench_cachesim_SOURCES = bench/cachesim.c
bench_cachesim_LDADD = -lm
CLEANFILES += bench/cachesim

bench-cachesim: bench/cachesim
	./bench/cachesim
.PHONY: bench-cachesim

bench: tiers bench/floor t/cluster/tool
	BENCH_ROUNDS=$(BENCH_ROUNDS) BENCH_MAP=$(BENCH_MAP) top_builddir=$(abs_top_builddir) top_srcdir=$(abs_top_srcdir) $(SHELL) $(srcdir)/bench/run $(BENCH_SECONDS) $(BENCH_COMPARE)
.PHONY: bench

# `make bench-curve`: GET and durable PUT on the split map, CURVE on vs off.
bench-curve: tiers t/cluster/tool
	BENCH_ROUNDS=$(BENCH_ROUNDS) top_builddir=$(abs_top_builddir) top_srcdir=$(abs_top_srcdir) $(SHELL) $(srcdir)/bench/curve $(BENCH_SECONDS)
.PHONY: bench-curve

# `make bench-replication`: the durable PUT with and without the commit
# stream, maps/replicas.map with ack = replica against ack = primary,
# GET from replicas, and the replication lag (doc/performance.md).
bench-replication: tiers bench/floor t/cluster/tool
	BENCH_ROUNDS=$(BENCH_ROUNDS) top_builddir=$(abs_top_builddir) top_srcdir=$(abs_top_srcdir) $(SHELL) $(srcdir)/bench/replication $(BENCH_SECONDS)
.PHONY: bench-replication
