build/supervisor/main.o: supervisor/main.c common/conf.h common/log.h \
 common/log.h supervisor/master.h common/proctitle.h
common/conf.h:
common/log.h:
common/log.h:
supervisor/master.h:
common/proctitle.h:
