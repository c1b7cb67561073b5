// The jail's filesystem. Parent side (the helper, on the host): clone the
// bind sources while it can still see them as root, and hold the jail's
// mount namespace. Child side (init): build the root.
#ifndef BRIG_MOUNT_H
#define BRIG_MOUNT_H

#include "stage.h"

// Parent side.
void mount_clone_sources_from_parent(struct spec *s);
int mount_hold_from_parent(long pid);

// Child side.
int mount_build_root(struct spec *s);

#endif
