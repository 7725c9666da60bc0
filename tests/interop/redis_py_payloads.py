#!/usr/bin/python3
"""What the Flask app sees of C-written payloads (Debian's python3-redis).

usage: redis_py_payloads.py SOCKET NAMESPACE
The C test wrote, under NAMESPACE: batch:status:1 (db 4),
gift:classification:P%2A1:1 (db 5), temp:excel_upload:u1 (db 2) and
stats:daily_sales:20261124 (db 1). Each must json.loads to exactly the
documented fields, with the documented types.
"""
import json
import sys

sock, ns = sys.argv[1], sys.argv[2]


def connect(db):
    """A unix socket path, or cluster:HOST:PORT for a Redis Cluster (db 0)."""
    if sock.startswith("cluster:"):
        from redis.cluster import RedisCluster

        host, port = sock[len("cluster:"):].rsplit(":", 1)
        return RedisCluster(host=host, port=int(port))
    return redis.Redis(unix_socket_path=sock, db=db)


def load(db, key):
    r = connect(db)
    raw = r.get(ns + key)
    assert raw is not None, key
    assert r.ttl(ns + key) > 0, key
    return json.loads(raw)


import redis  # noqa: E402

s = load(4, "batch:status:1")
assert set(s) == {"status", "start_time", "end_time", "batch_id",
                  "current_step", "progress", "errors"}, sorted(s)
assert s["status"] == "running" and s["errors"] == ["page 3: timeout"], s
assert set(s["progress"]) == {"total_pages", "processed_pages",
                              "total_records", "processed_records",
                              "classified_gifts"}, s["progress"]
assert s["end_time"] is None, s

c = load(5, "gift:classification:P%2A1:1")
assert set(c) == {"product_type", "gift_type", "classification_reason",
                  "is_revenue", "revenue_impact", "classified_at"}, sorted(c)
assert c["product_type"] == "GIFT" and c["gift_type"] == "KEYWORD", c
assert c["is_revenue"] is False and c["revenue_impact"] == 0, c
assert "사은품" in c["classification_reason"], c

u = load(2, "temp:excel_upload:u1")
assert set(u) == {"status", "total_rows", "processed_rows", "error_count",
                  "start_time"}, sorted(u)
assert (u["processed_rows"], u["error_count"]) == (500, 5), u

d = load(1, "stats:daily_sales:20261124")
assert set(d) == {"total_amount", "order_count", "brand_stats",
                  "channel_stats", "gift_stats"}, sorted(d)
assert d["gift_stats"] == {"gift_order_count": 85,
                           "gift_attachment_rate": 56.7,
                           "total_gift_cost": 125000}, d["gift_stats"]
print("redis-py payloads ok")
