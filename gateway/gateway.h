/*  gateway.h — the HTTP edge: libmicrohttpd in front of the balancer.

    The kind descriptor is registered in runtime/builtin.c. doc/http.md
    describes the routes, limits and status codes.
*/
#ifndef TIERS_GATEWAY_H
#define TIERS_GATEWAY_H

#include "kind.h"

extern const tiers_kind_t tiers_gateway_kind;

//  The TCP port the most recently started gateway entry (its instance 0)
//  listens on, or 0 if no gateway started in this process. For tests and
//  for `http = HOST:0`, where the real port is chosen by the kernel.
int tiers_gateway_port (void);

#endif
