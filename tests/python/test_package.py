#!/usr/bin/python3
"""The Python package (python/miscache) against the C library, on a private
redis-server (or a 3-master cluster with --cluster) this program starts on
loopback ports below 32768 in its own temp dir and always stops:

  - the keyspace copy is the C library's own;
  - the URL: the same settings text (miscache config) or the same refusal
    for every URL, password never shown;
  - keys: byte for byte `miscache key` for every family and odd ids, hash
    tags and a namespace, and the same refusals;
  - values: what C's typed calls write Python reads, what Python writes C's
    typed calls read (TTL and db as the URL says); a value C refuses is a
    miss in Python, and Python refuses to write it;
  - events: every invalidation event removes the same keys from both sides
    (compared with `miscache invalidate EVENT --dry-run` too);
  - locks exclude each other across the languages (token and fenced);
  - the CacheManager adapter writes the keys C reads.

usage: test_package.py --tool MISCACHE --peer C_PEER [--cluster]
"""
import argparse
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "python"))

import redis  # noqa: E402

import miscache  # noqa: E402
from miscache import _table  # noqa: E402

ARGS = None
SERVER = None


def free_port(taken=()):
    for _ in range(2000):
        port = random.randint(20000, 31999)
        if port in taken or port == 6379:
            continue
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            s.close()
    raise RuntimeError("no free port")


class Servers:
    """redis-server processes in one temp dir; stop() always runs."""

    def __init__(self, cluster):
        self.dir = tempfile.mkdtemp(prefix="miscache-py-")
        self.procs, self.ports = [], []
        self.cluster = cluster
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _spawn(self, port, extra):
        d = os.path.join(self.dir, str(port))
        os.mkdir(d)
        argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                "--dir", d, "--save", "", "--appendonly", "no",
                "--logfile", os.path.join(d, "redis.log")] + extra
        self.procs.append(subprocess.Popen(argv, stdout=subprocess.DEVNULL,
                                           stderr=subprocess.DEVNULL))
        self.ports.append(port)
        deadline = time.monotonic() + 10
        while True:
            try:
                if redis.Redis(port=port, socket_timeout=1).ping():
                    return
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def _start(self):
        if not self.cluster:
            self._spawn(free_port(), [])
            self.url = "redis://127.0.0.1:%d" % self.ports[0]
            return
        taken = set()
        for _ in range(3):
            port = free_port(taken)
            bus = free_port(taken | {port})
            taken |= {port, bus}
            self._spawn(port, ["--cluster-enabled", "yes", "--cluster-port",
                               str(bus), "--cluster-node-timeout", "1000",
                               "--cluster-config-file", "nodes.conf"])
        subprocess.run(["redis-cli", "--cluster", "create"] +
                       ["127.0.0.1:%d" % p for p in self.ports] +
                       ["--cluster-replicas", "0", "--cluster-yes"],
                       check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=60)
        deadline = time.monotonic() + 30
        for p in self.ports:
            while b"cluster_state:ok" not in redis.Redis(port=p).execute_command(
                    "CLUSTER", "INFO"):
                if time.monotonic() > deadline:
                    raise RuntimeError("cluster did not come up")
                time.sleep(0.1)
        self.url = "redis+cluster://" + ",".join("127.0.0.1:%d" % p
                                                for p in self.ports)

    def flush(self):
        for p in self.ports:
            redis.Redis(port=p).flushall()

    def stop(self):
        for p in self.procs:
            p.kill()
        for p in self.procs:
            p.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def tool(*argv, url=None, check=False):
    env = dict(os.environ)
    env.pop("MISCACHE_URL", None)
    if url is not None:
        env["MISCACHE_URL"] = url
    r = subprocess.run([ARGS.tool] + list(argv), env=env, capture_output=True,
                       text=True, timeout=60)
    if check and r.returncode != 0:
        raise AssertionError("miscache %s: %d %s" % (" ".join(argv), r.returncode,
                                                     r.stderr))
    return r


