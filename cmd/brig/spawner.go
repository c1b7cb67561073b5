package main

// brig run and brig session start a jail right away: the jail package forks
// its spawner before the Go runtime starts (jail/spawner.c), so that the
// first jail forks its helper instead of exec'ing one. Other subcommands
// start no jail and get none.

/*
#include <string.h>

int brig_spawner_at_start(int argc, char **argv) {
	return argc > 1 && (strcmp(argv[1], "run") == 0 || strcmp(argv[1], "session") == 0);
}
*/
import "C"
