# Daemons that try to outlive the jail: double-forked, in a new session,
# ignoring SIGHUP/SIGTERM, renamed; the program then exits at once. When
# the program exits, init exits and the kernel kills the rest; the runner
# checks no process is left on the host.
# expect: reason=exited exit=0
# expect: stdout-contains=started
brig_jailed || exit 99
(setsid sh -c 'trap "" HUP TERM INT; exec sleep 300' </dev/null >/dev/null 2>&1 &)
(nohup sh -c 'trap "" HUP TERM; while :; do sleep 1; done' </dev/null >/dev/null 2>&1 &)
/usr/bin/python3 -c '
import os, time, signal
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        for s in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT): signal.signal(s, signal.SIG_IGN)
        os.chdir("/")
        while True: time.sleep(1)
    os._exit(0)
' </dev/null >/dev/null 2>&1
sleep 0.2
echo started
