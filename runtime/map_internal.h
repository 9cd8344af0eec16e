/*  map_internal.h — what the map loader shares with its checks across the
    map; for runtime/map.c and runtime/mapcheck.c only.

    The loader (map.c) builds one draft per actor entry: the entry itself
    plus what it read but cannot judge alone (a `connect` as written, the
    lines of `bind` and of the listener). The checks across the map
    (mapcheck.c) then look at all drafts together. Both report into the
    loader's one problems list.
*/
#ifndef TIERS_MAP_INTERNAL_H
#define TIERS_MAP_INTERNAL_H

#include "map.h"
#include "problems.h"
#include "zpl.h"

//  An entry under construction, with what pass 3 needs to know.
typedef struct {
    tiers_entry_t *entry;
    const char *connects [TIERS_LINKS_MAX];    //  per link: as written, or NULL
    int connect_lines [TIERS_LINKS_MAX];
    int bind_lines [TIERS_PORTS_MAX];           //  per port
    const char *listener;   //  host:port as written, or NULL
    int listener_line;
} tiers_draft_t;

typedef struct {
    tiers_map_t *map;
    tiers_problems_t *problems;
    tiers_zpl_item_t *items;
    size_t item_count;
    long long slots;        //  the cluster's slot count
    int cluster_line;
    tiers_draft_t *drafts;
    size_t draft_count;
    int *node_lines;
} tiers_loader_t;

//  The draft of the entry of that name, or NULL (map.c).
tiers_draft_t *tiers_loader_draft (tiers_loader_t *self, const char *name);

//  Pass 3 (mapcheck.c): duplicate binds and port clashes, the resolution
//  of every link, and slot ownership. Sets each entry's targets and
//  `connect`; adds what is wrong to self->problems.
void tiers_mapcheck (tiers_loader_t *self);

//  Where something listens on a TCP port.
typedef struct {
    char host [256];
    int port;
    int line;
} tiers_tcp_port_t;

//  Same port, and the same host or a wildcard on either side (mapcheck.c).
bool tiers_tcp_port_clash (const tiers_tcp_port_t *a, const tiers_tcp_port_t *b);

#endif
