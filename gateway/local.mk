# The HTTP edge (libmicrohttpd).
libtiers_a_SOURCES += \
    gateway/gateway.c gateway/gateway.h \
    gateway/http.c gateway/http.h \
    gateway/listener.c gateway/listener.h \
    gateway/exporter.c gateway/exporter.h
