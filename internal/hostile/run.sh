#!/bin/sh
# Runs the hostile corpus with every limiter `make hostile` covers and
# prints one line per payload and run, then the total "N passed, M failed".
# Expects $BUILD/brig and $BUILD/brig-hostile built (make hostile does it;
# BUILD defaults to the repository's build/).
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-$PWD/build}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
status=0
for limiter in ${HOSTILE_LIMITERS:-auto rlimit}; do
	"$BUILD/brig-hostile" -limiter "$limiter" -via "${HOSTILE_VIA:-api,cli,unpriv}" -brig "$BUILD/brig" "$@" >"$out" 2>&1 || status=1
	grep -v -e ' passed, .* failed$' -e ' (XFAIL lines above' "$out"
	tail -n 1 "$out" | grep -q ' passed, .* failed$' || { cat "$out" | tail -n 5; status=1; }
	tail -n 1 "$out" >>"$out.total"
	grep '(XFAIL lines above' "$out" >>"$out.xfail"
done
xfail=$(grep -h '(XFAIL lines above' "$out.xfail" 2>/dev/null | awk '{n += $1} END {print n + 0}')
[ "$xfail" -gt 0 ] && echo "$xfail known bugs and limits (XFAIL lines above, not counted)"
awk '{p += $1; f += $3} END {printf "%d passed, %d failed\n", p, f}' "$out.total"
rm -f "$out.total" "$out.xfail"
exit $status
