# SPDX-License-Identifier: Apache-2.0
"""Login throttling (docs/config-api.md "Login throttling", common/throttle.c):
POST /v1/auth/token and RequestOpen are slowed down, then refused, after
repeated failures per user name and per address; the counts live in Redis,
shared by every instance; a success forgets the user's count; a new
password unlocks a user; the admin token is never locked out; with Redis
away the counts go on in memory and nothing answers 500."""

import signal
import threading
import time

import pytest
import redis as redis_py

from evclient import Session, session_opens
from helpers import TENANT_ID, config_api_ready, free_port, merge, wait_for

WINDOW = 3.0
DELAY = 1.2     # wide: a fast answer on a loaded ASan build stays well under it


def limits(**over):
    s = {"login_delay_after": 2, "login_refuse_after": 4,
         "login_address_delay_after": 50, "login_address_refuse_after": 100,
         "login_window": WINDOW, "login_delay": DELAY}
    s.update(over)
    return {"security": s}


def start(tenantd, over=None, **sec):
    d = tenantd(dict(limits(**sec), **(over or {})), config_worker=True)
    return config_api_ready(d)


def rget(redis, key):
    return redis_py.Redis(port=redis.port).get(key)


def login(d, user, password, timeout=10):
    t0 = time.monotonic()
    r = d.api("POST", "/v1/auth/token", {"userName": user, "password": password},
              token=None, timeout=timeout)
    return r, time.monotonic() - t0


def person(d, name, password="right-pw"):
    r = d.api("POST", "/v1/persons", {"userName": name, "password": password})
    assert r.status == 201, r.text
    return r.json["dbid"]


def test_user_slowed_then_refused_until_the_window_ends(tenantd, redis):
    d = start(tenantd)
    person(d, "alice")
    # Two failures answered at once, the next two after the delay.
    for i in range(4):
        r, took = login(d, "alice", "wrong")
        assert r.status == 401, r.text
        if i < 2:
            assert took < DELAY * 0.8, (i, took)
        else:
            assert took >= DELAY * 0.9, (i, took)
    # Refused now, even with the right password, and at once.
    r, took = login(d, "alice", "right-pw")
    assert r.status == 429, r.text
    assert r.json["error"] == "TooManyAttempts"
    assert 1 <= int(r.headers["retry-after"]) <= WINDOW + 1
    assert took < DELAY * 0.8
    # The count is in Redis, under the tenant's prefix.
    key = f"tenantd:{{{TENANT_ID}}}:login:user:p:alice"
    assert int(rget(redis, key)) == 4
    # Another user from the same address is not locked out.
    person(d, "bob")
    assert login(d, "bob", "right-pw")[0].status == 200
    # Once the window has passed, the right password works.
    time.sleep(float(r.headers["retry-after"]) + 0.2)
    r, _ = login(d, "alice", "right-pw")
    assert r.status == 200, r.text
    # And the success forgot the count: failures are fast again.
    # (the worker sends the script before the answer, on its own link to
    # Redis: another client may look before it has run)
    wait_for(lambda: rget(redis, key) is None, 2, interval=0.02,
             what="the user's count forgotten")
    r, took = login(d, "alice", "wrong")
    assert r.status == 401 and took < DELAY * 0.8


def test_a_delay_never_blocks_the_worker(tenantd, redis):
    d = start(tenantd, login_delay=2.0)
    person(d, "carol")
    for _ in range(2):
        assert login(d, "carol", "wrong")[0].status == 401
    res = {}
    th = threading.Thread(target=lambda: res.update(r=login(d, "carol", "wrong")))
    th.start()
    time.sleep(0.3)
    t0 = time.monotonic()
    assert d.api("GET", "/v1/whoami").status == 200
    assert time.monotonic() - t0 < 1.0, "the worker waited with the delayed refusal"
    th.join(10)
    r, took = res["r"]
    assert r.status == 401 and took >= 1.8


def test_unknown_users_are_counted_like_known_ones(tenantd, redis):
    """No telling which user names exist from how they are throttled."""
    d = start(tenantd)
    for _ in range(4):
        assert login(d, "nosuchuser", "x")[0].status == 401
    r, _ = login(d, "nosuchuser", "x")
    assert r.status == 429


def test_address_limit_and_the_admin_token(tenantd, redis):
    d = start(tenantd, login_address_delay_after=0, login_address_refuse_after=3)
    person(d, "dave")
    for name in ("u1", "u2", "u3"):
        assert login(d, name, "x")[0].status == 401
    # Any user from this address, even with the right password.
    r, _ = login(d, "dave", "right-pw")
    assert r.status == 429 and "retry-after" in r.headers
    # The admin token is no login: never counted, never refused.
    assert d.api("GET", "/v1/whoami").status == 200


