# An output flood: the jail is killed at the output cap and what came
# before is kept.
# config: output-limit=1M timeout=20s
# expect: reason=output_limit stdout-truncated=true signal=9
brig_jailed()
line = b"y" * 4095 + b"\n"
while True:
    os.write(1, line)
