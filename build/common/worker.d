build/common/worker.o: common/worker.c common/ipc.h common/log.h \
 common/proctitle.h common/util.h common/worker.h common/conf.h
common/ipc.h:
common/log.h:
common/proctitle.h:
common/util.h:
common/worker.h:
common/conf.h:
