// The program's rlimits (Config.Limits with the rlimit limiter), child
// side: the exec stage applies them.
#ifndef BRIG_RLIMIT_H
#define BRIG_RLIMIT_H

#include "stage.h"

void rlimit_apply(const struct exec_settings *e, int report_fd);

#endif
