// init as the jail's pid 1 (pid.h).
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <sys/resource.h>

#include "stage.h"
#include "base.h"
#include "net.h"
#include "signals.h"
#include "pid.h"

// end_the_rest kills what the program left running and reaps it. The
// kernel would kill it too when init exits, but reaps it with SIGCHLD
// ignored, which adds nothing to init's rusage: reaped here, its CPU time
// is in what the helper's wait4 reports for the jail.
static void end_the_rest(void) {
	// No child, nothing left: every process of the namespace descends
	// from init, and the orphans are its children.
	if (waitpid(-1, NULL, WNOHANG | __WALL) < 0 && errno == ECHILD)
		return;
	kill(-1, SIGKILL);
	for (;;) {
		pid_t pid = wait4(-1, NULL, __WALL, NULL);
		if (pid < 0 && errno != EINTR)
			return; // ECHILD: nothing is left
	}
}

// pid_reap waits for the program (prog) and every orphan, forwards the
// signals init takes (signals.c) to the program's process group, reports
// the program's end and exits.
__attribute__((noreturn)) void pid_reap(int prog) {
	sigset_t set;
	signals_forwarded(&set);
	long maxrss = 0;
	for (;;) {
		int sig = sigwaitinfo(&set, NULL);
		if (sig < 0)
			continue;
		if (sig != SIGCHLD) {
			kill(-prog, sig);
			continue;
		}
		for (;;) {
			int status;
			struct rusage ru;
			pid_t pid = wait4(-1, &status, WNOHANG, &ru);
			if (pid < 0 && errno == EINTR)
				continue;
			if (pid < 0) {
				report_error("reap", errno, errstr(errno));
				_exit(1);
			}
			if (pid == 0)
				break;
			if (ru.ru_maxrss > maxrss && !net_is_maker(pid))
				maxrss = ru.ru_maxrss;
			if (pid != prog)
				continue;
			if (WIFSIGNALED(status))
				report_exit(-1, WTERMSIG(status), maxrss);
			else
				report_exit(WEXITSTATUS(status), 0, maxrss);
			end_the_rest();
			_exit(0);
		}
	}
}
