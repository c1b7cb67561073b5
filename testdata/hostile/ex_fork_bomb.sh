# The shell classic, bash flavour.
# interp: bash
# config: timeout=3s pids=64
# soak: no
# expect: reason=timeout|exited|signaled
brig_jailed || exit 99
b(){ b|b& };b; wait
