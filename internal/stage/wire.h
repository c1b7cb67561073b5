// The readers of the messages the stages receive: the spec (the helper,
// from the supervisor; wire_decode.go reads it through cgo too), the exec
// settings inside it, and a pooled jail's request (init or the program's
// process, from the supervisor's pool). Layouts: wire_doc.go.
#ifndef BRIG_WIRE_H
#define BRIG_WIRE_H

#include "stage.h"

uint32_t get_u32(struct reader *r);
uint64_t get_u64(struct reader *r);
char *get_str(struct reader *r);
char **get_strs(struct reader *r);
int parse_spec(struct reader *r, struct spec *s);
int parse_exec_settings(struct reader *r, struct exec_settings *e);
int read_request(struct spec *s, int sock, int *files, int *nfiles);

#endif
