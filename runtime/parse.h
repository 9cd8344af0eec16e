/*  parse.h — values as the map writes them: numbers, durations, sizes,
    hosts, endpoints, and a setting's value checked against its key.

    Everything here is a pure function of a string: no map, no state. The
    loader checks the map's values with these, and the actors read the
    validated values back with the same functions, so a value means the same
    thing to both. map.h includes this header.
*/
#ifndef TIERS_PARSE_H
#define TIERS_PARSE_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>
#include "kind.h"

//  Value parsers shared by the loader and the actors. Return 0 or -1.
int tiers_parse_ms (const char *text, long long *ms);
int tiers_parse_bytes (const char *text, long long *bytes);
int tiers_parse_int (const char *text, long long *value);
//  A non-negative decimal number followed by anything, which is returned
//  in *rest. Fails on overflow, no digits, signs or spaces.
int tiers_parse_unsigned (const char *text, long long *value, const char **rest);
//  A pool name (map key `pool`, wire service of READY/REQUEST): 1 to `max`
//  letters, digits, '_', '.', ':' or '-'.
bool tiers_pool_name_ok (const char *name, size_t max);
//  An actor or node name of the map (`shard = s0`): 1 to TIERS_NAME_MAX
//  letters, digits, '_' or '-', starting with a letter or digit. `size`
//  bytes of `name` (a name inside a longer text, such as a session token).
#define TIERS_NAME_MAX 32
bool tiers_name_ok (const char *name, size_t size);
//  Well-formed UTF-8 (no overlongs, no surrogates, nothing above U+10FFFF).
bool tiers_utf8_valid (const uint8_t *data, size_t size);
//  Endpoint syntax check; on -1 sets *why to a static reason.
int tiers_endpoint_check (const char *endpoint, const char **why);
//  host:port check for listeners; splits into host (caller's buffer) and port.
int tiers_hostport_split (const char *text, char *host, size_t host_size,
                          int *port);

//  True if text starts with prefix ("tcp://").
bool tiers_has_prefix (const char *text, const char *prefix);
//  True for a host that means every address: empty, *, 0.0.0.0, or any
//  spelling of the IPv6 "any" address.
bool tiers_host_is_wildcard (const char *host);
//  Splits "host:port" / "[v6]:port" as tiers_hostport_split does, with the
//  lowest port allowed and whether a wildcard host is; on -1 sets *why to
//  a static reason.
int tiers_hostport_check (const char *text, char *host, size_t host_size,
                          int *port, int min_port, bool wildcard_ok,
                          const char **why);

//  The key of that name in a table ended by a NULL name, or NULL.
const tiers_key_t *tiers_key_find (const tiers_key_t *keys, const char *name);
//  Checks a value against its key; `slots` bounds SLOTS values. Returns
//  NULL or a problem text to free ("bad NAME 'VALUE': why").
char *tiers_value_check (const tiers_key_t *key, const char *value,
                         long long slots);

#endif
