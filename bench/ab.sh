#!/bin/bash
# bench/ab.sh: the in-process jail benchmarks of two commits, alternated in
# rounds on one machine, and the median of the per-round ratios (new/old
# time). Rounds alternate because this VM's speed drifts within minutes;
# a ratio is only taken between runs of the same round. Each run gives two
# times: its median (the benchmark's p50-ms, when both sides report one)
# and Go's mean (ns/op), which one slow outlier moves; both are summed up.
#
#   bash bench/ab.sh OLD [NEW]        NEW defaults to the work tree
#
# Env: ROUNDS (5), N (benchtime iterations, 200), BENCHES (the regexp's
# names, default ColdTrue ColdTrueParallel8 WarmTrue WarmPython).
# BenchmarkWarmPython lives in ./session/ since the package split and in
# ./jail/ before it: the script finds it in either.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
GO=${GO:-go}
OLD=${1:?usage: bench/ab.sh OLD [NEW]}
NEW=${2:-}
ROUNDS=${ROUNDS:-5}
N=${N:-200}
BENCHES=${BENCHES:-ColdTrue ColdTrueParallel8 WarmTrue WarmPython}
OUT=$(mktemp -d /tmp/brig-ab.XXXXXX)
trap 'for t in "$OUT"/tree-*; do [ -d "$t" ] && git -C "$ROOT" worktree remove --force "$t"; done; rm -rf "$OUT"' EXIT

# build SIDE REV: the test binaries of jail and session (when it exists) of
# REV (a work tree when REV is empty) into $OUT/SIDE-{jail,session}.test.
build() {
	local side=$1 rev=$2 tree=$ROOT
	if [ -n "$rev" ]; then
		tree=$OUT/tree-$side
		git -C "$ROOT" worktree add -q --detach "$tree" "$rev"
	fi
	(cd "$tree" && "$GO" test -c -o "$OUT/$side-jail.test" ./jail/)
	if [ -d "$tree/session" ]; then
		(cd "$tree" && "$GO" test -c -o "$OUT/$side-session.test" ./session/)
	fi
	echo "$tree" >"$OUT/$side.tree"
}
build old "$OLD"
build new "$NEW"

# run SIDE BENCH: "P50_NS MEAN_NS" of one benchmark, from the package that
# has it; P50_NS is - when the benchmark reports no p50-ms.
run() {
	local side=$1 bench=$2 tree pkg bin
	tree=$(cat "$OUT/$side.tree")
	for pkg in jail session; do
		bin=$OUT/$side-$pkg.test
		[ -x "$bin" ] || continue
		(cd "$tree/$pkg" && "$bin" -test.list "^Benchmark$bench\$" 2>/dev/null | grep -qx "Benchmark$bench") || continue
		(cd "$tree/$pkg" && "$bin" -test.run '^$' -test.bench "^Benchmark$bench\$" -test.benchtime "${N}x" 2>/dev/null) |
			awk -v b="Benchmark$bench" '$1 ~ "^"b"(-[0-9]+)?$" {
				p = "-"
				for (i = 4; i < NF; i++) if ($(i + 1) == "p50-ms") p = sprintf("%.0f", $i * 1e6)
				print p, $3; exit
			}'
		return
	done
	echo "bench/ab.sh: Benchmark$bench in neither package of $side" >&2
	exit 2
}

for bench in $BENCHES; do
	: >"$OUT/$bench.rounds"
done
for round in $(seq "$ROUNDS"); do
	for bench in $BENCHES; do
		# Alternate which side goes first, so neither always runs on a
		# machine the other has just warmed.
		if [ $((round % 2)) = 1 ]; then
			o=$(run old "$bench"); n=$(run new "$bench")
		else
			n=$(run new "$bench"); o=$(run old "$bench")
		fi
		echo "$o $n" >>"$OUT/$bench.rounds"
		echo "$round $bench $o $n" | awk '{
			p = ($3 == "-" || $5 == "-") ? "   -" : sprintf("%.2f", $5 / $3)
			printf "round %d %-22s p50 old %10s new %10s  %s   mean old %10.0f new %10.0f ns  %.2f\n", $1, $2, $3, $5, p, $4, $6, $6 / $4
		}'
	done
done
echo
printf '%-22s %-5s %12s %12s  %s\n' benchmark time "old (median)" "new (median)" "ratio: median of rounds [rounds]"
for bench in $BENCHES; do
	awk -v b="$bench" '
		function median(a, k,   i, j, t, c) {
			for (i = 1; i <= k; i++) c[i] = a[i]
			for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (c[j] < c[i]) { t = c[i]; c[i] = c[j]; c[j] = t }
			return k % 2 ? c[(k + 1) / 2] : (c[k / 2] + c[k / 2 + 1]) / 2
		}
		# kind 1: the p50s (fields 1 and 3); kind 2: the means (2 and 4).
		{
			for (k = 1; k <= 2; k++) {
				ov = $k; nv = $(k + 2)
				if (ov == "-" || nv == "-") { skip[k] = 1; continue }
				o[k, NR] = ov; n[k, NR] = nv; r[k, NR] = nv / ov; rs[k] = rs[k] sprintf(" %.2f", nv / ov)
			}
		}
		END {
			name[1] = "p50"; name[2] = "mean"
			for (k = 1; k <= 2; k++) {
				if (skip[k]) continue
				for (i = 1; i <= NR; i++) { a[i] = o[k, i]; c[i] = n[k, i]; d[i] = r[k, i] }
				printf "%-22s %-5s %9.2f ms %9.2f ms  %.2f [%s ]\n", b, name[k], median(a, NR) / 1e6, median(c, NR) / 1e6, median(d, NR), rs[k]
			}
		}
	' "$OUT/$bench.rounds"
done
