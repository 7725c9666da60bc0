#!/usr/bin/python3
"""The Flask side's view of the cache, with Debian's python3-redis.

usage: redis_py_session.py read|write|kept SOCKET NAMESPACE USER_ID
  read:  the session the C library wrote must json.loads to the documented
         fields; exit 0 if so.
  write: store a session the way the Flask app would, for C to read typed.
  kept:  after C touched (and typed get + set) the session "write" stored,
         the Flask-only fields are still there and last_activity moved.
"""
import json
import sys

import redis

mode, sock, ns, user = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
if sock.startswith("cluster:"):  # cluster:HOST:PORT, a Redis Cluster
    from redis.cluster import RedisCluster

    host, port = sock[len("cluster:"):].rsplit(":", 1)
    r = RedisCluster(host=host, port=int(port))
else:
    r = redis.Redis(unix_socket_path=sock, db=0)
key = f"{ns}session:user:{user}"
if mode == "read":
    raw = r.get(key)
    s = json.loads(raw)
    want = {"user_id", "username", "dept_id", "current_company_id",
            "permissions", "last_activity"}
    assert set(s) == want, sorted(s)
    assert s["user_id"] == user and s["username"] == "관리자", s
    assert s["permissions"]["admin_batch"]["update"] is True, s
    assert s["last_activity"].endswith("Z"), s
    ttl = r.ttl(key)
    assert 86000 < ttl <= 86400, ttl
elif mode == "kept":
    s = json.loads(r.get(key))
    assert s["extra_flask_field"] == [1], s
    assert s["csrf_token"] == "c5rf", s
    assert s["roles"] == ["sales", "admin"], s
    assert s["last_activity"] != "2026-11-24T09:00:00Z", s
    assert s["username"] == "renamed-in-c", s
    assert 86000 < r.ttl(key) <= 86400
else:
    r.set(key, json.dumps({
        "user_id": user, "username": "flask-user", "dept_id": 3,
        "current_company_id": 2, "permissions": {"trade_order": {
            "create": True, "read": True, "update": False, "delete": False}},
        "last_activity": "2026-11-24T09:00:00Z", "extra_flask_field": [1],
        "csrf_token": "c5rf", "roles": ["sales", "admin"]},
        ensure_ascii=False), ex=86400)
print("redis-py ok")
