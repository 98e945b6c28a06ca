build/common/notify.o: common/notify.c common/log.h common/notify.h
common/log.h:
common/notify.h:
