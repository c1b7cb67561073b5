// Package supervisor is the host side of brig's jails, under the public
// package jail: an Instance is one jail (a jail.Cmd's), a Pool keeps
// jails built ahead, a Supervisor owns what its jails share (spawner, root
// templates, stale-cgroup sweep, cgroup reuse). It takes a Plan, a
// jail.Config checked and lowered by jail, and reports an Outcome and
// StepErrors, which jail lifts to its Result and SetupError: it never
// imports jail (docs/architecture.md says why). The C stages and the
// messages to them are internal/stage's.
//
// # How a jail starts
//
//	supervisor ──▶ helper ──clone(namespaces)──▶ init (PID 1) ──clone(CLONE_VM|CLONE_VFORK)──▶ exec stage ──execve──▶ program
//	                                              └─clone(CLONE_VM)──▶ network maker
//
// The supervisor is the embedding Go program: this package (instance.go,
// pool.go) under package jail's API. The rest is C in internal/stage, run
// from a constructor of the same binary before the Go runtime starts
// (stage.c): a program that imports jail, and through it this package and
// internal/stage, needs no line in main. The helper (helper.c) is an exec
// of the binary under the argv[0] "brig:helper" or, from a supervisor's
// second jail on, a fork of its spawner (spawner.c). A program whose first
// jail starts right away (brig run) has its spawner forked by the
// constructor, before the Go runtime starts: it defines, in a cgo preamble
// of package main,
//
//	int brig_spawner_at_start(int argc, char **argv) { return 1; }
//
// (returning nonzero for the arguments that start a jail; see
// cmd/brig/spawner.go); that spawner is Default's (jail.DefaultSupervisor).
// The helper clones init in new user, mount, PID, IPC and UTS
// namespaces, maps the jail's users (ids.go), places init in the jail's
// cgroup (package cgroup; on v1 a cold jail's init moves itself in, through the
// files the helper opens, while the supervisor is still making them after
// the spec), kills the jail when told to or when the supervisor
// dies, and reports what the jail used. init (init.c) forks a child that
// makes the jail's network namespace while init builds the root (mount.c),
// then enters it; before the root, it sets the SysV IPC limits of the jail's
// IPC namespace from its memory limit (ipclimits.go; unprivileged, in an IPC
// namespace it enters for that) and the jail's audit login uid. The read-only part of the root is, where the kernel
// allows, a clone of a root template the supervisor builds once a second
// (roottemplate.go), not built again by every init; init reaps orphans and
// forwards signals, and when the program exits kills and reaps what it left
// (so that the helper's rusage counts its CPU) and exits; the kernel ends
// whatever is left in the jail then. The
// exec stage (execstage.c) shares init's memory until its execve, as
// posix_spawn's child does, drops every privilege and loads seccomp as the
// last step before execve. The stages talk over pipes: a spec in, JSON
// events out (internal/stage: wire.go, and wire_doc.go, which lays out
// every message).
//
// # Terminals
//
// A terminal is never handed into a jail: the program's stdin is a pipe,
// a regular file or /dev/null, and its output goes through pipes brig
// reads. A program that needs a terminal gets one of the jail's own with
// jail.Cmd.TTY (tty.go): init opens a pty of the jail's private devpts instance
// (at most 64 ptys), sends its master to the supervisor over a socket and
// makes the slave the program's stdio; the exec stage makes it the
// controlling terminal of the program's session. The supervisor copies
// between the master and Stdin/Stdout under OutputLimit, and ResizeTTY
// sets its window size. TIOCSTI and TIOCLINUX stay refused on it.
//
// # Egress
//
// A jail of Network "proxy" (egress.go) has lo alone, as every jail, and
// an HTTP proxy reached at 127.0.0.1:3128 of that lo. Its listener is made
// by init in the jail's network namespace before the program exists (no
// SO_REUSEPORT: the program cannot take the port) and handed up on the
// same socket as a pty's master (the handback socket); the supervisor
// serves egress.Proxy on it under the Plan's policy, in its own process
// and network namespace, and closes it in Wait once the jail has ended,
// keeping what it refused for the Outcome. No setns, so an unprivileged
// supervisor needs nothing more.
package supervisor
