# Signal the host's bait process by its host pid, and probe every pid up
# to 4 million with signal 0: only the jail's own pids may answer.
# Guessing stays harmless: only signal 0 goes to guessed pids, and
# SIGKILL only to the bait.
# expect: reason=exited exit=0
# expect: stdout-contains=kill bait ESRCH
# expect: stdout-contains=pidfd bait ESRCH
# expect: stdout-matches=^answering pids \[(\d{1,2}(, )?)+\]$
# expect: stdout-contains=setpgid host EPERM
# expect: stdout-contains=DONE
brig_jailed()
import signal
bait = int(os.environ["BAIT_PID"])
probe("kill bait", lambda: os.kill(bait, signal.SIGKILL))
probe("pidfd bait", lambda: os.pidfd_open(bait))
answering = []
for pid in list(range(1, 66000)) + list(range(66000, 4194304, 997)):
    try:
        os.kill(pid, 0); answering.append(pid)
    except ProcessLookupError:
        pass
    except PermissionError:
        answering.append(pid)
print("answering pids", answering)
probe("setpgid host", lambda: os.setpgid(os.getpid(), bait))
probe("kill pgrp 0 of host", lambda: os.killpg(bait, 0))
print("DONE")
