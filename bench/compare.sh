#!/usr/bin/env bash
# Compare brig's cold jail with bubblewrap (and nsjail when Debian has it)
# and with the bare commands, in one hyperfine run, then jails per second
# at 1, 2 and 8 in parallel, then the library in process (cold, pooled, 8
# at a time; go test -bench, ROUNDS rounds). Prints medians and ratios.
#
#   bash bench/compare.sh            # RUNS=200 JOBS=200 by default
#   RUNS=500 JOBS=400 ROUNDS=9 bash bench/compare.sh
#   OUT=results bash bench/compare.sh   # keep the hyperfine JSON and throughput files
#
# Runs as root on Debian. Installs bubblewrap and hyperfine when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-200}
JOBS=${JOBS:-200}
ROUNDS=${ROUNDS:-5}
PY=/usr/bin/python3
GO=$(command -v go || echo /usr/local/go/bin/go)
# Raw results stay only where the caller asks for them (OUT=dir); otherwise
# the scratch directory, brig binary included, is removed at the end.
if [ -z "${OUT:-}" ]; then
	OUT=$(mktemp -d /tmp/brig-bench.XXXXXX)
	trap 'rm -rf "$OUT"' EXIT
	KEEP=""
else
	mkdir -p "$OUT"
	KEEP=1
fi

missing=""
command -v bwrap >/dev/null || missing="$missing bubblewrap"
command -v hyperfine >/dev/null || missing="$missing hyperfine"
if [ -n "$missing" ]; then
	echo "installing:$missing"
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
fi
NSJAIL=""
if command -v nsjail >/dev/null; then
	NSJAIL=$(command -v nsjail)
elif apt-cache policy nsjail 2>/dev/null | grep -q 'Candidate: [0-9]'; then
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nsjail >/dev/null && NSJAIL=$(command -v nsjail)
else
	echo "nsjail: Debian has no package on this host (apt-cache policy nsjail); skipped"
fi

# Static, as the Makefile's build (CLI_FLAGS).
"$GO" build -tags osusergo,netgo,grpcnotrace -ldflags=-extldflags=-static -o "$OUT/brig" ./cmd/brig
BRIG="$OUT/brig run --quiet --"
BWRAP="bwrap --unshare-all --ro-bind /usr /usr --symlink usr/bin /bin --symlink usr/lib /lib --symlink usr/lib64 /lib64 --proc /proc --dev /dev --tmpfs /tmp --"
NSJ="$NSJAIL -Mo -q --disable_proc -R /usr -R /lib -R /lib64 -R /bin --"

echo "== $(date -u +%Y-%m-%dT%H:%MZ) $(uname -r), $(nproc) CPUs, $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== brig limiters: $("$OUT/brig" check 2>/dev/null | grep -E '^  cgroup[12]: |^  rlimit' | tr -s ' ' | tr '\n' ' ' | cut -c1-100)"

cmds=("$BRIG /bin/true" "$BWRAP /bin/true" "/bin/true")
pycmds=("$BRIG $PY -c 'print(1)'" "$BWRAP $PY -c 'print(1)'" "$PY -c 'print(1)'")
if [ -n "$NSJAIL" ]; then
	cmds+=("$NSJ /bin/true")
	pycmds+=("$NSJ $PY -c 'print(1)'")
fi
hyperfine -N -w 20 -r "$RUNS" --style basic --export-json "$OUT/true.json" "${cmds[@]}" >/dev/null
hyperfine -N -w 10 -r "$((RUNS / 2))" --style basic --export-json "$OUT/python.json" "${pycmds[@]}" >/dev/null

# Throughput: JOBS jails, P at a time.
throughput() { # name P command...
	local name=$1 p=$2
	shift 2
	local t0 t1
	t0=$(date +%s%N)
	seq "$JOBS" | xargs -P "$p" -I{} "$@" >/dev/null
	t1=$(date +%s%N)
	echo "$name $p $(((t1 - t0) / 1000))"
}
: >"$OUT/throughput.txt"
for p in 1 2 8; do
	# shellcheck disable=SC2086
	throughput brig "$p" $BRIG /bin/true >>"$OUT/throughput.txt"
	# shellcheck disable=SC2086
	throughput bwrap "$p" $BWRAP /bin/true >>"$OUT/throughput.txt"
done

# The library in process (an embedding supervisor): cold and pooled jails,
# and 8 cold jails at a time, between the CLI runs above and the ratios below.
# ROUNDS runs of the test binary, each JOBS per benchmark: a ratio is taken
# within a round (its benchmarks ran seconds apart) and the median over
# rounds is reported, since this kind of VM's speed drifts by 30% within
# minutes.
"$GO" test -c -o "$OUT/jail.test" ./jail/
: >"$OUT/gobench.txt"
for r in $(seq "$ROUNDS"); do
	echo "round $r" >>"$OUT/gobench.txt"
	(cd jail && "$OUT/jail.test" -test.run '^$' \
		-test.bench 'BenchmarkBareTrue$|BenchmarkBwrapTrue$|BenchmarkColdTrue$|BenchmarkBwrapTrueParallel8$|BenchmarkColdTrueParallel8$|BenchmarkWarmTrue$' \
		-test.benchtime "${JOBS}x") >>"$OUT/gobench.txt"
