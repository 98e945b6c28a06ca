build/asan/common/net.o: common/net.c common/net.h common/conf.h \
 common/log.h
common/net.h:
common/conf.h:
common/log.h:
