/*  node.h — one process's share of the map: start its actors, stop them.

    A node is what `tiers run -n NAME` runs: every actor entry the map places
    on that node (or on all nodes when no name is given), each instance a
    czmq zactor thread. Actors start in rank order (storage, routing,
    services, control, edge) so that whatever an actor connects to is already
    bound, and stop in the reverse order.

    The actor side of the contract (see doc/actors.md): the body calls
    tiers_actor_ready() once its sockets are bound/connected, or
    tiers_actor_failed() and returns; afterwards it must return within
    100 ms of receiving "$TERM" on its pipe, having destroyed its sockets.
*/
#ifndef TIERS_NODE_H
#define TIERS_NODE_H

#include <czmq.h>
#include "map.h"

typedef struct _tiers_node_t tiers_node_t;

//  `node` NULL = every node of the map in this process. The map must
//  outlive the node.
tiers_node_t *tiers_node_new (const tiers_map_t *map, const char *node);
//  Starts the actors; returns 0, or -1 with the reason in tiers_node_error
//  (actors already started are stopped again).
int tiers_node_start (tiers_node_t *self);
const char *tiers_node_error (tiers_node_t *self);
//  Stops every actor, last started first, then frees.
void tiers_node_destroy (tiers_node_t **self_p);

size_t tiers_node_actor_count (tiers_node_t *self);
//  The running actor named "entry.instance" (e.g. "echo.0") or the entry
//  name for single-instance entries; NULL if none. For tests and control.
zactor_t *tiers_node_actor (tiers_node_t *self, const char *name);

//  Actor side: report readiness (call once, from the actor thread).
void tiers_actor_ready (zsock_t *pipe);
//  Actor side: report a start-up failure, then return from the body.
void tiers_actor_failed (zsock_t *pipe, const char *format, ...)
    __attribute__ ((format (printf, 2, 3)));

//  Actor side: read one command from the pipe (call when it is readable).
//  Returns true when the actor must stop: "$TERM", or the pipe is gone.
//  Other commands are logged and ignored.
bool tiers_actor_stopping (zsock_t *pipe);

//  Resolve a data path of the cluster: `data` setting joined with `leaf`
//  (malloc'ed). Creates the data directory if needed.
char *tiers_data_path (const tiers_map_t *map, const char *leaf);

#endif
