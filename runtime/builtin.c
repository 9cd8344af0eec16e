/*  builtin.c — the actor kinds compiled into tiers.

    One line per tier; each kind's descriptor lives beside its actor. To add
    a kind: write actors/NAME.c with a `const tiers_kind_t tiers_NAME_kind`,
    add it to the list below and to the local.mk of its folder.
*/
#include "kind.h"

extern const tiers_kind_t tiers_balancer_kind;
extern const tiers_kind_t tiers_shard_kind;
extern const tiers_kind_t tiers_replica_kind;
extern const tiers_kind_t tiers_read_api_kind;
extern const tiers_kind_t tiers_write_api_kind;
extern const tiers_kind_t tiers_cache_kind;
extern const tiers_kind_t tiers_gateway_kind;
extern const tiers_kind_t tiers_exporter_kind;

const tiers_kind_t *const tiers_builtin_kinds [] = {
    &tiers_shard_kind,
    &tiers_replica_kind,
    &tiers_balancer_kind,
    &tiers_read_api_kind,
    &tiers_write_api_kind,
    &tiers_cache_kind,
    &tiers_gateway_kind,
    &tiers_exporter_kind,
    NULL
};

#include "map.h"

//  The single-box map (rung 1): every actor a thread of one process.
//  maps/single-box.map holds the same text; t/ checks they agree.
static const char s_builtin_map [] =
    "cluster\n"
    "    name = docs\n"
    "    data = ./tiers-data\n"
    "    sync = full\n"
    "node = box\n"
    "    gateway\n"
    "        http = 127.0.0.1:8080\n"
    "    balancer\n"
    "        bind = inproc://balancer\n"
    "    read-api\n"
    "        instances = 1\n"
    "    write-api\n"
    "        instances = 1\n"
    "    shard = s0\n"
    "        bind = inproc://s0\n"
    "        slots = 0-511\n"
    "    shard = s1\n"
    "        bind = inproc://s1\n"
    "        slots = 512-1023\n";

const char *
tiers_map_builtin (void)
{
    return s_builtin_map;
}
