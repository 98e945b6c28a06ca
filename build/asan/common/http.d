build/asan/common/http.o: common/http.c common/http.h common/log.h \
 common/util.h
common/http.h:
common/log.h:
common/util.h:
