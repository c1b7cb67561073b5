// The top of the C: the dispatch on argv[0] that makes a re-executed (or
// spawned) binary a spawner or a helper before the Go runtime starts.
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "stage.h"
#include "helper.h"
#include "spawner.h"

// A program that imports jail needs no line in main: the spawner's and the
// helper's argv[0] are caught here, before the Go runtime (and the embedding program's main)
// would start.
__attribute__((constructor)) static void brig_stage_dispatch(int argc, char **argv, char **envp) {
	if (argc >= 1 && strcmp(argv[0], SPAWNER_ARG0) == 0) {
		prctl(PR_SET_NAME, SPAWNER_ARG0, 0, 0, 0);
		run_spawner(argv);
	}
	if (argc >= 1 && strcmp(argv[0], HELPER_ARG0) == 0)
		run_helper(argv);
	// Go's runtime puts /dev/null on a closed stdin, stdout or stderr when
	// it starts (checkfds), after this constructor. Done here, the early
	// spawner's socket cannot land on them.
	for (int fd = 0; fd <= 2; fd++) {
		if (fcntl(fd, F_GETFD) < 0 && errno == EBADF) {
			int null = open("/dev/null", O_RDWR);
			if (null >= 0 && null != fd) {
				dup2(null, fd);
				close(null);
			}
		}
	}
	if (brig_spawner_at_start && brig_spawner_at_start(argc, argv))
		start_early_spawner(argc, argv, envp);
}
