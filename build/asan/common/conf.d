build/asan/common/conf.o: common/conf.c common/conf.h common/log.h \
 common/util.h
common/conf.h:
common/log.h:
common/util.h:
