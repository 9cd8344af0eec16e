/*  subnet.c — the subnet of an address (see subnet.h).
*/
#include "subnet.h"
#include "parse.h"
#include <arpa/inet.h>
#include <netdb.h>
#include <string.h>
#include <strings.h>
#include <stdio.h>
#include <sys/socket.h>

static tiers_subnet_t
s_v4 (const uint8_t a [4])
{
    if (a [0] == 127)
        return TIERS_SUBNET_HOST;
    if (a [0] == 10 || (a [0] == 172 && (a [1] & 0xf0) == 16)
    ||  (a [0] == 192 && a [1] == 168) || (a [0] == 169 && a [1] == 254)
    ||  (a [0] == 100 && (a [1] & 0xc0) == 64))
        return TIERS_SUBNET_PRIVATE;
    return TIERS_SUBNET_PUBLIC;
}

static tiers_subnet_t
s_v6 (const uint8_t a [16])
{
    static const uint8_t loopback [16] = { [15] = 1 };
    static const uint8_t mapped [12] = { [10] = 0xff, [11] = 0xff };
    if (memcmp (a, loopback, 16) == 0)
        return TIERS_SUBNET_HOST;
    if (memcmp (a, mapped, 12) == 0)
        return s_v4 (a + 12);
    if ((a [0] & 0xfe) == 0xfc || (a [0] == 0xfe && (a [1] & 0xc0) == 0x80))
        return TIERS_SUBNET_PRIVATE;
    return TIERS_SUBNET_PUBLIC;
}

tiers_subnet_t
tiers_subnet_of (const char *endpoint)
{
    if (tiers_has_prefix (endpoint, "inproc://"))
        return TIERS_SUBNET_INPROC;
    if (tiers_has_prefix (endpoint, "ipc://"))
        return TIERS_SUBNET_HOST;
    //  HOST:PORT, [V6]:PORT, or a bare host
    const char *text = tiers_has_prefix (endpoint, "tcp://") ? endpoint + 6 : endpoint;
    char host [256];
    if (text [0] == '[') {
        snprintf (host, sizeof host, "%s", text + 1);
        host [strcspn (host, "]")] = 0;
    }
    else {
        snprintf (host, sizeof host, "%s", text);
        char *colon = strrchr (host, ':');
        if (colon && colon == strchr (host, ':'))
            *colon = 0;
    }
    uint8_t address [16];
    if (inet_pton (AF_INET, host, address) == 1)
        return s_v4 (address);
    if (inet_pton (AF_INET6, host, address) == 1)
        return s_v6 (address);
    if (strcasecmp (host, "localhost") == 0)
        return TIERS_SUBNET_HOST;
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
    struct addrinfo *found = NULL;
    if (getaddrinfo (host, NULL, &hints, &found) || !found)
        return TIERS_SUBNET_UNKNOWN;
    tiers_subnet_t widest = TIERS_SUBNET_HOST;
    for (struct addrinfo *at = found; at; at = at->ai_next) {
        tiers_subnet_t subnet = at->ai_family == AF_INET
            ? s_v4 ((const uint8_t *) &((struct sockaddr_in *) at->ai_addr)->sin_addr)
            : at->ai_family == AF_INET6
            ? s_v6 ((const uint8_t *) &((struct sockaddr_in6 *) at->ai_addr)->sin6_addr)
            : TIERS_SUBNET_UNKNOWN;
        if (subnet > widest)
            widest = subnet;
    }
    freeaddrinfo (found);
    return widest;
}

const char *
tiers_subnet_name (tiers_subnet_t subnet)
{
    switch (subnet) {
        case TIERS_SUBNET_INPROC:  return "in-process";
        case TIERS_SUBNET_HOST:    return "host only";
        case TIERS_SUBNET_PRIVATE: return "private";
        case TIERS_SUBNET_PUBLIC:  return "public";
        default:                   return "unknown";
    }
}
