dist_man_MANS += doc/tiers.1 doc/tiers-map.5
EXTRA_DIST += doc/actors.md doc/protocol.md doc/storage.md doc/http.md doc/performance.md doc/maps.md \
    doc/security.md doc/cache.md
