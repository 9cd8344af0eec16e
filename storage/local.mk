# SQLite and LMDB live only in this folder (shard, replica, objstore, queue).
libtiers_a_SOURCES += \
    storage/shard.c storage/shard.h storage/stream.c storage/stream.h storage/promote.c storage/promote.h storage/sqlfile.c storage/sqlfile.h \
    storage/replica.c storage/replica.h \
    storage/docread.c storage/docread.h
