build/test/test_backoff: test/unit/test_backoff.c common/backoff.h
common/backoff.h:
