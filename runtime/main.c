/*  main.c — the tiers program. Everything is in cli.c. */
#include "cli.h"

int
main (int argc, char **argv)
{
    return tiers_cli_main (argc, argv);
}
