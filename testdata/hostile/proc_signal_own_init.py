# Signal the jail's own init (PID 1, brig's reaper): with every signal it
# does not forward to the program, it must neither die (taking the run
# with it and reporting a kill brig never made), nor stop, nor print its
# internals. As root the program runs under another uid than init and
# gets EPERM; unprivileged they share the caller's uid, so init itself
# must ignore what it does not use.
# expect: reason=exited exit=0
# expect: stdout-contains=DONE
# expect: stderr-not-contains=goroutine
# expect: stdout-not-contains=init stopped
brig_jailed()
import signal, time
names = ["SIGABRT", "SIGSEGV", "SIGBUS", "SIGFPE", "SIGILL", "SIGTRAP", "SIGSYS", "SIGXCPU", "SIGXFSZ",
         "SIGPROF", "SIGVTALRM", "SIGALRM", "SIGPIPE", "SIGSTOP", "SIGTSTP", "SIGTTIN", "SIGTTOU",
         "SIGURG", "SIGWINCH", "SIGCHLD", "SIGCONT", "SIGPWR", "SIGSTKFLT", "SIGKILL"]
for n in names:
    s = getattr(signal, n, None)
    if s is None:
        continue
    try:
        os.kill(1, s); print(n, "sent", flush=True)
    except OSError as e:
        print(n, ename(e), flush=True)
    time.sleep(0.05)
    st = [l for l in open("/proc/1/status").read().splitlines() if l.startswith("State:")][0]
    if "T" in st.split()[1]:
        print("init stopped after", n, flush=True)
        os.kill(1, signal.SIGCONT)
print("DONE")
