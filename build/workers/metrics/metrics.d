build/workers/metrics/metrics.o: workers/metrics/metrics.c common/http.h \
 common/log.h common/metrics.h common/conf.h common/log.h \
 workers/metrics/metrics_worker.h common/worker.h common/pgc.h \
 /usr/include/postgresql/libpq-fe.h \
 /usr/include/postgresql/postgres_ext.h \
 /usr/include/postgresql/pg_config_ext.h common/rds.h common/util.h
common/http.h:
common/log.h:
common/metrics.h:
common/conf.h:
common/log.h:
workers/metrics/metrics_worker.h:
common/worker.h:
common/pgc.h:
/usr/include/postgresql/libpq-fe.h:
/usr/include/postgresql/postgres_ext.h:
/usr/include/postgresql/pg_config_ext.h:
common/rds.h:
common/util.h:
