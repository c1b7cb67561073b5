// The jail's cgroups. Parent side (the helper): init is born in the jail's
// cgroup v2 (clone3 into it), or in its v1 hierarchies (the helper moves
// itself there for the clone and goes home), or its pid is written into
// them; a JoinLater jail's v1 "tasks" files are opened by the helper and
// passed to init. Child side (init): it joins those, then enters a cgroup
// namespace of its own.
#ifndef BRIG_CGROUP_H
#define BRIG_CGROUP_H

#include "stage.h"

// Parent side.
int cgroup_open_v2(const struct spec *s, int *fd);
int cgroup_move_self(const struct spec *s);
int cgroup_go_home(const struct spec *s);
int cgroup_place_from_parent(long pid, const struct spec *s);
int cgroup_pass_from_parent(int sock);

// Child side.
int cgroup_join(int sock);
int cgroup_new_namespace(void);

#endif
