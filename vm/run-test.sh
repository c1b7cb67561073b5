#!/bin/bash
# vm/run-test.sh BINARY [ARGS...]: run one binary (typically `go test -c`
# output) as root inside a small qemu VM whose /sys/fs/cgroup is a pure
# cgroup v2 hierarchy, print its output and exit with its exit status.
#
# The initramfs holds busybox, the binary and the shared libraries ldd names
# (ld.so, libc, libseccomp for cgo builds). /init mounts /proc, /sys, /dev,
# /tmp and cgroup2, exports BRIG_IN_VM=1 (tests scale their time budgets),
# runs the binary, prints "BRIG_VM_EXIT=<status>" and powers off.
#
# Software emulation (TCG) only: /dev/kvm on our machines is kvm_pvm, which
# stock kernels cannot run under (see /work/shared/reference/README.md).
#
# Env: BRIG_VM_CACHE (default <repo>/build/vm), BRIG_VM_TIMEOUT (seconds,
# default 900), BRIG_VM_SMP (2), BRIG_VM_MEM (MiB, 1024), BRIG_VM_APPEND
# (extra kernel command line; key=value words the kernel does not know
# become environment variables of /init and hence of the binary),
# BRIG_VM_COPY (space-separated repo-relative paths copied to /src/<path> in
# the guest, e.g. "testdata seccomp/testdata"), BRIG_VM_CWD (directory under
# /src the binary runs in, e.g. "seccomp": `go test` runs tests in the
# package directory, so relative testdata paths then resolve; default /tmp).
# Exit status: the binary's; 124 on timeout; 99 if no status was seen;
# 2 for setup problems (missing qemu/kernel: run vm/setup.sh).
set -uo pipefail

die() { echo "vm/run-test.sh: ERROR: $*" >&2; exit 2; }

[ $# -ge 1 ] || die "usage: vm/run-test.sh BINARY [ARGS...]"
BIN=$(readlink -f "$1") || die "no such binary: $1"
shift
[ -f "$BIN" ] && [ -x "$BIN" ] || die "not an executable file: $BIN"

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${BRIG_VM_CACHE:-$ROOT/build/vm}
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 is not installed: run vm/setup.sh"
[ -x /bin/busybox ] || die "/bin/busybox is missing (Debian busybox-static): run vm/setup.sh"
command -v cpio >/dev/null || die "cpio is missing: run vm/setup.sh"
KERNEL=$(ls "$CACHE"/kernel/boot/vmlinuz-* 2>/dev/null | head -1)
[ -n "$KERNEL" ] && [ -r "$KERNEL" ] || die "no kernel in $CACHE/kernel/boot: run vm/setup.sh"

WORK=$(mktemp -d /tmp/brig-vm.XXXXXX) || die "mktemp failed"
trap 'rm -rf "$WORK"' EXIT
RD=$WORK/root
USR=${BRIG_VM_USR:-0}
# gpath PATH: where a host file lives in the guest. In the merged-/usr layout
# (BRIG_VM_USR=1) /bin, /sbin, /lib and /lib64 are symlinks into /usr, as on
# the host, so their files land under /usr.
gpath() {
  if [ "$USR" = 1 ]; then
    case $1 in /bin/*|/sbin/*|/lib/*|/lib64/*) echo "/usr$1"; return ;; esac
  fi
  echo "$1"
}
# put SRC [DST]: copy a host file (symlinks followed) into the guest.
put() {
  local d
  d=$RD$(gpath "${2:-$1}")
  mkdir -p "$(dirname "$d")" && cp -L "$1" "$d" || die "cannot copy $1 into the guest"
}
# putlibs FILE...: the shared libraries ldd names for each file, at the same paths.
putlibs() {
  local lib
  for lib in $(for f in "$@"; do ldd "$f" 2>/dev/null | grep -o '/[^ ]*'; done | sort -u); do
    [ -e "$RD$(gpath "$lib")" ] || put "$lib"
  done
}
mkdir -p "$RD"/{dev,proc,sys,tmp,etc,root,mnt}
chmod 755 "$RD"   # guest / must be traversable by the unprivileged test users
chmod 1777 "$RD/tmp"
if [ "$USR" = 1 ]; then
  # What a jail binds from the system: /usr with a shell, bash, coreutils
  # (busybox applets), python3 with its stdlib, the ld.so cache.
  mkdir -p "$RD"/usr/{bin,sbin,lib,lib64}
  for d in bin sbin lib lib64; do ln -s "usr/$d" "$RD/$d"; done
  put /bin/dash /usr/bin/dash
  ln -s dash "$RD/usr/bin/sh"
  put /bin/bash /usr/bin/bash
  # util-linux setpriv: busybox's lacks --reuid (the unprivileged jail tests).
  extra=/bin/bash
  if [ -x /usr/bin/setpriv ]; then put /usr/bin/setpriv; extra="$extra /usr/bin/setpriv"; fi
  py=$(readlink -f /usr/bin/python3) || die "no /usr/bin/python3 on the host"
  pyv=$(basename "$py")   # python3.11
  [ -d "/usr/lib/$pyv" ] || die "no /usr/lib/$pyv on the host"
  put "$py" "/usr/bin/$pyv"
  ln -s "$pyv" "$RD/usr/bin/python3"
  # The stdlib without its tests, the static libpython and the GUI/devel parts.
  tar -C /usr/lib -cf - --exclude="$pyv/test" --exclude="$pyv/idlelib" --exclude="$pyv/tkinter" \
    --exclude="$pyv/turtledemo" --exclude="$pyv/ensurepip" --exclude="$pyv/lib2to3" \
    --exclude="$pyv/pydoc_data" --exclude="$pyv/config-*" --exclude="$pyv/site-packages" \
    --exclude="$pyv/lib-dynload/_test*" --exclude="$pyv/lib-dynload/xx*" --exclude="$pyv/lib-dynload/_ctypes_test*" \
    "$pyv" | tar -C "$RD/usr/lib" -xf - || die "cannot copy /usr/lib/$pyv"
  [ -d "/etc/$pyv" ] && cp -a "/etc/$pyv" "$RD/etc/"
  putlibs /bin/dash $extra "$py" "$RD/usr/lib/$pyv"/lib-dynload/*.so
  for f in /etc/ld.so.cache /etc/ld.so.conf; do [ -e "$f" ] && cp -L "$f" "$RD$f"; done
  [ -d /etc/ld.so.conf.d ] && cp -a /etc/ld.so.conf.d "$RD/etc/"
  BB=$RD/usr/bin
else
  mkdir -p "$RD/bin"
  BB=$RD/bin
fi
cp /bin/busybox "$BB/busybox"
if [ "$USR" = 1 ]; then
  applets=$(/bin/busybox --list) || die "busybox --list failed"
else
  applets="sh mount umount cat echo ls poweroff sleep true false id wc mkdir rm ps kill env uname"
fi
for a in $applets; do
  [ -e "$BB/$a" ] || [ -L "$BB/$a" ] || ln -s busybox "$BB/$a"
done
[ -e "$BB/chroot" ] || ln -s busybox "$BB/chroot"
cp "$BIN" "$RD/testbin"
# Shared libraries of dynamically linked (cgo) binaries, at the same paths.
putlibs "$BIN"
for p in ${BRIG_VM_COPY:-}; do
  [ -e "$ROOT/$p" ] || die "BRIG_VM_COPY: no such path $ROOT/$p"
  mkdir -p "$RD/src/$(dirname "$p")"
  cp -a "$ROOT/$p" "$RD/src/$p"
done
GUEST_CWD=/tmp
if [ -n "${BRIG_VM_CWD:-}" ]; then
  GUEST_CWD=/src/$BRIG_VM_CWD
  mkdir -p "$RD$GUEST_CWD"
fi
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$RD/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$RD/etc/group"

# The guest's watchdog fires this long before the host's hard timeout.
GUEST_WATCHDOG=$(( ${BRIG_VM_TIMEOUT:-900} - 30 ))
[ "$GUEST_WATCHDOG" -ge 10 ] || GUEST_WATCHDOG=10
# Quote the arguments for the guest shell: 'x' with ' as '\''.
ARGS=""
for a in "$@"; do
  ARGS+=" '${a//\'/\'\\\'\'}'"
done
# The initramfs is rootfs, the one mount that pivot_root refuses to move
# (it has no parent): a jail built in the guest would fail its pivot_root.
# So /init bind-mounts / onto /mnt, moves that over / and chroots into it,
# as switch_root does but without copying, then runs /init2.
cat > "$RD/init" <<'INIT'
#!/bin/sh
/bin/mount -o bind / /mnt && cd /mnt && /bin/mount -o move . / && exec /bin/chroot . /init2
echo "vm: ERROR: cannot leave rootfs; running on it (pivot_root will fail)"
exec /init2
INIT
cat > "$RD/init2" <<INIT
#!/bin/sh
export PATH=/bin HOME=/root TMPDIR=/tmp BRIG_IN_VM=1
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs -o mode=1777 tmpfs /tmp
mkdir -p /dev/shm && mount -t tmpfs -o mode=1777 tmpfs /dev/shm
ip link set lo up 2>/dev/null || busybox ip link set lo up 2>/dev/null || ifconfig lo up 2>/dev/null || busybox ifconfig lo 127.0.0.1 up
mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup
echo "vm: kernel \$(uname -r), cgroup2 controllers: \$(cat /sys/fs/cgroup/cgroup.controllers), uptime \$(cut -d' ' -f1 /proc/uptime)s"
cd $GUEST_CWD
# Watchdog: before the host's timeout kills the guest blind, show what hangs
# (processes, their kernel wait channels) and make a Go binary dump its
# goroutines (SIGQUIT). It, not the binary, runs in the background: sh starts
# background commands with SIGINT and SIGQUIT ignored, and ignored signals
# would follow the binary into its jails.
( sleep $GUEST_WATCHDOG
  echo "vm: WATCHDOG: the binary still runs after ${GUEST_WATCHDOG}s; processes and wait channels:"
  for d in /proc/[0-9]*; do
    c=\$(tr '\\0' ' ' < \$d/cmdline 2>/dev/null | cut -c1-100)
    [ -n "\$c" ] && echo "  \${d#/proc/} \$(cat \$d/wchan 2>/dev/null) \$c"
  done
  kill -QUIT \$(pidof testbin); sleep 10; kill -KILL \$(pidof testbin) ) &
wd=\$!
/testbin$ARGS
rc=\$?
kill \$wd 2>/dev/null
echo "BRIG_VM_EXIT=\$rc uptime=\$(cut -d' ' -f1 /proc/uptime)s"
poweroff -f
INIT
chmod +x "$RD/init" "$RD/init2"
(cd "$RD" && find . -print0 | cpio --null -o -H newc --quiet | gzip -1) > "$WORK/initrd.gz" \
  || die "cannot build the initramfs"

LOG=$WORK/console.log
start=$(date +%s.%N)
# </dev/null: qemu must never read the caller's terminal. -no-reboot turns the
# guest's poweroff (and panic=-1) into a qemu exit.
timeout --kill-after=10 "${BRIG_VM_TIMEOUT:-900}" qemu-system-x86_64 \
  -accel tcg,thread=multi -cpu qemu64 -M q35 \
  -smp "${BRIG_VM_SMP:-2}" -m "${BRIG_VM_MEM:-1024}" \
  -kernel "$KERNEL" -initrd "$WORK/initrd.gz" \
  -append "console=ttyS0 panic=-1 quiet loglevel=3 cgroup_no_v1=all ${BRIG_VM_APPEND:-}" \
  -display none -no-reboot -nodefaults -serial stdio -monitor none \
  </dev/null 2>&1 | stdbuf -o0 tr -d '\r' | tee "$LOG"
qrc=${PIPESTATUS[0]}
end=$(date +%s.%N)
wall=$(awk -v a="$start" -v b="$end" 'BEGIN{printf "%.1f", b-a}')
if [ "$qrc" = 124 ] || [ "$qrc" = 137 ]; then
  echo "vm/run-test.sh: ERROR: TIMEOUT after ${BRIG_VM_TIMEOUT:-900}s (wall ${wall}s); guest killed" >&2
  exit 124
fi
cp "$LOG" "$CACHE/last-console.log" 2>/dev/null   # for a post-mortem of the last run
rc=$(grep -o 'BRIG_VM_EXIT=[0-9]*' "$LOG" | tail -1 | cut -d= -f2)
echo "vm/run-test.sh: qemu exit $qrc, boot to power-off ${wall}s, binary exit ${rc:-none}"
if [ -z "$rc" ]; then
  echo "vm/run-test.sh: ERROR: the binary's exit status never appeared on the console (guest crash or panic?)" >&2
  exit 99
fi
exit "$rc"
