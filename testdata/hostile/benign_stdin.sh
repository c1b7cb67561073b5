# Benign: reads its stdin to the end.
# config: stdin=one\ntwo\n
# expect: reason=exited exit=0
# expect: stdout-contains=2 lines
brig_jailed || exit 99
echo "$(wc -l) lines"
