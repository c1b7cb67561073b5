package stage

// #include "stage.h"
// #include "spawner.h"
import "C"

// EarlySpawner is the spawner the constructor forked before the Go
// runtime started (spawner.c: a program asks with brig_spawner_at_start):
// its socket's fd and its pid, or fd -1 when there is none.
func EarlySpawner() (fd, pid int) {
	return int(C.brig_early_spawner_fd), int(C.brig_early_spawner_pid)
}
