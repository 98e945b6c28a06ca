build/test/test_ipc: test/unit/test_ipc.c common/ipc.h common/log.h \
 common/util.h
common/ipc.h:
common/log.h:
common/util.h:
