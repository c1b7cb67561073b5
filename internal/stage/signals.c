// Signals (signals.h).
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>

#include "stage.h"
#include "base.h"
#include "signals.h"

// Signals Cmd.Signal may send: init passes them to the program's process
// group, as a terminal's ^C would.
static const int forwarded[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};

// signals_forwarded fills set with SIGCHLD and the forwarded signals.
void signals_forwarded(sigset_t *set) {
	sigemptyset(set);
	sigaddset(set, SIGCHLD);
	for (size_t i = 0; i < sizeof forwarded / sizeof *forwarded; i++)
		sigaddset(set, forwarded[i]);
}

// signals_init: the forwarded signals and SIGCHLD are taken with
// sigwaitinfo (pid.c's pid_reap); the exec stage unblocks them for the
// program. A program that shares init's uid (unprivileged) may signal it:
// nothing else may stop it. Blocked from the start, so that the SIGCHLD of
// the network namespace's maker stays pending and the reaper collects it.
void signals_init(void) {
	sigset_t set;
	signals_forwarded(&set);
	sigprocmask(SIG_BLOCK, &set, NULL);
	for (int sig = 1; sig < 32; sig++) {
		if (sig != SIGKILL && sig != SIGSTOP && sig != SIGCHLD && !sigismember(&set, sig) && sig != SIGSEGV &&
		    sig != SIGBUS && sig != SIGFPE && sig != SIGILL)
			signal(sig, SIG_IGN);
	}
}

// signals_reset_for_program: the program starts with default signal
// dispositions and nothing blocked: what init ignored or blocked must not
// leak into it, and exec keeps ignored signals ignored.
void signals_reset_for_program(int report_fd) {
	for (int sig = 1; sig < NSIG; sig++) {
		if (sig != SIGKILL && sig != SIGSTOP)
			signal(sig, SIG_DFL); // fails harmlessly for the libc-reserved ones
	}
	sigset_t none;
	sigemptyset(&none);
	if (sigprocmask(SIG_SETMASK, &none, NULL) < 0)
		child_fail(report_fd, "unblock signals", errno);
}
