// The jail's SysV IPC limits (ipclimits.go), set by init (child side) in
// the jail's IPC namespace.
#ifndef BRIG_IPC_H
#define BRIG_IPC_H

#include "stage.h"

int ipc_limit(const struct spec *s);

#endif
