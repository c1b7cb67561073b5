# `brig run --bind out:/out --result out/result.json`: brig writes the
# result file after the jail ran, as its caller (root, often), in a
# directory the jail could write. A symlink the jail planted at that name
# made root write the JSON through it into any host file (here the bait's
# secret file under /root). brig must replace the name, never write
# through a link. (Only the CLI runs write a result file.)
# config: result-in-outbox
# expect: reason=exited exit=0
# expect: stdout-contains=planted
brig_jailed()
os.symlink(os.environ["BAIT_SECRET_FILE"], "/out/brig-result.json")
print("planted")
