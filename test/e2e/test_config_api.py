import json, time
from concurrent.futures import ThreadPoolExecutor
def test_smoke(config_api):
    d = config_api
    cl = d.api_client()
    t0 = time.monotonic()
    def mk(i):
        r = cl("POST", "/v1/skills", {"name": f"s{i:05d}"})
        assert r.status == 201, r
        return r.json["dbid"]
    with ThreadPoolExecutor(16) as ex:
        ids = list(ex.map(mk, range(10000)))
    print("took", time.monotonic() - t0)
    t0 = time.monotonic()
    r = d.api("GET", "/v1/skills?limit=10000")
    print("list took", time.monotonic() - t0, len(r.json["items"]), len(r.text))
    t0 = time.monotonic()
    r = d.api("GET", "/v1/changes?since=0")
    print("changes took", time.monotonic() - t0, len(r.json["changes"]))
