# The HTTP edge (libmicrohttpd).
libtiers_a_SOURCES += \
    gateway/gateway.c gateway/gateway.h \
    gateway/http.c gateway/http.h \
    gateway/exporter.c gateway/exporter.h
