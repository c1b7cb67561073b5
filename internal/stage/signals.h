// Signals: init takes SIGCHLD and the signals it forwards to the program
// with sigwaitinfo and ignores the rest (child side, init); the exec stage
// gives the program default dispositions and an empty mask.
#ifndef BRIG_SIGNALS_H
#define BRIG_SIGNALS_H

#include "stage.h"

#include <signal.h>

void signals_forwarded(sigset_t *set);
void signals_init(void);
void signals_reset_for_program(int report_fd);

#endif
