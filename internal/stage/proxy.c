// The jail's end of the egress proxy (jail.Config.Network "proxy", issue
// 21): init, in the jail's network namespace and before the program
// exists, makes the listening socket the supervisor's proxy serves, and
// hands it up on the handback socket (wire_doc.go's message 8). The proxy
// itself runs in the supervisor, outside the jail's cgroup and namespaces;
// nothing of it runs in the jail.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "stage.h"
#include "base.h"
#include "proxy.h"

// proxy_hand_up_listener binds 127.0.0.1:EGRESS_PORT on the jail's lo and
// sends the listener to the supervisor as one message: the byte HANDBACK_PROXY with
// the fd as SCM_RIGHTS. Without SO_REUSEPORT and bound before the program
// starts, the port is never the program's: its own bind fails with
// EADDRINUSE. init's copy is closed here; the handback socket too unless a
// pty's master follows on it (SPEC_TTY, tty.c's tty_open). Returns 0, or
// -1 with `failed` set.
int proxy_hand_up_listener(struct spec *s) {
	const char *step = "open egress listener";
	// Only ever in the jail's own namespace: never a listener of the host's.
	if (!(s->flags & SPEC_NEW_NET))
		return fail(EINVAL, step, "the jail has no network namespace of its own");
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return fail(errno, step, "socket");
	struct sockaddr_in addr;
	memset(&addr, 0, sizeof addr);
	addr.sin_family = AF_INET;
	addr.sin_port = htons(EGRESS_PORT);
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int rc = 0;
	if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0)
		rc = fail(errno, step, "bind 127.0.0.1:%d", EGRESS_PORT);
	else if (listen(fd, 64) < 0)
		rc = fail(errno, step, "listen");
	if (rc == 0 && send_fd(s->tty_fd, HANDBACK_PROXY, fd) < 0)
		rc = fail(errno, step, "send the listener to the supervisor");
	close(fd);
	if (!(s->flags & SPEC_TTY)) {
		close(s->tty_fd);
		s->tty_fd = -1;
	}
	return rc;
}
