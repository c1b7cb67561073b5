// The program's seccomp filter (package seccomp compiles it; the spec
// carries it), child side: the exec stage loads it as the very last thing
// before execve.
#ifndef BRIG_SECCOMP_H
#define BRIG_SECCOMP_H

#include "stage.h"

void seccomp_load_filter(const struct exec_settings *e, int report_fd);

#endif
