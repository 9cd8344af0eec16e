libtiers_a_SOURCES += \
    runtime/wire.c runtime/wire.h \
    runtime/kind.c runtime/kind.h runtime/builtin.c \
    runtime/map.c runtime/map.h runtime/map_internal.h \
    runtime/mapcheck.c runtime/plan.c \
    runtime/problems.c runtime/problems.h \
    runtime/parse.c runtime/parse.h \
    runtime/zpl.c runtime/zpl.h \
    runtime/log.c runtime/log.h \
    runtime/metrics.c runtime/metrics.h \
    runtime/node.c runtime/node.h \
    runtime/service.c runtime/service.h \
    runtime/security.c runtime/security.h runtime/subnet.c runtime/subnet.h \
    runtime/cli.c runtime/cli.h \
    runtime/slot.c runtime/slot.h \
    runtime/poller.c runtime/poller.h \
    runtime/sock.c runtime/sock.h \
    runtime/reactor.c runtime/reactor.h \
    runtime/names.c runtime/names.h \
    runtime/problem.c runtime/problem.h

bin_PROGRAMS += tiers
tiers_SOURCES = runtime/main.c
tiers_LDADD = $(TIERS_LIBS)
