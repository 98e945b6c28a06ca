build/asan/common/sess.o: common/sess.c common/backoff.h common/log.h \
 common/sess.h common/util.h
common/backoff.h:
common/log.h:
common/sess.h:
common/util.h:
