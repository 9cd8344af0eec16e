/*  exporter.h — the metrics of one process over HTTP (see exporter.c).

    The kind descriptor is registered in runtime/builtin.c.
*/
#ifndef TIERS_EXPORTER_H
#define TIERS_EXPORTER_H

#include "kind.h"

extern const tiers_kind_t tiers_exporter_kind;

#endif
