# An output flood on stderr from many processes at once.
# config: output-limit=1M timeout=20s
# expect: reason=output_limit signal=9
brig_jailed || exit 99
for i in 1 2 3 4; do yes "flood $i" >&2 & done
wait
