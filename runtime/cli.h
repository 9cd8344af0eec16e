/*  cli.h — the `tiers` command line, as a function.

    main() of the tiers program is just tiers_cli_main(). Test programs
    register their own actor kinds first and then call it too, so a test can
    start real nodes of a map, in separate processes, that contain test-only
    actors.
*/
#ifndef TIERS_CLI_H
#define TIERS_CLI_H

int tiers_cli_main (int argc, char **argv);

#endif
