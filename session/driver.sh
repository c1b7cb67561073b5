# brig's shell session driver: runs commands sent by the host in this one
# shell, so the working directory, variables and functions persist.
# Requests arrive on fd 3 as two NUL-terminated strings, the nonce and the
# command; after each command the driver writes the nonce to stdout and
# stderr, then the nonce and the exit status, and `times`, on fd 4. The
# nonce goes out through copies of fds 1 and 2 of the driver's own (5, 6),
# which bash restores after each command, so a command that redirects its
# output (exec >/dev/null) still ends where it should.
exec 5>&1 6>&2 7<&3 8>&4 3<&- 4>&-
# A ^C from the host interrupts the command in the foreground, not this shell.
trap ':' INT
# $? carries over from one command to the next, as at a prompt.
__brig_status=0
__brig_return() { return "$1"; }
while IFS= read -r -d '' __brig_nonce <&7 && IFS= read -r -d '' __brig_cmd <&7; do
	__brig_return "$__brig_status"
	eval "$__brig_cmd" </dev/null 5>&- 6>&- 7<&- 8>&-
	__brig_status=$?
	printf '%s' "$__brig_nonce" >&5
	printf '%s' "$__brig_nonce" >&6
	{ printf '%s %d\n' "$__brig_nonce" "$__brig_status"; times; } >&8
done
