libtiers_a_SOURCES += \
    actors/balancer.c \
    actors/api.c
