// The helper stage (helper.c): a spawned or exec'd helper becomes one here.
#ifndef BRIG_HELPER_H
#define BRIG_HELPER_H

__attribute__((noreturn)) void run_helper(char **argv);

#endif
