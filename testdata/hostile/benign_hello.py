# The benign side: a plain program runs and exits 0.
# expect: reason=exited exit=0
# expect: stdout-contains=hello from brig 42
brig_jailed()
print("hello from brig", 6 * 7)
