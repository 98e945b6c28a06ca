build/asan/common/ipc.o: common/ipc.c common/ipc.h common/log.h \
 common/util.h
common/ipc.h:
common/log.h:
common/util.h:
