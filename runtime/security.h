/*  security.h — CURVE on the private endpoints, with least privilege taken
    from the map (doc/security.md).

    With `security = curve` in the map's cluster block, every node has a
    CURVE certificate (`tiers keys` makes them: KEYS/NODE.cert, public, and
    KEYS/NODE.cert_secret, mode 0600). A process that runs a node loads its
    own secret and every other node's public key; from then on the socket
    factory (sock.h) makes every tcp:// and ipc:// socket of that node a
    CURVE server (binds) or client (connects). inproc:// stays plain: it
    never leaves the process.

    Who may reach a port is the map's to say: the nodes of the entries
    whose links reach it. Each bound port gets a ZAP domain of its own, and
    one ZAP handler per process (RFC 27, on inproc://zeromq.zap.01) admits a
    client only when its public key is one of those nodes' keys. What is
    refused — a key the map does not know, a node with no business there,
    a client without CURVE, a garbage or truncated handshake — never reaches
    the actor; it is counted (tiers_security_refused_total) and logged once
    per peer with its address and key.
*/
#ifndef TIERS_SECURITY_H
#define TIERS_SECURITY_H

#include <czmq.h>
#include <stdio.h>
#include "map.h"

typedef struct _tiers_security_t tiers_security_t;

//  A CURVE handshake that has not completed after this is dropped.
#define TIERS_SECURITY_HANDSHAKE_MS 3000

//  Does the map ask for CURVE (`security = curve`)?
bool tiers_security_curve (const tiers_map_t *map);

//  Loads the keys for `node` of `map` (every node when NULL) from `dir`
//  and registers them with the socket factory; the first one also starts
//  the process's ZAP handler. NULL + *why (malloc'ed) when a key file is
//  missing, readable by others, or corrupt: then nothing may start.
tiers_security_t *tiers_security_new (const tiers_map_t *map, const char *node,
                                      const char *dir, char **why);
//  Unregisters; the last one stops the ZAP handler.
void tiers_security_destroy (tiers_security_t **self_p);

//  For the socket factory, before bind / connect. Nothing to do (0) for
//  inproc://, or when the entry's map has security = none. -1 + *why when
//  the map wants CURVE and no keys of that node are loaded (fail closed).
int tiers_security_serve (zsock_t *sock, const tiers_entry_t *entry, const char *port,
                          const char *endpoint, char **why);
//  `from` connects to `endpoint` (bound by `to`, or found in the map when
//  `to` is NULL).
int tiers_security_dial (zsock_t *sock, const tiers_entry_t *from,
                         const tiers_entry_t *to, const char *endpoint, char **why);

//  `tiers keys`: one certificate per node of the map into `dir` (made with
//  mode 0700). Existing keys are kept unless `rotate`. Says what it did on
//  `out`. 0, or -1 + *why.
int tiers_security_make_keys (const tiers_map_t *map, const char *dir, bool rotate,
                              FILE *out, char **why);

#endif
