/*  zpl.h — the ZPL reader: text to a tree of items that keep their line.

    One item per line, `name = value` or a bare `name`, children indented
    by four spaces under their parent, `#` comments, values quoted with
    "..." or '...' when they contain spaces. Every syntax problem is added
    to a problems list as FILE:LINE: message, and the line with the problem
    is left out together with everything indented below it, so that one
    mistake is reported once.
*/
#ifndef TIERS_ZPL_H
#define TIERS_ZPL_H

#include <stddef.h>
#include "problems.h"

typedef struct {
    int line;
    int depth;
    char *name;
    char *value;            //  NULL when the line had no '='
    int first_child;        //  item index or -1
    int next;               //  next sibling or -1
} tiers_zpl_item_t;

//  Reads `size` bytes of text into items in line order, linked as a tree
//  (the top-level items are item 0 and its `next` chain). Sets *count_p
//  and returns the array; free it with tiers_zpl_destroy.
tiers_zpl_item_t *tiers_zpl_parse (tiers_problems_t *problems, const char *text,
                                   size_t size, size_t *count_p);
//  Frees count items and the array; safe on NULL.
void tiers_zpl_destroy (tiers_zpl_item_t **items_p, size_t count);

#endif