def peer(url, *argv):
    env = dict(os.environ, MISCACHE_URL=url)
    r = subprocess.run([ARGS.peer] + [str(a) for a in argv], env=env,
                       capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise AssertionError("c_peer %s: %d %s" % (" ".join(map(str, argv)),
                                                   r.returncode, r.stderr))
    return r.stdout.strip()


def join_url(base, params):
    return base + ("&" if "?" in base else "?") + params


class NoServer(unittest.TestCase):
    def test_keyspace_copy_is_the_libraries(self):
        out = tool("keyspace", "--json", check=True).stdout
        self.assertEqual(json.loads(out), _table.TABLE,
                         "python/miscache/keyspace.json differs from `miscache "
                         "keyspace --json`: run scripts/update-keyspace.sh")

    def test_urls_same(self):
        good = [
            "redis://h",
            "redis://app:Hunter2@cache.internal:6380?namespace=mis:&db_cache=7",
            "rediss://:Hunter2@[::1]:6390?cacert=/ca.pem&cert=c.pem&key=k.pem"
            "&tls_insecure_skip_verify=true&near=on",
            "redis+sentinel://u:Hunter2@s1,s2:26380,[fe80::1]/mymaster?"
            "sentinel_user=su&sentinel_password=Hunter2&ttl_session=60",
            "redis+cluster://n1:7000,n2:7001?hash_tags=true&namespace=a.b-c_d:&"
            "near=permissions,gift-rules,brands&lease=gift,master&early_refresh=none",
            "unix:///tmp/r%20edis.sock?namespace=&command_timeout_ms=0005",
            "redis://Hunter2@h:1/",
            "redis://h?backoff_min_ms=5000&backoff_max_ms=5000&max_bulk=4096&"
            "max_reply_bytes=4096&single_flight=0&lazy_connect=1",
        ]
        for url in good:
            with self.subTest(url=url):
                r = tool("--url", url, "config")
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertEqual(miscache.Cache.from_url(url).describe(), r.stdout)
                self.assertNotIn("Hunter2", r.stdout)
        bad = [
            "redis://app:Hunter2@h?bogus=1", "redis://app:Hunter2@h?namespace=a*b",
            "redis://app:Hunter2@h?db_cache=1000001", "redis://h?near=batch-lock",
            "redis://h?near=", "redis://h?hash_tags=yes", "redis://h?connect_timeout_ms=0",
            "redis://h?ttl_session=1e3", "redis://h?db_cache=1&db_cache=2",
            "redis://h?tls_insecure_skip_verify=true", "redis://h?cacert=x",
            "rediss://h?cert=c.pem", "redis://h/0", "redis://a,b", "redis://h:0",
            "redis://h:65536", "redis://u:@h", "redis://u:%zz@h", "redis://h h",
            "redis+sentinel://s1", "redis+cluster://h/0", "redis://[::1",
            "redis://h#x", "redis://h?", "redis://h?&", "unix://rel",
            "http://app:Hunter2@h", "redis://h?lease=nothing",
            "redis://h?backoff_min_ms=6000", "redis://h?max_bulk=300000000",
            "redis://h?namespace=" + "x" * 65, "redis://h?scan_count=%00",
        ]
        for url in bad:
            with self.subTest(url=url):
                r = tool("--url", url, "config")
                self.assertEqual(r.returncode, 2, (r.stdout, r.stderr))
                with self.assertRaises(miscache.ConfigError) as e:
                    miscache.Cache.from_url(url)
                self.assertNotIn("Hunter2", str(e.exception))
                self.assertNotIn("Hunter2", r.stderr)
        # a setting in code wins over the URL, both sides
        url = "redis://h?namespace=url:&db_cache=7"
        self.assertEqual(miscache.Cache.from_url(url, namespace="code:").namespace,
                         "code:")
        r = tool("--url", url, "--namespace", "code:", "config", check=True)
        self.assertIn("\nnamespace=code:\n", r.stdout)
        self.assertEqual(miscache.Cache.from_url(url, namespace="code:").describe(),
                         r.stdout)
        # MISCACHE_URL
        os.environ["MISCACHE_URL"] = url
        try:
            self.assertEqual(miscache.Cache.from_url().describe(),
                             tool("config", url=url, check=True).stdout)
        finally:
            del os.environ["MISCACHE_URL"]

    def test_keys_same(self):
        odd = ["1", "10", "007", "-5", "0", "9223372036854775807",
               "9223372036854775808", "P-001", "a b", "한글", "x:y*[?]\\", "%",
               "20261124", "20261324", "202611", "2026-11-24", "~._-", "",
               "+7", "-"]
        cases = []
        for name, f in _table.FAMILIES.items():
            n = len(f["ids"])
            if n == 0:
                cases.append((name, []))
            for v in odd:
                cases.append((name, [v] * n))
            if n == 2:
                cases.append((name, ["7", "20261124"]))
                cases.append((name, ["P 1", "7"]))
        for url in ("redis://h", "redis://h?hash_tags=true&namespace=ns.1:"):
            c = miscache.Cache.from_url(url)
            for name, ids in cases:
                with self.subTest(url=url, family=name, ids=ids):
                    r = tool("--url", url, "key", name, *ids)
                    try:
                        mine = c.key(name, *ids)
                    except miscache.KeyRefused:
                        mine = None
                    if r.returncode == 0:
                        self.assertEqual(mine, r.stdout.rstrip("\n"))
                    else:
                        self.assertEqual(r.returncode, 2, r.stderr)
                        self.assertIsNone(mine, "C refused: %s" % r.stderr)


class WithServer(unittest.TestCase):
    """Runs on SERVER (standalone or cluster) with a non-default db map."""

    @classmethod
    def setUpClass(cls):
        extra = "namespace=py%d:" % os.getpid()
        if not SERVER.cluster:
            extra += "&db_session=3&db_cache=7&db_batch=9&db_gift=11"
        else:
            extra += "&hash_tags=true"
        cls.url = join_url(SERVER.url, extra)
        cls.cache = miscache.Cache.from_url(cls.url)

    def setUp(self):
        SERVER.flush()

    def raw(self, logical):
        """A raw client on the physical db the URL maps logical to."""
        if SERVER.cluster:
            return self.cache.client(logical)
        return redis.Redis(port=SERVER.ports[0],
                           db=self.cache.settings.db_number(logical))

    def test_c_writes_python_reads(self):
        self.assertEqual(peer(self.url, "write", 7), "written")
        c = self.cache
        s = c.get("session", 7)
        self.assertEqual((s["user_id"], s["username"], s["dept_id"]), (7, "c-user", 3))
        self.assertEqual(s["permissions"], {"sales": {"read": True, "update": False}})
        self.assertEqual(c.get("permissions", 7), s["permissions"])
        cfg = c.get("batch-config", 7)
        self.assertEqual((cfg["batch_enabled"], cfg["page_size"], cfg["gift_keywords"]),
                         (True, 30, ["사은품"]))
        self.assertEqual(c.get("batch-status", 7)["progress"]["total_pages"], 9)
        self.assertEqual(c.get("batch-history", 7, "20261124")["duration_seconds"], 42)
        self.assertEqual(c.get("gift-rules", 7)["keywords"], ["증정품"])
        self.assertEqual(c.get("daily-sales", "20261124")["total_amount"], 1234.5)
        self.assertEqual(c.get("brands"), [{"code": "B1"}])
        self.assertEqual(c.get("serial", "B 7", "20261124"), 5)
        for fam, ids in [("session", [7]), ("batch-status", [7]),
                         ("gift-rules", [7]), ("daily-sales", ["20261124"])]:
            ttl = c.ttl(fam, *ids)
            want = _table.TTL_DEFAULTS[_table.FAMILIES[fam]["ttl_class"]]
            self.assertTrue(want - 5 <= ttl <= want, (fam, ttl, want))
            # the key is where the URL's db map puts it
            self.assertEqual(self.raw(_table.FAMILIES[fam]["db"]).exists(
                c.key(fam, *ids)), 1)

    def test_python_writes_c_reads(self):
        c = self.cache
        c.set("session", 8, {"user_id": 8, "username": "py-user", "dept_id": 2,
                             "flask_only": [1, 2], "permissions": {"a": {"read": True}}})
        c.set("permissions", 8, {"trade": {"create": True, "read": True}})
        c.set("batch-config", 8, {"batch_enabled": False, "batch_hour": 4,
                                  "page_size": 50, "gift_keywords": ["무료"]})
        c.set("batch-status", 8, {"status": "completed", "batch_id": "py",
                                  "progress": {"total_pages": 3}})
        c.set("batch-history", 8, "20261124", {"status": "failed",
                                               "duration_seconds": 9})
        c.set("gift-rules", 8, {"auto_classify": False, "keywords": ["샘플"]})
        c.set("daily-sales", "20261125", {"total_amount": 10, "order_count": 2})
        c.set("brands", [{"code": "B9"}])
        c.set("serial", "B 8", "20261124", 41)
        s = json.loads(peer(self.url, "read", "session", 8)[3:])
        self.assertEqual((s["user_id"], s["username"], s["dept_id"]), (8, "py-user", 2))
        self.assertEqual(json.loads(peer(self.url, "read", "permissions", 8)[3:]),
                         {"trade": {"create": True, "read": True}})
        cfg = json.loads(peer(self.url, "read", "batch-config", 8)[3:])
        self.assertEqual((cfg["batch_enabled"], cfg["batch_hour"], cfg["gift_keywords"]),
                         (False, 4, ["무료"]))
        self.assertEqual(json.loads(peer(self.url, "read", "batch-status", 8)[3:]),
                         {"status": "completed", "batch_id": "py", "total_pages": 3})
        self.assertEqual(json.loads(peer(self.url, "read", "batch-history", 8,
                                         "20261124")[3:])["duration_seconds"], 9)
        self.assertEqual(json.loads(peer(self.url, "read", "gift-rules", 8)[3:]),
                         {"auto_classify": False, "keywords": ["샘플"]})
        self.assertEqual(json.loads(peer(self.url, "read", "daily-sales",
                                         "20261125")[3:])["order_count"], 2)
        self.assertEqual(peer(self.url, "read", "brands"), 'OK [{"code":"B9"}]')
        self.assertEqual(peer(self.url, "read", "serial", "B 8", "20261124"), "OK 41")
        # the Flask-only member stays in the stored value
        raw = json.loads(self.raw("session").get(c.key("session", 8)))
        self.assertEqual(raw["flask_only"], [1, 2])
        # TTLs: the class's; with jitter, spread within +-pct
        pttl = self.raw("batch").pttl(c.key("batch-status", 8))
        self.assertTrue(3595000 <= pttl <= 3600000, pttl)
        j = miscache.Cache.from_url(self.url, ttl_jitter_pct=20, ttl_session=1000)
        seen = set()
        for i in range(40):
            j.set("session", 100 + i, {"user_id": 100 + i})
            seen.add(self.raw("session").pttl(j.key("session", 100 + i)) // 1000)
        self.assertTrue(all(795 <= t <= 1200 for t in seen), seen)
        self.assertGreater(len(seen), 5)

    def test_refused_values_are_misses_both_sides(self):
        c = self.cache
        bad = [
            ("session", [9], b'{"username":"no id"}'),
            ("session", [9], b'{"user_id":"9"}'),
            ("session", [9], b'[1,2]'),
            ("session", [9], b'{"user_id":9,"dept_id":null}'),
            ("session", [9], b'{"user_id":9,"username":"a\\u0000b"}'),
            ("session", [9], b'{"user_id":99999999999999999999}'),
            ("session", [9], b'{"user_id":9,"x":NaN}'),
            ("session", [9], b'{"user_id":9,"x":1e400}'),
            ("session", [9], b'{"user_id":9,"x":"\\ud800"}'),
            ("session", [9], b'{"user_id":9,"username":"\xff"}'),
            ("session", [9], b'{"user_id":9} x'),
            ("permissions", [9], b'{"sales":{"read":"yes"}}'),
            ("permissions", [9], b'{"sales":true}'),
            ("batch-status", [9], b'{"batch_id":"no status"}'),
            ("batch-status", [9], b'{"status":"r","progress":[]}'),
            ("batch-config", [9], b'{"page_size":1.5}'),
            ("batch-config", [9], b'{"gift_keywords":["a",1]}'),
            ("gift-rules", [9], b'{"auto_classify":1}'),
            ("brands", [], b'{"not":"a list"}'),
            ("serial", ["B 9", "20261124"], b'"5"'),
            ("daily-sales", ["20261126"], b'{"total_amount":true}'),
        ]
        for fam, ids, raw in bad:
            with self.subTest(family=fam, raw=raw):
                self.raw(_table.FAMILIES[fam]["db"]).set(c.key(fam, *ids), raw, ex=60)
                self.assertIsNone(c.get(fam, *ids))
                self.assertIn(peer(self.url, "read", fam, *ids), ("DECODE", "MISS"))
                try:
                    v = json.loads(raw)
                except ValueError:
                    continue
                if "\\u0000" in raw.decode("latin-1") or b"NaN" in raw or \
                        b"1e400" in raw or b"\\ud800" in raw:
                    continue  # Python's json reads these differently; C never sees them
                with self.assertRaises(miscache.ValueRefused):
                    c.set(fam, *ids, v)

    def seed(self):
        """Keys of many families for companies 1, 10, 11 and two brands."""
        c = self.cache
        obj = {"status": "x", "user_id": 1}
        for co in (1, 10, 11):
            c.set("batch-config", co, {})
            c.set("batch-status", co, obj)
            for day in ("20261124", "20261125"):
                c.set("batch-history", co, day, obj)
                c.set("gift-analytics", co, day, {})
            c.set("gift-rules", co, {})
            c.set("gift-master", co, [])
            for p in ("P-1", "P 2", "1"):
                c.set("gift-classification", p, co, {"product_type": "gift"})
            c.set("permissions", co, {})
            c.set("session", co, {"user_id": co})
        for b in ("B1", "B 2"):
            for day in ("20261124", "20261125"):
                c.set("serial", b, day, 3)
        c.set("brands", [])
        c.set("departments", [])
        c.set("daily-sales", "20261124", {})
        c.set("daily-sales", "20261125", {})

    def all_keys(self):
        """(physical db, key) of every key of the namespace."""
        out = set()
        if SERVER.cluster:
            for p in SERVER.ports:
                for k in redis.Redis(port=p).scan_iter(
                        match=self.cache.namespace + "*"):
                    out.add((0, k.decode()))
            return out
        for n in {self.cache.settings.db_number(d) for d in _table.DATABASES}:
            conn = redis.Redis(port=SERVER.ports[0], db=n)
            for k in conn.scan_iter(match=self.cache.namespace + "*"):
                out.add((n, k.decode()))
        return out

    def test_events_remove_the_same_keys(self):
        events = [("permissions", ["10"]), ("batch-config", ["1"]),
                  ("gift-rules", ["1"]), ("company", ["10"]), ("brand", ["B 2"]),
                  ("daily", ["20261124"]), ("post-batch", ["1", "11"])]
        for ev, args in events:
            with self.subTest(event=ev):
                self.seed()
                before = self.all_keys()
                kw = {"date": "20261124"} if ev == "post-batch" else {}
                dry = self.cache.invalidate(ev, *args, dry_run=True, **kw)
                targs = (["--date=20261124"] if ev == "post-batch" else []) + args
                r = tool("invalidate", ev, *targs, "--dry-run", url=self.url, check=True)
                c_dry = set()
                for line in r.stdout.splitlines():
                    if line.startswith("would remove ") and "(db " in line:
                        c_dry.add(line[len("would remove "):line.rindex(" (db ")])
                py_dry = {k for _, k in dry}
                strip = len(self.cache.namespace)
                self.assertEqual({k[strip:] if k.startswith(self.cache.namespace) else k
                                  for k in py_dry},
                                 {k[strip:] if k.startswith(self.cache.namespace) else k
                                  for k in c_dry})
                self.assertTrue(py_dry, "the event matched nothing")
                n = self.cache.invalidate(ev, *args, **kw)
                after_py = self.all_keys()
                self.assertEqual(n, len(before) - len(after_py))
                self.assertEqual({k for _, k in before - after_py}, py_dry)
                SERVER.flush()
                self.seed()
                tool("invalidate", ev, *targs, url=self.url, check=True)
                self.assertEqual(self.all_keys(), after_py)
                SERVER.flush()
        with self.assertRaises(miscache.KeyRefused):
            self.cache.invalidate("daily", "2026-11-24")
        with self.assertRaises(miscache.KeyRefused):
            self.cache.invalidate("company", "ten")

    def test_locks_exclude_across_languages(self):
        c = self.cache
        lk = c.lock("serial-lock", "B1", ttl_ms=30000, locked_by="py")
        self.assertEqual(peer(self.url, "lock-try", "serial-lock", "B1"), "locked")
        with self.assertRaises(miscache.LockedError):
            c.lock("serial-lock", "B1")
        lk.release()
        with self.assertRaises(miscache.NotOwnerError):
            lk.release()
        self.assertEqual(peer(self.url, "lock-try", "serial-lock", "B1"), "taken")
        self.assertEqual(peer(self.url, "lock-hold", "serial-lock", "B1"), "taken")
        with self.assertRaises(miscache.LockedError):
            c.lock("serial-lock", "B1")
        # a release with a token that is not the holder's leaves the lock
        fake = miscache.Lock(c, c.client("cache"), c.key("serial-lock", "B1"),
                             "not-the-token", 0)
        with self.assertRaises(miscache.NotOwnerError):
            fake.release()
        self.assertEqual(peer(self.url, "lock-try", "serial-lock", "B1"), "locked")
        # the fenced batch lock: fences grow whoever takes it
        f1 = int(peer(self.url, "batch-lock-try", 5).split()[1])
        blk = c.batch_lock(5, locked_by="flask")
        self.assertGreater(blk.fence, f1)
        self.assertEqual(peer(self.url, "batch-lock-try", 5), "locked")
        blk.heartbeat()
        blk.release()
        f3 = int(peer(self.url, "batch-lock-hold", 5).split()[1])
        self.assertGreater(f3, blk.fence)
        with self.assertRaises(miscache.LockedError):
            c.batch_lock(5)

    def test_cache_manager(self):
        m = miscache.CacheManager(self.cache)
        self.assertTrue(m.set("batch:config:7", {"batch_enabled": True,
                                                 "page_size": 20}, 86400, db=4))
        cfg = json.loads(peer(self.url, "read", "batch-config", 7)[3:])
        self.assertEqual((cfg["batch_enabled"], cfg["page_size"]), (True, 20))
        self.assertEqual(m.get("batch:config:7", db=4)["page_size"], 20)
        self.assertTrue(m.set("gift:classification:P-1:7", {"product_type": "gift"}, 60, db=5))
        self.assertTrue(m.set("gift:classification:P-1:70", {"product_type": "gift"},
                              60, db=5))
        hashed = "gift:classification:*:{7}" if SERVER.cluster else \
            "gift:classification:*:7"
        self.assertEqual(m.invalidate_pattern(hashed, db=5), 1)
        self.assertIsNone(m.get("gift:classification:P-1:7", db=5))
        self.assertIsNotNone(m.get("gift:classification:P-1:70", db=5))
        # a value C would refuse is a miss, and is not written
        self.assertFalse(m.set("batch:status:7", {"no": "status"}, db=4))
        calls = []
        self.assertEqual(m.get_or_set("master:brands", lambda: calls.append(1) or
                                      [{"code": "B"}], 600, db=1), [{"code": "B"}])
        self.assertEqual(m.get_or_set("master:brands", lambda: calls.append(1), 600,
                                      db=1), [{"code": "B"}])
        self.assertEqual(calls, [1])
        self.assertEqual(peer(self.url, "read", "brands"), 'OK [{"code":"B"}]')
        self.assertTrue(m.set_lock("lock:batch_process:nightly", "flask", 30))
        self.assertEqual(peer(self.url, "lock-try", "process-lock", "nightly"), "locked")
        self.assertFalse(m.set_lock("lock:batch_process:nightly", "again", 30))
        self.assertTrue(m.release_lock("lock:batch_process:nightly"))
        self.assertEqual(peer(self.url, "lock-try", "process-lock", "nightly"), "taken")
        self.assertTrue(m.delete("batch:config:7", db=4))
        self.assertEqual(peer(self.url, "read", "batch-config", 7), "MISS")
        # keys of no family: namespaced, as given
        self.assertTrue(m.set("custom:thing", {"a": 1}, 60, db=1))
        self.assertEqual(m.get("custom:thing", db=1), {"a": 1})

    def test_example_configured_by_the_url_alone(self):
        """batch_executor sets nothing in code: MISCACHE_URL alone makes it
        run on a cluster (hash_tags=true) and in the URL's namespace."""
        if not ARGS.batch_executor:
            self.skipTest("examples not built")
        env = dict(os.environ, MISCACHE_URL=self.url)
        r = subprocess.run([ARGS.batch_executor, "--company", "3", "--pages", "2",
                            "--delay-ms", "0"], env=env, capture_output=True,
                           text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        day = time.strftime("%Y%m%d", time.gmtime())
        h = self.cache.get("batch-history", 3, day)
        self.assertEqual(h["status"], "completed", h)
        if SERVER.cluster:  # without the URL's hash_tags the fenced lock refuses
            env["MISCACHE_URL"] = self.url.replace("&hash_tags=true", "")
            r = subprocess.run([ARGS.batch_executor, "--company", "4", "--pages",
                                "1", "--delay-ms", "0"], env=env,
                               capture_output=True, text=True, timeout=120)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("hash-tagged", r.stdout + r.stderr)

    def test_examples_on_this_deployment(self):
        """endpoints (any URL), queue_worker and flush_worker (not on a
        cluster: write-behind needs one db) configured by MISCACHE_URL."""
        if not ARGS.batch_executor:
            self.skipTest("examples not built")
        d = os.path.dirname(ARGS.batch_executor)
        env = dict(os.environ, MISCACHE_URL=self.url)
        progs = [["endpoints"], ["queue_worker", "--jobs", "9"]]
        if not SERVER.cluster:
            progs.append(["flush_worker", "--users", "5", "--updates", "4"])
        for argv in progs:
            r = subprocess.run([os.path.join(d, argv[0])] + argv[1:], env=env,
                               capture_output=True, text=True, timeout=120)
            self.assertEqual(r.returncode, 0, argv[0] + ": " + r.stdout + r.stderr)
        self.assertIsNotNone(self.cache.get("batch-status", 7))

    def test_metrics_service_example(self):
        """The example service: its pool's latency histograms and counters
        on GET /metrics, its events in syslog (here: stderr)."""
        if not ARGS.metrics_service:
            self.skipTest("examples not built")
        import urllib.request
        env = dict(os.environ, MISCACHE_URL=join_url(self.url, "near=on&slow_call_ms=100"))
        p = subprocess.Popen([ARGS.metrics_service, "--seconds", "4"], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
        try:
            line = p.stdout.readline()
            self.assertTrue(line.startswith("listening on 127.0.0.1:"), line)
            port = int(line.rsplit(":", 1)[1])
            time.sleep(0.5)
            for p_ in SERVER.ports:  # every call waits 300 ms: slow calls
                redis.Redis(port=p_).execute_command("CLIENT", "PAUSE", "300", "ALL")
            time.sleep(1.0)
            body = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port,
                                          timeout=10).read().decode()
        finally:
            out, err = p.communicate(timeout=30)
        self.assertEqual(p.returncode, 0, err)
        self.assertIn("# TYPE miscache_command_duration_seconds histogram", body)
        counts = {l.split("{")[1].split('"')[1]: int(l.rsplit(" ", 1)[1])
                  for l in body.splitlines()
                  if l.startswith("miscache_command_duration_seconds_count{")}
        self.assertGreater(counts["read"], 0, body)
        self.assertGreater(counts["write"], 0, body)
        self.assertIn('miscache_reads_total{category="permissions",result="hit"}', body)
        self.assertIn("miscache_near", body)
        self.assertIn("cache connect", err)
        self.assertIn("cache near_confirmed", err)
        self.assertIn("cache slow_call", err)
        self.assertNotIn("Hunter2", err)


class Transports(unittest.TestCase):
    """TLS and Sentinel from Python, against C on the same deployment: what
    one side writes the other reads; an untrusted certificate is refused by
    both. Servers of its own, in its own temp dir."""

    @classmethod
    def setUpClass(cls):
        if ARGS.cluster:
            raise unittest.SkipTest("run in the standalone pass")
        cls.dir = tempfile.mkdtemp(prefix="miscache-py-tls-")
        cls.procs = []
        try:
            cls._start()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def _spawn(cls, argv, port, **kw):
        cls.procs.append(subprocess.Popen(argv, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL))
        deadline = time.monotonic() + 10
        while True:
            try:
                if redis.Redis(port=port, socket_timeout=1, **kw).ping():
                    return
            except (redis.ConnectionError, redis.ResponseError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    @classmethod
    def _start(cls):
        d = cls.dir

        def ossl(*a):
            subprocess.run(["openssl"] + list(a), cwd=d, check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        for ca in ("ca", "rogue"):
            ossl("req", "-x509", *ec, "-keyout", ca + ".key", "-out", ca + ".crt",
                 "-days", "2", "-subj", "/CN=" + ca)
        ossl("req", *ec, "-keyout", "server.key", "-out", "server.csr",
             "-subj", "/CN=localhost")
        with open(os.path.join(d, "ext"), "w") as f:
            f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
        ossl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey",
             "ca.key", "-CAcreateserial", "-out", "server.crt", "-days", "2",
             "-extfile", "ext")
        cls.tls_port = free_port()
        cls._spawn(["redis-server", "--port", "0", "--tls-port", str(cls.tls_port),
                    "--bind", "127.0.0.1", "--dir", d, "--save", "",
                    "--tls-cert-file", d + "/server.crt", "--tls-key-file",
                    d + "/server.key", "--tls-ca-cert-file", d + "/ca.crt",
                    "--tls-auth-clients", "no"], cls.tls_port, ssl=True,
                   ssl_ca_certs=d + "/ca.crt")
        cls.master_port = free_port({cls.tls_port})
        cls._spawn(["redis-server", "--port", str(cls.master_port), "--bind",
                    "127.0.0.1", "--dir", d, "--save", ""], cls.master_port)
        cls.sentinel_port = free_port({cls.tls_port, cls.master_port})
        conf = os.path.join(d, "sentinel.conf")
        with open(conf, "w") as f:
            f.write("port %d\nbind 127.0.0.1\ndir %s\n"
                    "sentinel monitor mymaster 127.0.0.1 %d 1\n"
                    "sentinel down-after-milliseconds mymaster 1000\n"
                    % (cls.sentinel_port, d, cls.master_port))
        cls._spawn(["redis-server", conf, "--sentinel"], cls.sentinel_port)
        deadline = time.monotonic() + 15
        while not redis.Redis(port=cls.sentinel_port).execute_command(
                "SENTINEL", "get-master-addr-by-name", "mymaster"):
            if time.monotonic() > deadline:
                raise RuntimeError("the sentinel does not know the master")
            time.sleep(0.1)

    @classmethod
    def tearDownClass(cls):
        for p in getattr(cls, "procs", []):
            p.kill()
            p.wait()
        shutil.rmtree(getattr(cls, "dir", ""), ignore_errors=True)

    def both_ways(self, url):
        c = miscache.Cache.from_url(url)
        c.set("batch-status", 21, {"status": "running", "batch_id": "py"})
        self.assertEqual(json.loads(peer(url, "read", "batch-status", 21)[3:]),
                         {"status": "running", "batch_id": "py", "total_pages": 0})
        self.assertEqual(peer(url, "write", 22), "written")
        self.assertEqual(c.get("session", 22)["username"], "c-user")
        lk = c.lock("serial-lock", "T1", ttl_ms=20000)
        self.assertEqual(peer(url, "lock-try", "serial-lock", "T1"), "locked")
        lk.release()
        self.assertEqual(c.describe(), tool("--url", url, "config", check=True).stdout)
        c.close()
        if ARGS.batch_executor:  # the example program on this deployment
            r = subprocess.run([os.path.join(os.path.dirname(ARGS.batch_executor),
                                             "endpoints")],
                               env=dict(os.environ, MISCACHE_URL=url),
                               capture_output=True, text=True, timeout=60)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_tls(self):
        url = "rediss://127.0.0.1:%d?cacert=%s/ca.crt&namespace=tls:" % (
            self.tls_port, self.dir)
        self.both_ways(url)
        # a certificate of another CA: both refuse
        rogue = url.replace("/ca.crt", "/rogue.crt")
        with self.assertRaises(redis.ConnectionError):
            miscache.Cache.from_url(rogue).get("session", 1)
        env = dict(os.environ, MISCACHE_URL=rogue)
        r = subprocess.run([ARGS.peer, "read", "session", "1"], env=env,
                           capture_output=True, text=True, timeout=60)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("TLS", r.stderr)
        # localhost is in the certificate too; a skip-verify URL works anyway
        self.both_ways(rogue + "&tls_insecure_skip_verify=true")

    def test_sentinel(self):
        url = "redis+sentinel://127.0.0.1:%d/mymaster?namespace=snt:&db_batch=6" % (
            self.sentinel_port)
        self.both_ways(url)
        raw = redis.Redis(port=self.master_port, db=6)
        self.assertEqual(raw.exists("snt:batch:status:21"), 1)


def main():
    global ARGS, SERVER
    ap = argparse.ArgumentParser()
    ap.add_argument("--tool", required=True)
    ap.add_argument("--peer", required=True)
    ap.add_argument("--cluster", action="store_true")
    ap.add_argument("--batch-executor")
    ap.add_argument("--metrics-service")
    ARGS, rest = ap.parse_known_args()
    os.environ.pop("MISCACHE_URL", None)
    SERVER = Servers(ARGS.cluster)
    try:
        prog = unittest.main(argv=[sys.argv[0]] + rest, exit=False, verbosity=2)
        ok = prog.result.wasSuccessful()
    finally:
        SERVER.stop()
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
