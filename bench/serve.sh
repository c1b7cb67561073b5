#!/bin/bash
# bench/serve.sh: issue 19's measurements of brig serve, from one run of the
# benchmarks in serve/bench_test.go and jail's BenchmarkWarmTrue, printed as
# the issue's ratios (HTTP against the library, same machine, same run).
# Run it on a quiet machine: the numbers of a loaded one say little.
#
#   bash bench/serve.sh
#
# Env: N (iterations of each latency and throughput benchmark, 200),
# SANDBOXES (idle sandboxes with a Python context each, 200), OUT (keep the
# raw benchmark output there).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
GO=${GO:-go}
N=${N:-200}
SANDBOXES=${SANDBOXES:-200}
OUT=${OUT:-$(mktemp -d /tmp/brig-bench-serve.XXXXXX)}
mkdir -p "$OUT"
cd "$ROOT"
"$GO" test -c -o "$OUT/serve.test" ./serve/
"$GO" test -c -o "$OUT/jail.test" ./jail/
# The test binaries find their testdata relative to their package.
(cd serve && "$OUT/serve.test" -test.run '^$' -test.benchtime "${N}x" -test.bench \
	'^(BenchmarkHTTPExecutePrint1|BenchmarkLibraryExecutePrint1|BenchmarkHTTPSandboxLifecycle|BenchmarkHTTPRunTrue|BenchmarkPoolRunTrue|BenchmarkHTTPRunParallel16|BenchmarkPoolRunPython16)$') | tee "$OUT/serve.txt"
(cd serve && "$OUT/serve.test" -test.run '^$' -test.benchtime "${SANDBOXES}x" -test.bench '^BenchmarkIdleSandboxMemory$') | tee "$OUT/idle.txt"
(cd jail && "$OUT/jail.test" -test.run '^$' -test.benchtime "${N}x" -test.bench '^BenchmarkWarmTrue$') | tee "$OUT/jail.txt"

# metric FILE BENCH UNIT: the value before UNIT on BENCH's line.
metric() {
	awk -v b="$2" -v u="$3" '$1 ~ "^"b"(-[0-9]+)?$" { for (i = 2; i < NF; i++) if ($(i+1) == u) { print $i; exit } }' "$1"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b == 0) print "n/a"; else printf "%.2fx", a / b }'; }

http_print=$(metric "$OUT/serve.txt" BenchmarkHTTPExecutePrint1 p50-ms)
lib_print=$(metric "$OUT/serve.txt" BenchmarkLibraryExecutePrint1 p50-ms)
lifecycle=$(metric "$OUT/serve.txt" BenchmarkHTTPSandboxLifecycle p50-ms)
http_true=$(metric "$OUT/serve.txt" BenchmarkHTTPRunTrue p50-ms)
pool_true=$(metric "$OUT/serve.txt" BenchmarkPoolRunTrue p50-ms)
warm_true=$(metric "$OUT/jail.txt" BenchmarkWarmTrue p50-ms)
http_par=$(metric "$OUT/serve.txt" BenchmarkHTTPRunParallel16 ns/op)
pool_par=$(metric "$OUT/serve.txt" BenchmarkPoolRunPython16 ns/op)
heap=$(metric "$OUT/idle.txt" BenchmarkIdleSandboxMemory heap-bytes/sandbox)
rss=$(metric "$OUT/idle.txt" BenchmarkIdleSandboxMemory rss-bytes/sandbox)

echo
echo "brig serve, $(date -u +%Y-%m-%d) on $(nproc) CPUs, commit $(git rev-parse --short=12 HEAD), N=$N, raw output in $OUT"
printf '%-86s %s\n' \
	"print(1) in a live context, HTTP vs library Run (p50 ms; issue: <=1.5 ms, <=3x)" "$http_print vs $lib_print: $(ratio "$http_print" "$lib_print")" \
	"sandbox + context + print(1) + delete over HTTP (p50 ms; issue: <=5 ms)" "$lifecycle" \
	"one-shot /bin/true over HTTP vs BenchmarkWarmTrue (p50 ms; issue: <=1.5x)" "$http_true vs $warm_true: $(ratio "$http_true" "$warm_true")" \
	"  the same vs an in-process pool of the same template (p50 ms)" "$http_true vs $pool_true: $(ratio "$http_true" "$pool_true")" \
	"16 clients of print(1) runs, throughput vs in-process pool x16 (issue: >=0.8x)" "$(ratio "$pool_par" "$http_par") (ns/run $http_par vs $pool_par)" \
	"server memory per idle sandbox with a Python context, $SANDBOXES of them (issue: <=1 MiB)" "heap $(awk -v h="$heap" 'BEGIN { printf "%.0f KiB", h / 1024 }'), RSS $(awk -v r="$rss" 'BEGIN { printf "%.0f KiB", r / 1024 }')"
