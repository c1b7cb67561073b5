#!/bin/bash
# vm/run-tests.sh: the cgroup-v2 VM part of `make test`. Builds the test
# binaries of cgroup (CGO_ENABLED=0: static, nothing to pack) and jail (cgo:
# libseccomp and libc packed by run-test.sh) and runs each in its own VM
# (vm/run-test.sh) on a pure cgroup2 kernel under software emulation. Every
# suite must pass; a missing qemu or kernel is a failure (run-test.sh exits 2
# and says why), never a skip.
#
# The jail suite runs in a merged-/usr guest (BRIG_VM_USR=1: dash, bash,
# busybox coreutils, python3 and its stdlib) with BRIG_EXPECT_CGROUP2=1, so
# TestPureCgroup2 fails unless the jails really use cgroup v2, and with
# BRIG_TIME_SCALE for time bounds written for native speed.
#
# Env: GO (go binary), BRIG_VM_JAIL_TESTS (the -test.run regex for jail),
# BRIG_TIME_SCALE (default 4), and everything vm/run-test.sh reads.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 2
GO=${GO:-go}
CACHE=${BRIG_VM_CACHE:-$ROOT/build/vm}
mkdir -p "$CACHE" || exit 2
SCALE=${BRIG_TIME_SCALE:-4}
# Each VM gets 4 minutes; the guest's own -test.timeout (2m, 3m) fires first
# and prints every goroutine.
export BRIG_VM_TIMEOUT=${BRIG_VM_TIMEOUT:-240}
# Chosen to fit TCG (about 35 s of guest time): every jail test of the
# isolation, limit, supervisor and unprivileged files plus TestPureCgroup2
# (limits run on rlimit and cgroup2, from both sides), signal forwarding,
# the hardening whose outcome depends on the kernel or the limiter (planted
# bind symlinks, the piped core helper, what a limit did to a child), and
# (SESSION_TESTS, package session) the session tests whose outcome depends
# on the limiter (the memory bomb that kills a session) or on the file
# path. Not the hostile, soak and fault suites: long or fork/exec-heavy by
# design.
JAIL_TESTS=${BRIG_VM_JAIL_TESTS:-'^(TestPureCgroup2|TestIdentityAndPrivileges|TestPIDNamespaceSeesOnlyItself|TestHostFilesInvisible|TestFilesystemWritability|TestNetworkOnlyLoopback|TestEnvironmentIsClean|TestBenignWorkloads|TestExitCodeAndSignal|TestTimeoutKillsTree|TestContextCancelKillsJail|TestDaemonDiesWithJail|TestOutputLimit|TestCombinedOutputAndStdin|TestSetupErrorsNameTheStep|TestBinds|TestKillMinusOneStaysInJail|TestExtraFilesReachTheProgram|TestMemoryBomb|TestForkBombs|TestCPUSpinIsThrottled|TestCPUTimeBudget|TestRequireCgroups|TestResultNamesLimiter|TestSupervisorDeathKillsJail|TestUnprivileged|TestSignalReachesProgramGroup|TestRootTemplateMatchesOwnRoot|TestRootMatchesDescription|TestBindPlantedSymlinkRefused|TestBindThroughRootSymlink|TestCrashRunsNoHostCoreHelper|TestOOMOfAChildIsCountedNotTheReason|TestPidsLimitHitsCounted|TestSetupErrorsNameTheCause)$'}
SESSION_TESTS=${BRIG_VM_SESSION_TESTS:-'^(TestPythonSessionState|TestShellSession|TestSessionFiles|TestPythonSessionMemoryBombKillsSession|TestSessionDeadCellKeepsOutput)$'}

fail() {
  echo "" >&2
  echo "########################################################################" >&2
  echo "vm-test: FAILED: $*" >&2
  echo "########################################################################" >&2
  exit 1
}
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}'; }

t0=$(now)
CGO_ENABLED=0 "$GO" test -c -o "$CACHE/cgroup.test" ./cgroup/ || fail "cannot build the cgroup test binary"
"$GO" test -c -o "$CACHE/jail.test" ./jail/ || fail "cannot build the jail test binary"
"$GO" test -c -o "$CACHE/session.test" ./session/ || fail "cannot build the session test binary"
echo "vm-test: built the test binaries in $(since "$t0")s"

