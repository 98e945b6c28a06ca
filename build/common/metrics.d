build/common/metrics.o: common/metrics.c common/log.h common/metrics.h \
 common/conf.h common/util.h
common/log.h:
common/metrics.h:
common/conf.h:
common/util.h:
