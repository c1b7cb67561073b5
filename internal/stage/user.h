// User ids: the jail's user namespace maps (parent side: the helper writes
// init's), the ids init and the program take (child side), the small user
// namespaces an idmapped mount or the IPC namespace of an unprivileged jail
// needs, and the jail's audit login uid.
#ifndef BRIG_USER_H
#define BRIG_USER_H

#include "stage.h"

// Parent side (the helper, on the host).
int user_map_from_parent(int pid, const struct spec *s);
int user_idmap_ns(uint32_t uid, uint32_t gid, uint32_t jail_id, const char *step);

// Child side (init, in the jail).
int user_enter_as_init(const struct spec *s);
int user_own_ns_as_root(void);
int user_set_loginuid(void);
// The exec stage: failures end it through report_fd (child_fail).
void user_become_program(const struct exec_settings *e, int report_fd);

#endif