def test_success_forgets_the_user_but_not_the_address(tenantd, redis):
    d = start(tenantd, login_address_delay_after=0, login_address_refuse_after=6)
    person(d, "erin")
    for _ in range(3):
        assert login(d, "erin", "wrong")[0].status == 401
    assert login(d, "erin", "right-pw")[0].status == 200
    # The user's count is gone: fast again; the address kept its three
    # failures (the success took only its own attempt back).
    addr = f"tenantd:{{{TENANT_ID}}}:login:addr:127.0.0.1"
    wait_for(lambda: rget(redis, addr) == b"3", 2, interval=0.02,
             what="the address's count back to 3")
    r, took = login(d, "erin", "wrong")
    assert r.status == 401 and took < DELAY * 0.8


def test_new_password_unlocks_the_user(tenantd, redis):
    d = start(tenantd, login_window=60)
    dbid = person(d, "frank")
    for _ in range(4):
        login(d, "frank", "wrong")
    assert login(d, "frank", "right-pw")[0].status == 429
    r = d.api("PATCH", f"/v1/persons/{dbid}", {"password": "new-pw"})
    assert r.status == 200, r.text
    r, _ = login(d, "frank", "new-pw")
    assert r.status == 200, r.text


def test_two_instances_share_the_counts(tenantd, redis):
    a = start(tenantd)
    b = start(tenantd)
    assert a.config_port != b.config_port
    person(a, "gina")
    wait_for(lambda: login(b, "gina", "right-pw")[0].status == 200, 10,
             what="the person on the second instance")
    assert login(a, "gina", "wrong")[0].status == 401
    assert login(b, "gina", "wrong")[0].status == 401
    assert login(a, "gina", "wrong")[0].status == 401
    assert login(b, "gina", "wrong")[0].status == 401
    assert login(a, "gina", "right-pw")[0].status == 429
    assert login(b, "gina", "right-pw")[0].status == 429


@pytest.mark.allow_errors
def test_redis_away_counts_in_memory(tenantd, redis):
    d = start(tenantd, login_window=60)
    person(d, "hugo")
    redis.stop()
    try:
        for _ in range(4):
            r, _ = login(d, "hugo", "wrong")
            assert r.status == 401, r.text
        r, _ = login(d, "hugo", "right-pw")
        assert r.status == 429, r.text
        d.wait_log(r"counted in this process only", 5)
    finally:
        redis.start()


def test_reload_changes_the_limits(tenantd, redis):
    d = start(tenantd, login_window=60)
    person(d, "iris")
    for _ in range(4):
        login(d, "iris", "wrong")
    assert login(d, "iris", "right-pw")[0].status == 429
    off = d.log_size()
    d.write_conf(merge(d.conf, {"security": {"login_refuse_after": 10}}))
    d.signal(signal.SIGHUP)
    d.wait_log(r"reload complete", timeout=10, since=off)
    r, _ = login(d, "iris", "right-pw")
    assert r.status == 200, r.text


# ---- RequestOpen on a session port ----

def events_daemon(tenantd, **sec):
    port = free_port()
    over = {"workers": {"events": {"enabled": True, "listen": f"127.0.0.1:{port}"}}}
    d = start(tenantd, over, **sec)
    wait_for(lambda: session_opens(port, d.admin_token), 20,
             what="the events port to open a session")
    return d, port


def open_with(port, token):
    s = Session(port)
    t0 = time.monotonic()
    try:
        m = s.call("RequestOpen", token=token, client="t")
        return m, time.monotonic() - t0
    finally:
        s.close()


def test_request_open_slowed_then_refused_by_address(tenantd, redis):
    d, port = events_daemon(tenantd, login_address_delay_after=2,
                            login_address_refuse_after=4)
    bad = "ab" * 32
    for i in range(4):
        m, took = open_with(port, bad)
        assert m["event"] == "EventError" and m["code"] == "Unauthorized", m
        if i < 2:
            assert took < DELAY * 0.8, (i, took)
        else:
            assert took >= DELAY * 0.9, (i, took)
    m, took = open_with(port, bad)
    assert m["code"] == "TooManyAttempts", m
    assert 1 <= m["retryAfter"] <= WINDOW + 1 and m["ref"] == 1
    # A good token from this address is refused too, until the window ends...
    r = d.api("POST", "/v1/persons", {"userName": "jo", "password": "pw"})
    assert r.status == 201
    # (the token endpoint shares the address's count)
    assert login(d, "jo", "pw")[0].status == 429
    # ...but never the admin token.
    m, _ = open_with(port, d.admin_token)
    assert m["event"] == "EventOpened", m
    time.sleep(m.get("retryAfter", WINDOW) + 0.2)
    tok = login(d, "jo", "pw")[0].json["token"]
    m, _ = open_with(port, tok)
    assert m["event"] == "EventOpened", m