t=$(now)
echo "vm-test: cgroup suite in the cgroup-v2 VM"
# The cgroup suite's waits were written with a tenfold margin for the VM
# (CPU-throttled spinners under emulation): it keeps that, or more.
CG_SCALE=$(awk -v s="$SCALE" 'BEGIN{print (s > 10 ? s : 10)}')
BRIG_VM_APPEND="BRIG_EXPECT_CGROUP2=1 BRIG_TIME_SCALE=$CG_SCALE ${BRIG_VM_APPEND:-}" \
  bash vm/run-test.sh "$CACHE/cgroup.test" -test.v -test.count=1 -test.timeout=2m
rc=$?
[ "$rc" = 0 ] || fail "cgroup suite in the cgroup-v2 VM: exit $rc (2: qemu/kernel missing, 99: guest crash, 124: timeout)"
cg=$(since "$t")

t=$(now)
echo "vm-test: jail suite ($JAIL_TESTS) in the cgroup-v2 VM"
BRIG_VM_USR=1 BRIG_VM_APPEND="BRIG_EXPECT_CGROUP2=1 BRIG_TIME_SCALE=$SCALE ${BRIG_VM_APPEND:-}" \
  BRIG_VM_COPY="testdata" BRIG_VM_CWD=jail \
  bash vm/run-test.sh "$CACHE/jail.test" -test.v -test.count=1 -test.timeout=3m -test.run "$JAIL_TESTS"
rc=$?
[ "$rc" = 0 ] || fail "jail suite in the cgroup-v2 VM: exit $rc (2: qemu/kernel missing, 99: guest crash, 124: timeout)"
jl=$(since "$t")

t=$(now)
echo "vm-test: session suite ($SESSION_TESTS) in the cgroup-v2 VM"
BRIG_VM_USR=1 BRIG_VM_APPEND="BRIG_EXPECT_CGROUP2=1 BRIG_TIME_SCALE=$SCALE ${BRIG_VM_APPEND:-}" \
  BRIG_VM_CWD=session \
  bash vm/run-test.sh "$CACHE/session.test" -test.v -test.count=1 -test.timeout=3m -test.run "$SESSION_TESTS"
rc=$?
[ "$rc" = 0 ] || fail "session suite in the cgroup-v2 VM: exit $rc (2: qemu/kernel missing, 99: guest crash, 124: timeout)"
ss=$(since "$t")

# The hostile payloads whose verdict depends on the limiter, through the Go
# API (-short: the guest has no Go toolchain to build the CLI), on cgroup2.
HOSTILE=${BRIG_VM_HOSTILE:-'^(ex_memory_bomb|ex_memory_bomb_children|ex_fork_bomb|ex_fork_bomb_fast|ex_socket_buffers|ex_cpu_budget|ex_daemons_outlive|ex_disk_fill|fs_cgroup_release_agent|kernel_nested_userns|id_capabilities|benign_hello)$'}
t=$(now)
echo "vm-test: hostile payloads ($HOSTILE) in the cgroup-v2 VM"
BRIG_VM_USR=1 BRIG_VM_APPEND="BRIG_EXPECT_CGROUP2=1 BRIG_TIME_SCALE=$SCALE BRIG_HOSTILE_RUN=$HOSTILE ${BRIG_VM_APPEND:-}" \
  BRIG_VM_COPY="testdata" BRIG_VM_CWD=jail \
  bash vm/run-test.sh "$CACHE/jail.test" -test.v -test.count=1 -test.short -test.timeout=3m -test.run '^TestHostileCorpus$'
rc=$?
[ "$rc" = 0 ] || fail "hostile payloads in the cgroup-v2 VM: exit $rc (2: qemu/kernel missing, 99: guest crash, 124: timeout)"
hs=$(since "$t")
echo "vm-test: PASS: cgroup suite ${cg}s, jail suite ${jl}s, session suite ${ss}s, hostile payloads ${hs}s, total $(since "$t0")s (each includes building the initramfs and booting)"
