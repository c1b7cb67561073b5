// The exec stage (execstage.c): init starts the program's process through
// it, a cold jail's or a pooled jail's on request, or a pooled jail's
// ahead (prefork).
#ifndef BRIG_EXECSTAGE_H
#define BRIG_EXECSTAGE_H

#include "stage.h"

int start_program(struct spec *s, const int stdio[3], const int *extra);
int prefork_program(struct spec *s, int request_fd);

#endif
