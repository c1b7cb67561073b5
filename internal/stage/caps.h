// Capabilities and no_new_privs, child side: the exec stage drops the
// bounding and ambient sets while it still may, then every other one once
// it is the jail user.
#ifndef BRIG_CAPS_H
#define BRIG_CAPS_H

#include "stage.h"

void caps_drop_bounding(int report_fd);
void caps_drop_all(int report_fd);

#endif
