EXTRA_DIST += maps
