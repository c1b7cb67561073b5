// The program's terminal (Cmd.TTY): a pty of the jail's own devpts. Child
// side: init opens it and sends the master to the supervisor; the exec
// stage makes the slave its controlling terminal.
#ifndef BRIG_TTY_H
#define BRIG_TTY_H

#include "stage.h"

int tty_open(const struct spec *s);
// The exec stage, on stdin (the slave): failures end it through report_fd.
void tty_make_controlling(const struct spec *s, int report_fd);

#endif
