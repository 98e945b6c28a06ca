build/common/rds.o: common/rds.c common/backoff.h common/log.h \
 common/rds.h common/util.h
common/backoff.h:
common/log.h:
common/rds.h:
common/util.h:
