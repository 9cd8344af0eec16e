/*  kind.h — the registry of actor kinds.

    Every tier of tiers ("balancer", "shard", ...) is an actor kind: a name,
    the settings a map entry of that kind may carry, the function that runs
    one instance in its own thread (a czmq zactor), and its sockets:

      - PORTS are what an entry serves: sockets it binds at endpoints the
        map gives (`bind = ...` for the first port, `bind.NAME = ...` for
        the others). A shard serves requests (and, with replication, a
        commit stream).
      - LINKS are what an entry talks to: sockets it connects to a port of
        another kind, to one entry of that kind or to every one. A read-api
        links to the balancer (one) and to the shards (every one).

    The map loader resolves every link to endpoints and checks them
    (something binds them, the connecting node can reach them); an actor
    asks for its ports and links by name (tiers_port_bind and
    tiers_link_connect in sock.h). No kind name is written anywhere but in
    its own file: adding a tier is its file and a line in builtin.c.
*/
#ifndef TIERS_KIND_H
#define TIERS_KIND_H

#include <stdbool.h>
#include <czmq.h>
#include <stdio.h>

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

#define TIERS_PORTS_MAX 8       //  ports of one kind
#define TIERS_LINKS_MAX 8       //  links of one kind

//  A socket an entry binds and serves.
typedef struct {
    const char *name;       //  "requests"; the first port is the map's `bind`
    int type;               //  ZMQ_ROUTER, ZMQ_PUB, ...
    const char *carries;    //  what travels on it (docs, `tiers kinds`)
    bool required;          //  every entry must bind it
} tiers_port_t;

//  A socket an entry connects to a port of another kind (or its own).
typedef struct {
    const char *name;       //  "balancer", "shards"; the first link is the
                            //  map's `connect`, the others `connect.NAME`
    const char *kind;       //  the kind it reaches
    const char *port;       //  that kind's port
    int type;               //  this side's socket type (ZMQ_DEALER, ...)
    bool many;              //  every entry of the kind that binds the port
                            //  (never the entry itself); else exactly one
    bool optional;          //  none is fine (else the map must have one)
} tiers_link_t;

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
    const tiers_port_t *ports;  //  terminated by name NULL; or NULL
    const tiers_link_t *links;  //  terminated by name NULL; or NULL
    bool multi;             //  `instances` > 1 allowed
    //  Balancer pools: a kind whose entries JOIN a pool names the pool an
    //  entry joins when its `pool` key is unset ("read"); a kind that
    //  SENDS requests to pools names its outlets, each pointed at a pool
    //  by the entry's `pool.OUTLET` key (default: the outlet's name). The
    //  loader refuses an entry that joins a pool no outlet of the map
    //  sends to (when the map has outlets at all).
    const char *pool;
    const char *const *outlets;     //  NULL-terminated, or NULL
    const char *listener;   //  key holding a public listener ("http"), or NULL
    bool fixed_listener;    //  `tiers run --http` never moves it (exporter)
    //  A command of `tiers` that the kind brings, run as `tiers COMMAND -m
    //  MAP [--keys DIR] [--force] ARG` ("promote" for replicas); or NULL.
    //  Returns the exit code (0 done, 1 not done, 2 usage).
    const char *command;
    const char *command_usage;  //  its lines in --help
    int (*command_run) (tiers_map_t *map, const char *arg, bool force, FILE *out);
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

//  A kind's port / link by name (NULL when it has none of that name);
//  *index_p, when not NULL, gets its place in the kind's table.
const tiers_port_t *tiers_kind_port (const tiers_kind_t *kind, const char *name,
                                     size_t *index_p);
const tiers_link_t *tiers_kind_link (const tiers_kind_t *kind, const char *name,
                                     size_t *index_p);
size_t tiers_kind_port_count (const tiers_kind_t *kind);
size_t tiers_kind_link_count (const tiers_kind_t *kind);

#endif
