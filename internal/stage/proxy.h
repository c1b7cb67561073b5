// The jail's end of the egress proxy, child side (init): proxy.c.
#ifndef BRIG_PROXY_H
#define BRIG_PROXY_H

#include "stage.h"

int proxy_hand_up_listener(struct spec *s);

#endif
