// The program's rlimits (rlimit.h).
#define _GNU_SOURCE
#include <errno.h>
#include <sys/resource.h>

#include "stage.h"
#include "base.h"
#include "rlimit.h"

void rlimit_apply(const struct exec_settings *e, int report_fd) {
	for (uint32_t i = 0; i < e->nrlimits; i++) {
		struct rlimit rl = {e->rlimits[i].cur, e->rlimits[i].max};
		if (setrlimit((int)e->rlimits[i].resource, &rl) < 0)
			child_fail(report_fd, "setrlimit", errno);
	}
}
