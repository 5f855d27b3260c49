/* Webhook deliveries (issue 7): each pending delivery row is POSTed as JSON
 * through libcurl on libuv's thread pool, and its outcome written back on
 * the loop: delivered on a 2xx, else retried with exponential back-off and
 * jitter until the schedule's attempts run out, then marked failed. The
 * rows outlive restarts, so an alert is never dropped silently. */
#ifndef PB_WEBHOOK_H
#define PB_WEBHOOK_H

#include "coordinator/coord.h"

#define PB_WEBHOOK_TIMEOUT_S 10   /* one POST, connect included */
#define PB_WEBHOOK_BACKOFF_MAX 300 /* seconds between tries, at most */
#define PB_WEBHOOK_BATCH 4        /* deliveries in flight at once */

/* Start the due deliveries (from the tick) when none is in flight. */
void pb_webhook_tick(pb_coord_t *c);

/* Delay before try attempts + 1 (attempts >= 1 made so far): base doubled
 * per try, capped, times a jitter factor in [0.8, 1.2) from u in [0, 1). */
double pb_webhook_backoff(double base, int attempts, double u);

#endif
