// The jail's network namespace, with only lo, up. Child side only: a
// child of init makes it (net.c); the helper has no part in it.
#ifndef BRIG_NET_H
#define BRIG_NET_H

#include "stage.h"

#include <sys/types.h>

struct net_maker {
	int result[2]; // one byte from the maker: 0 once lo is up, else an errno
	int sock;      // the maker's socket in the new namespace (shared fd table)
	int pidfd;     // readable once the maker has exited
	int silent;    // tests (brig_test_silent_maker): end without the result byte
};

// Child side (init): start the maker before the filesystem is built, join
// its namespace after.
int net_start(struct net_maker *m, const struct spec *s);
int net_join(struct net_maker *m);
// net_is_maker: pid is the maker's, whose rusage is init's, not the program's.
int net_is_maker(pid_t pid);

#endif
