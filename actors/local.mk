libtiers_a_SOURCES += \
    actors/balancer.c \
    actors/api_core.c actors/api_core.h \
    actors/token.c actors/token.h \
    actors/ring.c actors/ring.h \
    actors/cache.c \
    actors/follow.c actors/follow.h \
    actors/cachestore.c actors/cachestore.h \
    actors/read_api.c \
    actors/write_api.c
