# The HTTP edge (libmicrohttpd).
libtiers_a_SOURCES += \
    gateway/gateway.c gateway/gateway.h \
    gateway/edge.c gateway/edge.h \
    gateway/http.c gateway/http.h \
    gateway/listener.c gateway/listener.h \
    gateway/exporter.c gateway/exporter.h \
    gateway/tls.c gateway/tls.h \
    gateway/keys.c gateway/keys.h \
    gateway/limit.c gateway/limit.h \
    gateway/guard.c gateway/guard.h
# GnuTLS (tls.c: the certificate checks and the plain-HTTP probe).
AM_CPPFLAGS += $(GNUTLS_CFLAGS)
TIERS_LIBS += $(GNUTLS_LIBS)
