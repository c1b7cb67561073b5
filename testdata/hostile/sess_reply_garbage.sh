# issue 16: `echo x >&12` in a shell session: a line of garbage on the
# driver's reply channel (bash keeps copies of the driver's fds above 9
# while a command runs, so the command can reach them). The supervisor
# used to fail to parse it and then wait for the jail's exit forever; now
# the session ends at once with the reason.
# session: shell
# config: cell-timeout=5s
# expect: cell=dead
# expect: cell-reason-contains=bad reply from the session driver
brig_jailed || exit 99
out1=$(readlink /proc/$$/fd/1) out2=$(readlink /proc/$$/fd/2)
for fd in $(ls /proc/$$/fd); do
	link=$(readlink /proc/$$/fd/$fd) || continue
	case $link in pipe:*) ;; *) continue ;; esac
	[ "$link" = "$out1" ] || [ "$link" = "$out2" ] && continue
	grep -q '^flags:.*[0-7]1$' /proc/$$/fdinfo/$fd 2>/dev/null || continue
	echo "garbage to fd $fd"
	echo x >&$fd
done
