/*  subnet.h — which subnet an address is in: the VPC rung's public and
    private (doc/security.md, "Subnets").

    A private actor (every ZeroMQ port) binds loopback or a private
    address: RFC 1918 (10/8, 172.16/12, 192.168/16), RFC 4193 (fc00::/7),
    link-local (169.254/16, fe80::/10), or RFC 6598 shared space
    (100.64/10, what cloud VPCs hand out too). Anything else is public,
    reachable from outside, and needs `public = yes` on the entry.
*/
#ifndef TIERS_SUBNET_H
#define TIERS_SUBNET_H

#include <stdbool.h>

typedef enum {
    TIERS_SUBNET_INPROC,        //  inproc://: inside the process
    TIERS_SUBNET_HOST,          //  ipc://, loopback: inside the host
    TIERS_SUBNET_PRIVATE,       //  a private address: inside the network
    TIERS_SUBNET_PUBLIC,        //  reachable from outside
    TIERS_SUBNET_UNKNOWN        //  a name that does not resolve here
} tiers_subnet_t;

//  The subnet of an endpoint (inproc://, ipc://, tcp://HOST:PORT) or of a
//  bare host. Names are resolved; a name with one public address is public.
tiers_subnet_t tiers_subnet_of (const char *endpoint);
//  "in-process", "host only", "private", "public", "unknown".
const char *tiers_subnet_name (tiers_subnet_t subnet);

#endif