done

"$PY" - "$OUT" "$JOBS" <<'PYEOF'
import json, sys
out, jobs = sys.argv[1], int(sys.argv[2])
def load(name):
    rs = json.load(open(f"{out}/{name}.json"))["results"]
    return [(r["command"], r["median"] * 1000, r["mean"] * 1000, r["stddev"] * 1000) for r in rs]
def short(c):
    return "brig run" if "brig run" in c else "bwrap --unshare-all" if c.startswith("bwrap") else "nsjail" if "nsjail" in c else "bare"
for name in ("true", "python"):
    rs = load(name)
    print(f"\n{name}: median ms (mean ± sd)")
    for c, med, mean, sd in rs:
        print(f"  {short(c):22} {med:7.2f}  ({mean:.2f} ± {sd:.2f})")
    med = {short(c): m for c, m, _, _ in rs}
    print(f"  brig / bwrap = {med['brig run'] / med['bwrap --unshare-all']:.2f}x   (target <= 0.8x, goal 0.6x)")
    if "nsjail" in med:
        print(f"  brig / nsjail = {med['brig run'] / med['nsjail']:.2f}x")
    print(f"  brig / bare  = {med['brig run'] / med['bare']:.1f}x")
tp = {}
for line in open(f"{out}/throughput.txt"):
    n, p, us = line.split()
    tp[(n, int(p))] = jobs / (int(us) / 1e6)
print("\njails per second (%d jobs)" % jobs)
for p in (1, 2, 8):
    b, w = tp[("brig", p)], tp[("bwrap", p)]
    print(f"  P={p}: brig {b:6.1f}/s  bwrap {w:6.1f}/s  brig/bwrap = {b / w:.2f}x" + ("   (target >= 1.25x)" if p == 8 else ""))
rounds = []
for line in open(f"{out}/gobench.txt"):
    f = line.split()
    if f and f[0] == "round":
        rounds.append({})
    elif f and f[0].startswith("Benchmark"):
        name = f[0].split("-")[0]
        rounds[-1][name] = {f[i + 1]: float(f[i]) for i in range(2, len(f) - 1, 2)}
def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2
def over_rounds(fn):
    xs = [fn(r) for r in rounds]
    return median(xs), min(xs), max(xs)
def p50(name):
    return lambda r: r[name]["p50-ms"]
bw = {short(c): m for c, m, _, _ in load("true")}["bwrap --unshare-all"]
print("\nin process (go test -bench ./jail; %d rounds of %d, p50 per round, median of rounds [min-max])" % (len(rounds), jobs))
bare, cold, warm = (over_rounds(p50(n)) for n in ("BenchmarkBareTrue", "BenchmarkColdTrue", "BenchmarkWarmTrue"))
print(f"  bare /bin/true {bare[0]:.2f} ms [{bare[1]:.2f}-{bare[2]:.2f}], cold jail {cold[0]:.2f} ms [{cold[1]:.2f}-{cold[2]:.2f}], warm pool {warm[0]:.2f} ms [{warm[1]:.2f}-{warm[2]:.2f}]")
print(f"  cold jail / bwrap = {cold[0] / bw:.2f}x   (bwrap from the hyperfine run above)")
inround = over_rounds(lambda r: r["BenchmarkColdTrue"]["p50-ms"] / r["BenchmarkBwrapTrue"]["p50-ms"])
bwg = over_rounds(p50("BenchmarkBwrapTrue"))
print(f"  cold jail / bwrap = {inround[0]:.2f}x [{inround[1]:.2f}-{inround[2]:.2f}] (bwrap through os/exec in each round: {bwg[0]:.2f} ms [{bwg[1]:.2f}-{bwg[2]:.2f}])   (target <= 0.8x)")
ratio = over_rounds(lambda r: r["BenchmarkWarmTrue"]["p50-ms"] / r["BenchmarkBareTrue"]["p50-ms"])
print(f"  warm pool / bare  = {ratio[0]:.2f}x [{ratio[1]:.2f}-{ratio[2]:.2f}] (within each round)   (target <= 2x)")
par = over_rounds(lambda r: r["BenchmarkColdTrueParallel8"]["jails/s"])
print(f"  8 at a time: {par[0]:.1f} jails/s [{par[1]:.0f}-{par[2]:.0f}], / bwrap P=8 = {par[0] / tp[('bwrap', 8)]:.2f}x (xargs above)")
tpr = over_rounds(lambda r: r["BenchmarkColdTrueParallel8"]["jails/s"] / r["BenchmarkBwrapTrueParallel8"]["jails/s"])
print(f"  8 at a time / bwrap 8 at a time through os/exec in each round = {tpr[0]:.2f}x [{tpr[1]:.2f}-{tpr[2]:.2f}]   (target >= 1.25x)")
PYEOF
[ -n "$KEEP" ] && echo "raw results in $OUT"
true
