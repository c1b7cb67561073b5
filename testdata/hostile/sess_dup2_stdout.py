# issue 16: a Python cell that points fds 1 and 2 elsewhere (os.dup2, as
# daemonizing code or a careless library does) used to hang Run for good:
# the cell's end marker went to /dev/null with its output. The driver now
# writes the marker through copies of its own.
# session: python
# config: cell-timeout=5s
# expect: cell=ok
# expect: stdout-not-contains=hidden
brig_jailed()
null = os.open("/dev/null", os.O_WRONLY)
os.dup2(null, 1)
os.dup2(null, 2)
print("hidden", flush=True)
