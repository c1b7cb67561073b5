// Package jail runs untrusted programs (the Python and shell an agent
// writes) in a jail made of Linux namespaces, cgroup limits and a seccomp
// filter, with the shape of os/exec:
//
//	cmd := jail.Command(ctx, jail.Config{Timeout: 10 * time.Second}, "/usr/bin/python3", "-c", code)
//	out, err := cmd.Output() // a *jail.ExitError unless the program exited 0 by itself
//	fmt.Println(cmd.Result.Reason)
//
// The zero Config is the safe default: every namespace, no network, a
// read-only root with only /tmp, the working directory and /dev/shm
// writable, small limits, the default seccomp policy; every loosening is a
// field to set: Network "proxy" with an egress.Policy lets the program
// reach what the policy allows through a proxy brig serves outside the jail
// (docs/egress.md); Pausable lets Cmd.Freeze and Cmd.Thaw stop and resume
// the jail whole, its timeout held. A jail that cannot be built fails with
// a *SetupError whose cause unwraps (syscall.ENOENT, cgroup.ErrUnavailable);
// Config.Check refuses a bad Config without a jail. A Pool keeps jails
// built ahead; package session keeps an interpreter alive in one.
//
// Command, NewPool and package session use DefaultSupervisor, which owns
// a spawner process, root templates and cgroups kept for reuse. A program
// closes it before it exits, so that nothing of brig outlives it:
//
//	defer jail.DefaultSupervisor.Close()
//
// The jail's stages are C run from a constructor of the same binary, so a
// program needs no line in main (one may have the constructor fork
// DefaultSupervisor's spawner: brig_spawner_at_start, cmd/brig/spawner.go);
// internal/supervisor and docs/architecture.md say how a jail is built.
package jail
