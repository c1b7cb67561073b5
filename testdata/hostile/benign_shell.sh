# Benign shell: pipes, coreutils, a file tree in the workdir.
# expect: reason=exited exit=0
# expect: stdout-contains=500500
# expect: stdout-contains=files 4
brig_jailed || exit 99
seq 1 1000 | awk '{s+=$1} END {print s}'
mkdir -p d/e && echo hi > d/e/f && echo x > d/g && tar cf t.tar d && echo "files $(tar tf t.tar | wc -l)"
