build/asan/test/test_sess: test/unit/test_sess.c common/log.h \
 common/sess.h common/util.h
common/log.h:
common/sess.h:
common/util.h:
