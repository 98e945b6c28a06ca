build/common/pgc.o: common/pgc.c /usr/include/postgresql/libpq-fe.h \
 /usr/include/postgresql/postgres_ext.h \
 /usr/include/postgresql/pg_config_ext.h common/backoff.h common/log.h \
 common/pgc.h common/util.h
/usr/include/postgresql/libpq-fe.h:
/usr/include/postgresql/postgres_ext.h:
/usr/include/postgresql/pg_config_ext.h:
common/backoff.h:
common/log.h:
common/pgc.h:
common/util.h:
