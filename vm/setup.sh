#!/bin/bash
# vm/setup.sh: prepare the cgroup-v2 test VM used by vm/run-test.sh.
#
# Installs qemu-system-x86, busybox-static and cpio from Debian when they are
# missing, and fetches Debian's kernel image package with `apt-get download`,
# unpacking it with `dpkg -x` into the cache (default <repo>/build/vm,
# gitignored). The kernel is never installed on the host.
#
# Env: BRIG_VM_CACHE (cache dir), BRIG_VM_FLAVOUR (cloud|standard, default
# cloud: fewer drivers, boots faster under software emulation).
set -euo pipefail

die() { echo "vm/setup.sh: ERROR: $*" >&2; exit 1; }

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${BRIG_VM_CACHE:-$ROOT/build/vm}
FLAVOUR=${BRIG_VM_FLAVOUR:-cloud}
mkdir -p "$CACHE"

need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
[ -x /bin/busybox ] || need+=(busybox-static)
command -v cpio >/dev/null || need+=(cpio)
if [ ${#need[@]} -gt 0 ]; then
  echo "vm/setup.sh: installing ${need[*]}"
  apt-get update -qq || die "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}" >/dev/null \
    || die "cannot install ${need[*]} (qemu-system-x86 and busybox-static are required for the VM tests)"
fi
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 still missing"
[ -x /bin/busybox ] || die "/bin/busybox (busybox-static) still missing"

# linux-image-amd64 depends on the current ABI's package, e.g.
# linux-image-6.1.0-56-amd64; the cloud flavour is linux-image-6.1.0-56-cloud-amd64.
abi=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
[ -n "$abi" ] || die "cannot resolve linux-image-amd64 to a kernel package (apt-get update? a Debian apt source?)"
case "$FLAVOUR" in
  cloud) pkg=${abi%-amd64}-cloud-amd64 ;;
  standard) pkg=$abi ;;
  *) die "BRIG_VM_FLAVOUR must be cloud or standard, not $FLAVOUR" ;;
esac

KDIR=$CACHE/kernel-$pkg
if ! ls "$KDIR"/boot/vmlinuz-* >/dev/null 2>&1; then
  echo "vm/setup.sh: downloading $pkg (not installing it)"
  (cd "$CACHE" && rm -f "${pkg}"_*.deb && apt-get download "$pkg") || die "apt-get download $pkg failed"
  rm -rf "$KDIR.tmp" && mkdir -p "$KDIR.tmp"
  dpkg -x "$CACHE/${pkg}"_*.deb "$KDIR.tmp" || die "dpkg -x of $pkg failed"
  rm -rf "$KDIR" && mv "$KDIR.tmp" "$KDIR"
  rm -f "$CACHE/${pkg}"_*.deb
fi
KERNEL=$(ls "$KDIR"/boot/vmlinuz-* | head -1)
[ -r "$KERNEL" ] || die "no kernel image in $KDIR"
ln -sfn "$(basename "$KDIR")" "$CACHE/kernel"   # run-test.sh boots $CACHE/kernel/boot/vmlinuz-*

# The features the cgroup and jail tests need, straight from the kernel's config.
cfg=$(ls "$KDIR"/boot/config-* | head -1)
for opt in CGROUPS MEMCG CGROUP_PIDS CGROUP_SCHED CFS_BANDWIDTH CGROUP_FREEZER USER_NS PID_NS SECCOMP_FILTER; do
  grep -q "^CONFIG_$opt=y" "$cfg" || die "kernel $KERNEL lacks CONFIG_$opt"
done
echo "vm/setup.sh: ready: $KERNEL"
echo "vm/setup.sh: qemu: $(qemu-system-x86_64 --version | head -1)"
