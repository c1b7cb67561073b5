# Benign: threads, a subprocess, a process pool, sqlite, json.
# expect: reason=exited exit=0
# expect: stdout-contains=threads [0, 1, 4, 9]
# expect: stdout-contains=sub 42
# expect: stdout-contains=pool [1, 2, 3]
# expect: stdout-contains=sqlite 7
brig_jailed()
import threading, subprocess, multiprocessing, sqlite3, json, hashlib
res = []
ts = [threading.Thread(target=lambda i=i: res.append(i * i)) for i in range(4)]
[t.start() for t in ts]; [t.join() for t in ts]
print("threads", sorted(res))
print("sub", subprocess.run(["sh", "-c", "echo $((6*7))"], capture_output=True, text=True).stdout.strip())
with multiprocessing.Pool(2) as p: print("pool", p.map(abs, [-1, -2, 3]))
db = sqlite3.connect("/tmp/t.db"); db.execute("create table t(x)"); db.execute("insert into t values (7)")
print("sqlite", db.execute("select x from t").fetchone()[0])
print("sha", hashlib.sha256(json.dumps({"a": 1}).encode()).hexdigest()[:8])
