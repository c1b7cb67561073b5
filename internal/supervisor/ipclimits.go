package supervisor

import (
	"fmt"
	"os"
	"slices"
	"strings"
)

// The jail's SysV IPC namespace is its own, and so are its limits
// (kernel.msgmni, msgmnb, msgmax, sem, shmmax, shmall, shmmni): init sets
// them, as the namespace's root, before anything of the caller's runs
// (init.c's limit_ipc). The kernel's defaults let one namespace pin
// gigabytes of unreclaimable kernel memory in message queues, semaphore
// arrays and detached shared memory. A memory cgroup charges that memory to
// the jail; the rlimit fallback sees none of it, so the limits are sized
// from the memory limit and set under every limiter: under a cgroup they
// only refuse a little earlier what would be OOM-killed anyway.
//
// Budgets, of the memory limit M:
//   - message queues: M/4. A queue holds at most msgmnb bytes of text and,
//     because each message counts one byte against the queue's size even
//     when empty, at most msgmnb messages, each with a kernel header; so
//     a queue pins at most msgmnb × (1 + msgHeader) bytes.
//   - semaphores: M/4096 semaphores in at most one set per MiB. Each
//     semaphore is a cache line in its set, and each process that uses
//     SEM_UNDO holds two bytes per semaphore of the sets it touched: the
//     total stays small next to M even with every pid doing so.
//   - shared memory: M/2 in segments, at most one per MiB. An attached
//     segment also counts in the address space of whoever maps it; a
//     detached one is counted only here.
const (
	msgQueueBytes = 16384 // kernel.msgmnb: the kernel's default
	msgMaxBytes   = 8192  // kernel.msgmax: the kernel's default
	msgHeader     = 64    // struct msg_msg's slab object
	semMaxPerSet  = 32000 // the kernel's default semmsl
	semOpsPerCall = 500   // the kernel's default semopm
	ipcMaxIDs     = 32000 // the kernel's ceiling for msgmni and semmni (IPCMNI)
	shmMaxIDs     = 4096  // the kernel's default shmmni
)

// freshIPCDefaults are the values every new IPC namespace starts with
// (ipc/msg.c, sem.c and shm.c's *_init_ns: compile-time constants, not the
// host's settings), as ipcSysctls spells them. The jail's IPC namespace is
// always new (helper.c, ipc.c), so a limit equal to one of these is in
// effect without init writing it; ipcSysctlWrites drops it, and the
// open, write and close it would cost every jail.
var freshIPCDefaults = map[string]string{
	"kernel/msgmax": "8192",
	"kernel/msgmnb": "16384",
	"kernel/msgmni": "32000",
	"kernel/sem":    "32000 1024000000 500 32000",
	"kernel/shmmni": "4096",
}

// ipcSysctlWrites are the ipcSysctls init must write: those that differ
// from what a new IPC namespace already has.
func ipcSysctlWrites(memory int64) []string {
	all := ipcSysctls(memory)
	writes := all[:0]
	for _, kv := range all {
		k, v, _ := strings.Cut(kv, "=")
		if d, ok := freshIPCDefaults[k]; !ok || d != v {
			writes = append(writes, kv)
		}
	}
	return writes
}

type ipcWriteList struct {
	memory int64
	writes []string
}

// ipcSysctlWrites is ipcSysctlWrites(memory), kept for the next jail of
// the same memory limit. The list is shared: nothing may change it.
func (s *Supervisor) ipcSysctlWrites(memory int64) []string {
	if l := s.ipcWrites.Load(); l != nil && l.memory == memory {
		return l.writes
	}
	l := &ipcWriteList{memory: memory, writes: slices.Clip(ipcSysctlWrites(memory))}
	s.ipcWrites.Store(l)
	return l.writes
}

// ipcSysctls are the jail's IPC limits for a memory limit of memory bytes,
// as "kernel/name=value" (paths under /proc/sys), in the order init writes
// them. None when memory is 0 (no limit): the kernel's defaults stay.
func ipcSysctls(memory int64) []string {
	if memory <= 0 {
		return nil
	}
	const mib = 1 << 20
	page := int64(os.Getpagesize())
	clamp := func(v, lo, hi int64) int64 { return max(lo, min(v, hi)) }
	msgmni := clamp(memory/4/(msgQueueBytes*(1+msgHeader)), 1, ipcMaxIDs)
	semmns := clamp(memory/4096, 1, ipcMaxIDs*semMaxPerSet)
	semmni := clamp(memory/mib, 1, ipcMaxIDs)
	semmsl := min(semmns, semMaxPerSet)
	shmmax := max(memory/2, page)
	return []string{
		fmt.Sprintf("kernel/msgmax=%d", msgMaxBytes),
		fmt.Sprintf("kernel/msgmnb=%d", msgQueueBytes),
		fmt.Sprintf("kernel/msgmni=%d", msgmni),
		fmt.Sprintf("kernel/sem=%d %d %d %d", semmsl, semmns, semOpsPerCall, semmni),
		fmt.Sprintf("kernel/shmmax=%d", shmmax),
		fmt.Sprintf("kernel/shmall=%d", shmmax/page),
		fmt.Sprintf("kernel/shmmni=%d", clamp(memory/mib, 1, shmMaxIDs)),
	}
}
