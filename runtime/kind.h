/*  kind.h — the registry of actor kinds.

    Every tier of tiers ("balancer", "shard", ...) is an actor kind: a name,
    the settings a map entry of that kind may carry, and the function that
    runs one instance in its own thread (a czmq zactor). The map loader asks
    the registry what a kind accepts; the node launcher asks it how to start
    one. Adding a tier means writing its actor function and registering it
    here — the loader and the launcher do not change.
*/
#ifndef TIERS_KIND_H
#define TIERS_KIND_H

#include <stdbool.h>
#include <czmq.h>

typedef enum {
    TIERS_KEY_STRING,       //  any non-empty value
    TIERS_KEY_NAME,         //  letters, digits, '_', '.', ':', '-' (pool names)
    TIERS_KEY_INT,          //  decimal integer within [min, max]
    TIERS_KEY_MS,           //  duration: 250, 250ms, 2s, 1m -> milliseconds
    TIERS_KEY_BYTES,        //  size: 512, 64k, 16m, 1g -> bytes
    TIERS_KEY_ENDPOINT,     //  inproc://name, tcp://host:port, ipc://path
    TIERS_KEY_HOSTPORT,     //  host:port or [v6]:port (HTTP listeners)
    TIERS_KEY_ENUM,         //  one of the words in `choices` ("full|normal")
    TIERS_KEY_SLOTS         //  slot ranges: "0-511,768-1023"
} tiers_key_type_t;

typedef struct {
    const char *name;
    tiers_key_type_t type;
    bool required;
    long long min, max;     //  for INT, MS and BYTES (max 0 = unbounded);
                            //  for STRING, max is the longest length
    const char *choices;    //  for ENUM: words separated by '|'
} tiers_key_t;

//  What an actor body receives as its `args`.
typedef struct _tiers_map_t tiers_map_t;
typedef struct _tiers_entry_t tiers_entry_t;
typedef struct {
    const tiers_map_t *map;
    const tiers_entry_t *entry;
    int instance;           //  0 .. instances-1
    char name [96];         //  "read-api.1": the entry name plus instance
} tiers_actor_args_t;

typedef struct {
    const char *name;       //  the word in the map ("balancer")
    const char *summary;    //  one line for `tiers kinds` and docs
    int rank;               //  start order: lower first; stop in reverse
    zactor_fn *run;         //  the actor body; args is tiers_actor_args_t *
    const tiers_key_t *keys;//  settings beyond bind/connect/instances;
                            //  terminated by an entry with name NULL
    bool bind;              //  entries must have `bind`
    bool multi;             //  `instances` > 1 allowed
    const char *peer;       //  kind whose bind `connect` defaults to
    const char *listener;   //  key holding a public listener ("http"), or NULL
    bool fixed_listener;    //  `tiers run --http` never moves it (exporter)
    const char *uses;       //  kind whose every entry it connects to
                            //  ("shard" for the APIs), or NULL
} tiers_kind_t;

//  Start ranks, lowest first.
enum {
    TIERS_RANK_STORAGE  = 10,   //  shard, replica, objstore, queue
    TIERS_RANK_ROUTING  = 20,   //  balancer
    TIERS_RANK_SERVICE  = 30,   //  read-api, write-api, cache, worker
    TIERS_RANK_CONTROL  = 40,   //  autoscaler
    TIERS_RANK_EDGE     = 50    //  gateway
};

//  Register a kind (the struct must outlive the registry). Returns -1 if a
//  kind of that name exists. The built-in kinds register themselves on the
//  first lookup.
int tiers_kind_register (const tiers_kind_t *kind);
const tiers_kind_t *tiers_kind_find (const char *name);
//  Iterate: index 0.. until NULL.
const tiers_kind_t *tiers_kind_at (size_t index);

#endif
