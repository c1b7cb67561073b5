// init (init.c): the jail's pid 1, from the helper's clone3 on.
#ifndef BRIG_INIT_H
#define BRIG_INIT_H

#include "stage.h"

__attribute__((noreturn)) void run_init(struct spec *s, char **argv, int ready_fd, int request_fd, int join_fd);

#endif
