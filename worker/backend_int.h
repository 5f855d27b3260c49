/* Private to worker/: the backend implementations that backend.c lists in
 * its table. A new backend adds its ops here and one line in the table. */
#ifndef PB_BACKEND_INT_H
#define PB_BACKEND_INT_H

#include "worker/backend.h"

extern const pb_backend_ops_t pb_backend__oracle;
extern const pb_backend_ops_t pb_backend__random;

#endif
