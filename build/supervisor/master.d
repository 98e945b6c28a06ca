build/supervisor/master.o: supervisor/master.c common/backoff.h \
 common/ipc.h common/log.h supervisor/master.h common/conf.h common/log.h \
 common/metrics.h common/conf.h common/net.h common/notify.h \
 common/proctitle.h common/util.h common/worker.h \
 supervisor/../workers/metrics/metrics_worker.h
common/backoff.h:
common/ipc.h:
common/log.h:
supervisor/master.h:
common/conf.h:
common/log.h:
common/metrics.h:
common/conf.h:
common/net.h:
common/notify.h:
common/proctitle.h:
common/util.h:
common/worker.h:
supervisor/../workers/metrics/metrics_worker.h:
