// The program's terminal (tty.h).
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "stage.h"
#include "base.h"
#include "tty.h"

// tty_open gives the program a terminal of the jail's own devpts (Cmd.TTY):
// init, in the jail's root, opens its ptmx, sets the window size the
// supervisor sent on the tty socket, and sends the master back on it; the
// slave becomes the program's stdin, stdout and stderr, and the exec stage
// makes it the controlling terminal. The caller's terminal never enters
// the jail: the supervisor copies between it and the master. Returns the
// slave's fd, or -1 with `failed` set.
int tty_open(const struct spec *s) {
	const char *step = "open tty";
	struct winsize ws;
	memset(&ws, 0, sizeof ws);
	uint16_t size[2]; // rows, cols
	if (read_full(s->tty_fd, size, sizeof size) < 0)
		return fail(errno, step, "read the window size");
	ws.ws_row = size[0];
	ws.ws_col = size[1];
	int master = open("/dev/pts/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (master < 0)
		return fail(errno, step, "open the jail's /dev/pts/ptmx");
	int unlock = 0, slave = -1;
	if (ioctl(master, TIOCSPTLCK, &unlock) < 0)
		fail(errno, step, "unlock");
	else if (ioctl(master, TIOCSWINSZ, &ws) < 0)
		fail(errno, step, "set the window size");
	else if ((slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC)) < 0)
		fail(errno, step, "open the slave");
	if (slave >= 0 && send_fd(s->tty_fd, 0, master) < 0) {
		fail(errno, step, "send the master to the supervisor");
		close(slave);
		slave = -1;
	}
	close(master);
	close(s->tty_fd);
	return slave;
}

// tty_make_controlling makes the jail's pty (tty_open), on stdin, the new
// session's controlling terminal: ^C typed into it signals the program's
// process group.
void tty_make_controlling(const struct spec *s, int report_fd) {
	if ((s->flags & SPEC_TTY) && ioctl(0, TIOCSCTTY, 0) < 0)
		child_fail(report_fd, "set controlling terminal", errno);
}
