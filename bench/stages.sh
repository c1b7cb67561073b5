#!/usr/bin/env bash
# Where a cold jail's time goes: runs JAILS cold /bin/true jails in process
# (BenchmarkColdTrue) under `perf record` with a few system-call and
# scheduler tracepoints the stages hit in order, and prints the median time
# between consecutive marks (the README's per-stage table). Tracepoints,
# not timestamps compiled into the stages: the code measured is the code
# that ships. Tracing adds a little to each marked call, so the total reads
# a few percent above BenchmarkColdTrue's.
#
#   bash bench/stages.sh             # JAILS=200
#   JAILS=500 bash bench/stages.sh
#
# Runs as root on Debian. Installs linux-perf when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

JAILS=${JAILS:-200}
GO=$(command -v go || echo /usr/local/go/bin/go)
if ! command -v perf >/dev/null; then
	echo "installing: linux-perf"
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq linux-perf >/dev/null
fi
OUT=$(mktemp -d /tmp/brig-stages.XXXXXX)
trap 'rm -rf "$OUT"' EXIT

"$GO" test -c -o "$OUT/jail.test" ./jail/
events=(syscalls:sys_enter_sendmsg syscalls:sys_enter_clone3 syscalls:sys_enter_clone syscalls:sys_enter_pivot_root
	syscalls:sys_enter_setns syscalls:sys_enter_seccomp syscalls:sys_enter_execve
	sched:sched_process_exit syscalls:sys_enter_unlinkat)
(cd jail && perf record -q -a -o "$OUT/perf.data" "${events[@]/#/-e}" -- \
	"$OUT/jail.test" -test.run '^$' -test.bench 'BenchmarkColdTrue$' -test.benchtime "${JAILS}x") |
	grep Benchmark || true
perf script -i "$OUT/perf.data" -F comm,tid,time,event 2>/dev/null >"$OUT/events.txt"

python3 - "$OUT/events.txt" <<'PYEOF'
import re, statistics, sys
# One jail: the supervisor's sendmsg to its spawner, the helper's clone3 of
# init, init's clone of the network maker, two pivot_roots, the setns into
# the maker's network namespace, the exec stage's seccomp and execve, the
# program's and init's exits, then the supervisor's rmdirs of the cgroups.
jails, cur = [], None
for line in open(sys.argv[1]):
    m = re.match(r"\s*(\S+)\s+(\d+)\s+([\d.]+):\s+(\S+):", line)
    if not m:
        continue
    comm, t, ev = m.group(1), float(m.group(3)) * 1000, m.group(4).split(":")[-1]
    if ev == "sys_enter_sendmsg" and comm.endswith(".test"):
        cur = {"send": t, "rmdir": []}
        jails.append(cur)
    elif cur is None:
        continue
    elif ev == "sys_enter_clone3" and comm == "brig:helper":
        cur.setdefault("helper_clone", t)
    elif ev in ("sys_enter_clone3", "sys_enter_clone") and comm == "brig:init":
        cur.setdefault("maker", t)  # init's first clone; the exec stage's comes later
    elif ev == "sys_enter_pivot_root":
        cur.setdefault("pivot1" if "pivot1" not in cur else "pivot2", t)
    elif ev == "sys_enter_setns":
        cur.setdefault("setns", t)
    elif ev == "sys_enter_seccomp":
        cur.setdefault("seccomp", t)
    elif ev == "sys_enter_execve":
        cur.setdefault("execve", t)
    elif ev == "sched_process_exit" and comm == "true":
        cur.setdefault("program_exit", t)
    elif ev == "sched_process_exit" and comm == "brig:init" and "program_exit" in cur:
        cur.setdefault("init_exit", t)
    elif ev == "sys_enter_unlinkat" and comm.endswith(".test") and "init_exit" in cur:
        cur["rmdir"].append(t)
for j in jails:
    if j["rmdir"]:
        j["rmdir_first"], j["rmdir_last"] = j["rmdir"][0], j["rmdir"][-1]
stages = [
    ("send", "helper_clone", "Start until the helper's clone3: spawner fork, spec, bind sources cloned"),
    ("helper_clone", "maker", "clone3, ids mapped, init runs and starts the network maker"),
    ("maker", "pivot1", "init: staging tmpfs, first pivot_root"),
    ("pivot1", "pivot2", "init: the root (template clone or tmpfs, /etc, /dev, binds; /proc), read-only"),
    ("pivot2", "setns", "old root detached, hostname, network namespace joined"),
    ("setns", "seccomp", "cgroup join, cgroup namespace, exec stage, fds, rlimits, privileges"),
    ("seccomp", "execve", "seccomp: load and JIT of the filter"),
    ("execve", "program_exit", "the program: execve to exit"),
    ("program_exit", "init_exit", "init reaps it, reports, exits"),
    ("init_exit", "rmdir_first", "done report, Result, first cgroup rmdir"),
    ("rmdir_first", "rmdir_last", "the other cgroup rmdirs"),
]
print(f"p50 ms over {len(jails)} jails (each line: time since the previous mark)")
for a, b, name in stages:
    xs = [j[b] - j[a] for j in jails if a in j and b in j]
    if xs:
        print(f"{statistics.median(xs):7.2f}  {name}  (n={len(xs)})")
xs = [j["rmdir_last"] - j["send"] for j in jails if "rmdir_last" in j]
if xs:
    print(f"{statistics.median(xs):7.2f}  in all, from the request to the spawner to the last rmdir")
PYEOF
