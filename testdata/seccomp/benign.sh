# Ordinary shell that must work under brig's default seccomp policy. Run by
# seccomp/seccomp_test.go as /bin/bash -c "$(cat benign.sh)" under the filter.
set -euo pipefail
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

seq 1 200 | awk '{ s += $1 } END { print s }' > sum.txt
[ "$(cat sum.txt)" = 20100 ] || { echo "awk sum: $(cat sum.txt)"; exit 1; }

printf 'pear\napple\nfig\napple\n' | sort | uniq -c | sort -rn | head -1 | sed 's/^ *//' > top.txt
[ "$(cat top.txt)" = "2 apple" ] || { echo "sort/uniq: $(cat top.txt)"; exit 1; }

mkdir -p tree/a/b tree/c
echo one > tree/a/b/one.txt
echo two > tree/c/two.txt
[ "$(find tree -name '*.txt' | sort | tr '\n' ' ')" = "tree/a/b/one.txt tree/c/two.txt " ] || { echo find; exit 1; }

tar -czf tree.tgz tree
mkdir out && tar -xzf tree.tgz -C out
cmp tree/a/b/one.txt out/tree/a/b/one.txt

# subshells, command substitution, background jobs, here-docs, process substitution
n=$( (echo a; echo b) | wc -l )
[ "$n" -eq 2 ]
sleep 0.01 & wait $!
diff <(printf 'x\n') - <<'DOC'
x
DOC
cut -d: -f1 /etc/passwd | grep -c . > /dev/null
date +%s > /dev/null
stat -c %s sum.txt > /dev/null
ls -la > /dev/null
cp sum.txt copy.txt && mv copy.txt moved.txt && ln -s moved.txt link && readlink link > /dev/null
chmod 600 moved.txt && touch -d @0 moved.txt
xargs -n1 echo < top.txt > /dev/null
id > /dev/null
echo "all ok"
