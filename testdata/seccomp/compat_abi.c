/*
 * Makes getpid through the two non-native x86_64 system call ABIs and prints
 * what came back. Built and run by seccomp/compat_test.go, under the filter.
 *
 *   int $0x80 with eax=20: the i386 getpid (arch AUDIT_ARCH_I386 to seccomp)
 *   syscall with rax=0x40000000|39: the x32 getpid (__X32_SYSCALL_BIT)
 *
 * The argument selects which one, so that a filter that kills on the first
 * still lets the test see the second in another run.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	long r;

	if (argc < 2)
		return 2;
	if (strcmp(argv[1], "i386") == 0) {
		__asm__ volatile("int $0x80" : "=a"(r) : "a"(20L) : "memory");
	} else if (strcmp(argv[1], "x32") == 0) {
		__asm__ volatile("syscall" : "=a"(r) : "a"(0x40000000L | 39) : "rcx", "r11", "memory");
	} else {
		return 2;
	}
	printf("%s %ld pid %ld\n", argv[1], r, (long)getpid());
	printf("all ok\n");
	return 0;
}
