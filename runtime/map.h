/*  map.h — the map file: which actors exist, on which node, at which endpoint.

    A map is a ZPL text (the czmq zconfig format: one item per line, children
    indented by four spaces, `name = value`, `#` comments). The loader keeps
    the line of every item so that each problem is reported as FILE:LINE:
    message, validates everything before anything starts, and resolves each
    actor's `connect` endpoint. The grammar is documented in tiers-map(5).
*/
#ifndef TIERS_MAP_H
#define TIERS_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include "kind.h"
#include "parse.h"          //  the value parsers shared with the actors

typedef struct {
    const tiers_entry_t *entry;     //  the entry a link reaches
    const char *endpoint;           //  where it binds the link's port
} tiers_target_t;

//  One actor entry of the map (read-only for everybody but the loader).
struct _tiers_entry_t {
    const tiers_kind_t *kind;
    char *name;             //  the entry's name: `shard = s0` -> "s0";
                            //  a bare `balancer` -> "balancer"
    char *node;             //  the node it is placed on
    int line;               //  line of the entry in the map file
    int instances;          //  1 unless `instances = N`
    char *binds [TIERS_PORTS_MAX];  //  per port of the kind: endpoint or NULL
    tiers_target_t *targets [TIERS_LINKS_MAX];  //  per link: what it reaches
    size_t target_count [TIERS_LINKS_MAX];
    const char *bind;       //  = binds [0]: the first port's endpoint
    const char *connect;    //  the first link's first target's endpoint
    bool connect_explicit;  //  connect came from the map, not the default
    bool public_ok;         //  `public = yes`: may bind a public address
    bool curve;             //  its map says security = curve: no socket of it
                            //  that leaves the process may be plain
    size_t setting_count;
    char **keys;            //  settings other than bind/connect/instances
    char **values;
    int *lines;
};

//  Load and validate. On failure returns NULL and, if errors is not NULL,
//  sets *errors to a malloc'ed string: one "FILE:LINE: message\n" per
//  problem (the caller frees it).
tiers_map_t *tiers_map_load (const char *path, char **errors);
//  The same from text in memory; `filename` is used in messages.
tiers_map_t *tiers_map_parse (const char *text, const char *filename,
                              char **errors);
void tiers_map_destroy (tiers_map_t **self_p);

//  The built-in single-box map (text), what `tiers run` without -m uses.
const char *tiers_map_builtin (void);

//  Cluster-wide settings (`cluster` block): the map's value, else the
//  documented default (name "tiers", data "./tiers-data", log "info",
//  sync "full", slots "1024", heartbeat "1s", spin_us "200", security
//  "none", keys "./tiers-keys", ack "primary"); NULL for an unknown key.
const char *tiers_map_cluster (const tiers_map_t *self, const char *key);
//  A numeric cluster setting (slots, heartbeat in ms, spin_us), parsed by
//  its type; -1 for a key that is not numeric.
long long tiers_map_cluster_number (const tiers_map_t *self, const char *key);
//  Did the map itself set the cluster key (not the default)?
bool tiers_map_cluster_given (const tiers_map_t *self, const char *key);
//  `--keys DIR`: where the CURVE keys are (the cluster's `keys`).
void tiers_map_set_keys (tiers_map_t *self, const char *dir);
const char *tiers_map_name (const tiers_map_t *self);   //  cluster name
const char *tiers_map_file (const tiers_map_t *self);

size_t tiers_map_node_count (const tiers_map_t *self);
const char *tiers_map_node_name (const tiers_map_t *self, size_t index);
bool tiers_map_has_node (const tiers_map_t *self, const char *node);

//  All entries in file order.
size_t tiers_map_entry_count (const tiers_map_t *self);
const tiers_entry_t *tiers_map_entry (const tiers_map_t *self, size_t index);
//  Entry by name, or NULL.
const tiers_entry_t *tiers_map_find (const tiers_map_t *self, const char *name);
//  First entry of a kind (e.g. the balancer), or NULL.
const tiers_entry_t *tiers_map_find_kind (const tiers_map_t *self,
                                          const char *kind);

//  The endpoint an entry binds for its kind's port `port`, or NULL.
const char *tiers_entry_port (const tiers_entry_t *self, const char *port);
//  What the entry's link `link` reaches: the number of targets, and (when
//  targets_p is not NULL) the array of them, in map order. 0 for a link
//  the kind does not have.
size_t tiers_entry_targets (const tiers_entry_t *self, const char *link,
                            const tiers_target_t **targets_p);

//  A setting of an entry: the map's value, or `fallback`.
const char *tiers_entry_get (const tiers_entry_t *self, const char *key,
                             const char *fallback);
//  Typed reads of validated settings (INT / MS / BYTES); fallback if unset.
long long tiers_entry_int (const tiers_entry_t *self, const char *key,
                           long long fallback);

//  `tiers run --http`: replace the listener address (kind->listener key)
//  of the one gateway entry on `node` (any node when NULL).
//  Returns -1 if the address is not HOST:PORT, there is not exactly one
//  such entry, or its port is taken elsewhere in the map; then
//  tiers_map_listener_error() says which.
int tiers_map_set_listener (tiers_map_t *self, const char *hostport,
                            const char *node);
const char *tiers_map_listener_error (const tiers_map_t *self);

//  Print the placement plan (for `tiers check`) to `out`: every node, or
//  only `node` when it is not NULL.
void tiers_map_print_plan (const tiers_map_t *self, const char *node, FILE *out);

#endif
