# The HTTP edge (libmicrohttpd).
