# Many short processes, and many orphans that exit at once: init must reap
# them, or their zombies would fill the pids limit and the end of the loop
# would fail to fork for good. (A fork may fail for a moment while init,
# short of CPU on a loaded host, has not reaped yet: it is retried.)
# config: pids=32 timeout=30s
# expect: reason=exited exit=0
# expect: stdout-contains=seq done 1000
# expect: stdout-contains=orphans done 300
brig_jailed || exit 99
n=0
for i in $(seq 1 1000); do /bin/true || exit 3; n=$((n+1)); done
echo "seq done $n"
n=0
spawn() {
	for try in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
		( /bin/true & ) 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}
for i in $(seq 1 300); do spawn || exit 4; n=$((n+1)); done
echo "orphans done $n"
