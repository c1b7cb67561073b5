# Many short processes, and many orphans that exit at once: init must reap
# them, or their zombies would fill the pids limit and the end of the loop
# would fail to fork.
# config: pids=32 timeout=30s
# expect: reason=exited exit=0
# expect: stdout-contains=seq done 1000
# expect: stdout-contains=orphans done 300
brig_jailed || exit 99
n=0
for i in $(seq 1 1000); do /bin/true || exit 3; n=$((n+1)); done
echo "seq done $n"
n=0
for i in $(seq 1 300); do ( /bin/true & ) || exit 4; n=$((n+1)); done
echo "orphans done $n"
