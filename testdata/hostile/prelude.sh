# Prepended to every shell payload by the runner (hostile.Load). It proves
# the code runs in a jail before anything else happens: its own PID
# namespace (a pid of at most 64) and a uid map that is not the host's
# identity map. Outside a jail it exits 99 and nothing else runs.
brig_jailed() {
	[ "$$" -le 64 ] || return 1
	! grep -qE '^ *0 +0 +4294967295 *$' /proc/self/uid_map
}
brig_jailed || { echo "NOT JAILED: refusing" >&2; exit 99; }
