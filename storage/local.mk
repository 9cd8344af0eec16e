# SQLite and LMDB live only in this folder (shard, replica, objstore, queue).
