// Package silentmaker is imported by tests only: in a binary that links
// it, a jail whose Config.Hostname is Hostname starts with a network
// maker that ends without its result byte (jail/init.c), so that a test
// can prove init replaces such a maker. It defines the C symbol
// brig_test_silent_maker, which init.c references weakly: production
// binaries, which never import this package, have no such hook, and no
// message between the supervisor and its stages carries one.
package silentmaker

/*
#include <string.h>

int brig_test_silent_maker(const char *hostname) {
	return strcmp(hostname, "brig-silent-maker") == 0;
}
*/
import "C"

// Hostname is the jail hostname that gets a silent first network maker.
const Hostname = "brig-silent-maker"
