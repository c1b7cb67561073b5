// The jail's PID namespace, child side: init is its pid 1, reaps every
// orphan and ends with the program, and the kernel then kills whatever is
// left (the helper's clone3 made the namespace).
#ifndef BRIG_PID_H
#define BRIG_PID_H

#include "stage.h"

__attribute__((noreturn)) void pid_reap(int prog);

#endif
