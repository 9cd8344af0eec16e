/*  harness.h — what cluster tests share: temp dirs, free ports, child
    processes that are always stopped, and a caller for the balancer.

    Every process a test spawns is registered here; an atexit hook (and
    PR_SET_PDEATHSIG in the child, for when the test itself dies) makes sure
    none outlives the test, also when it fails.
*/
#ifndef TIERS_HARNESS_H
#define TIERS_HARNESS_H

#include <czmq.h>
#include <sys/types.h>
#include "wire.h"

//  A fresh directory under $TMPDIR (removed at exit).
const char *h_tmpdir (void);
//  The path of this test program, so that it can start itself as the
//  nodes of a split cluster (`SELF run -m MAP -n NODE`).
const char *h_self_path (void);
//  A TCP port on 127.0.0.1 that was free a moment ago, and that no other
//  test of this build tree was given lately (ports.h).
int h_free_port (void);
//  Write text to dir/name; returns the malloc'ed path.
char *h_write_file (const char *name, const char *text);

//  Start argv[0] with argv, stdout+stderr to `log` (a path); returns pid.
pid_t h_spawn (char *const argv [], const char *log);
//  Wait until `log` contains `needle` or timeout; returns 0 / -1.
int h_wait_for_line (const char *log, const char *needle, int timeout_ms);
//  Send sig; wait up to timeout_ms for exit. Returns exit status (>=0),
//  128+signal when killed, -1 on timeout.
int h_stop (pid_t pid, int sig, int timeout_ms);
//  Kill -9 everything still registered (also runs at exit).
void h_kill_all (void);

//  A request for `service` with rid "r<seq>", body, and a deadline
//  `deadline_ms` from now (0 = none).
tiers_wire_t *h_request (const char *service, const char *body, int deadline_ms);
//  Wait for up to `count` replies for timeout_ms; returns how many came.
int h_collect (zsock_t *dealer, tiers_wire_t **replies, int count, int timeout_ms);
//  Ask the balancer for its status; returns the JSON text or NULL.
char *h_status (zsock_t *dealer);
//  Poll the balancer until pool `pool` has `workers` workers (or timeout).
int h_wait_workers (zsock_t *dealer, const char *pool, int workers, int timeout_ms);

//  CURVE for a split cluster (the map says security = curve, keys = DIR):
//  makes every node's keys in the map's DIR; 0 or -1.
int h_make_keys (const char *map_path);
//  A DEALER connected to `endpoint` as node `node` with its keys from
//  `keys`, to a port of node `server` (CURVE); plain when keys is NULL.
zsock_t *h_dealer_as (const char *endpoint, const char *keys, const char *node,
                      const char *server);

#endif
