// The spawner (spawner.c), and the embedding program's say on forking it
// early; spawner.go reads brig_early_spawner_fd and _pid through cgo.
#ifndef BRIG_SPAWNER_H
#define BRIG_SPAWNER_H

__attribute__((noreturn)) void run_spawner(char **argv);

// The embedding program's say on forking the spawner before the Go runtime
// starts (spawner.c). Weak: a program that defines nothing gets none.
int brig_spawner_at_start(int argc, char **argv) __attribute__((weak));
void start_early_spawner(int argc, char **argv, char **envp);
extern int brig_early_spawner_fd;  // the supervisor's end of its socket, or -1
extern int brig_early_spawner_pid;

#endif
