# issue 16: ordinary shell code that redirects the shell's own output
# (`exec >/dev/null 2>log`) used to hang Run for good: the cell's end
# marker went to /dev/null, and Run waited for it whatever the cell
# timeout said. The driver now writes the marker through copies of its own
# and the end of a cell comes from the reply channel.
# session: shell
# config: cell-timeout=5s
# expect: cell=ok
# expect: stdout-not-contains=hidden
# expect: stderr-not-contains=hidden
brig_jailed || exit 99
exec >/dev/null 2>/tmp/log
echo hidden
echo hidden >&2
