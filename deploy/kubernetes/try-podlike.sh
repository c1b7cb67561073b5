#!/bin/sh
# Runs brig as a pod with hostUsers: false would, as near as one machine
# gets: a user namespace (its root mapped onto this root, so it has
# capabilities within the namespace only; 1-65535 onto 200001-265535), its
# own mount, PID and network namespaces, and the cgroup mounts remounted
# read-only inside that mount namespace (the host's mounts are never
# touched). With MASK=1 /proc is masked as runc masks it (procMount
# Default). docs/kubernetes.md has what it showed.
#
#   make build && sudo sh deploy/kubernetes/try-podlike.sh [MASK=1]
set -eu
BRIG=${BRIG:-$(pwd)/build/brig}
[ -x "$BRIG" ] || { echo "no $BRIG: run make build first" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "run as root (it writes the namespace's id maps)" >&2; exit 1; }
for a in "$@"; do export "$a"; done
dir=$(mktemp -d /tmp/brig-podlike-XXXXXX)
chmod 755 "$dir"
trap 'rm -rf "$dir"' EXIT
mkfifo "$dir/go"

cat > "$dir/inside.sh" <<'INSIDE'
set -u
ip link set lo up
findmnt -R -l -n -o TARGET /sys/fs/cgroup | sort -r | while read -r m; do
	mount -o remount,bind,ro,nosuid,nodev,noexec "$m" 2>/dev/null || mount -o remount,bind,ro "$m"
done
echo "cgroupfs: $(findmnt -n -o OPTIONS /sys/fs/cgroup/memory 2>/dev/null || findmnt -n -o OPTIONS /sys/fs/cgroup)"
if [ "${MASK:-0}" = 1 ]; then
	for p in /proc/keys /proc/timer_list /proc/sched_debug; do [ -e $p ] && mount --bind /dev/null $p; done
	for p in /proc/sys /proc/sysrq-trigger /proc/bus /proc/fs /proc/irq; do
		[ -e $p ] && mount --bind $p $p && mount -o remount,bind,ro $p
	done
	echo "/proc masked as runc masks it"
fi
as1000="setpriv --reuid 1000 --regid 1000 --clear-groups"
prog='import os; print("in the jail: uid", os.getuid())'
echo "--- brig run as root of the namespace:"
"$BRIG" run -- /usr/bin/python3 -c "$prog" 2>&1 | tail -2
ws="$DIR/ws"
mkdir -p "$ws" && chown 1000:1000 "$ws"
echo "--- brig run as uid 1000 of the namespace:"
$as1000 "$BRIG" run --result "$ws/result.json" -- /usr/bin/python3 -c "$prog" 2>&1 | tail -2
grep -h '"limiter"\|"reason"' "$ws/result.json" 2>/dev/null && rm -f "$ws/result.json"
echo "--- brig serve --sandboxd as root of the namespace:"
timeout 5 "$BRIG" serve --sandboxd --workspace "$ws" --grpc-listen 127.0.0.1:19090 --rest-listen 127.0.0.1:18080 2>&1 | head -2
echo "--- brig serve --sandboxd as uid 1000 of the namespace:"
$as1000 "$BRIG" serve --sandboxd --workspace "$ws" --grpc-listen 127.0.0.1:19090 --rest-listen 127.0.0.1:18080 >"$DIR/sandboxd.log" 2>&1 &
server=$!
sleep 1
/usr/bin/python3 - <<'PY'
import json, urllib.request as u
base = "http://127.0.0.1:18080/v1"
print("health:", u.urlopen(base + "/health").read().decode().strip())
u.urlopen(u.Request(base + "/files/hello.txt", data=b"hi", method="PUT"))
print("listing:", [e["name"] for e in json.loads(u.urlopen(base + "/files/.").read())["entries"]])
PY
kill -TERM $server; wait $server
echo "sandboxd log:"; cat "$DIR/sandboxd.log"
INSIDE

MASK=${MASK:-0} BRIG="$BRIG" DIR="$dir" unshare --user --mount --pid --fork --mount-proc --net \
	sh -c 'read x < "$DIR/go"; exec sh "$DIR/inside.sh"' &
outer=$!
sleep 0.5
inner=$(pgrep -P $outer | head -1)
python3 - "$inner" <<'PY'
import os, sys
for f in ("uid_map", "gid_map"):
    fd = os.open(f"/proc/{sys.argv[1]}/{f}", os.O_WRONLY)
    os.write(fd, b"0 0 1\n1 200001 65535\n")  # one write: a map is written once
    os.close(fd)
PY
echo go > "$dir/go"
wait $outer
