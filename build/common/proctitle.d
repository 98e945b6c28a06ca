build/common/proctitle.o: common/proctitle.c common/proctitle.h \
 common/util.h
common/proctitle.h:
common/util.h:
