/*  ports.h — free TCP ports for tests, never the same one twice.

    bind(0) hands out a port that is free now; a test that asks several
    times before it binds any (a map of eight endpoints), or two tests
    that run at once, can be given the same port twice. Every port handed
    out here is written to one file per build tree (t/cluster/.ports,
    beside the programs, under an flock) and not handed out again for ten
    minutes.
*/
#ifndef TIERS_TEST_PORTS_H
#define TIERS_TEST_PORTS_H

#include <stdbool.h>

//  A TCP port free on 127.0.0.1 (or [::1]) just now that no test of this
//  build tree was given in the last ten minutes; -1 if there is none.
int h_port_pick (bool v6);

#endif
