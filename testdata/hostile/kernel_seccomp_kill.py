# With --seccomp-kill, a refused call (here unshare of a user namespace)
# kills the program at once with SIGSYS, and the result says so.
# config: seccomp-kill
# expect: reason=seccomp signal=31
# expect: stdout-contains=about to unshare
# expect: stdout-not-contains=survived
brig_jailed()
print("about to unshare", flush=True)
try:
    sys_call(272, 0x10000000)
except OSError as e:
    print("survived", ename(e))
print("survived")
