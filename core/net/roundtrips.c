/* The round trips of the request being served with git servers (this process only). */
#include <time.h>

#include "roundtrips.h"

static int trips;
static double trips_ms;

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

double roundtrips_begin(void)
{
	return now_ms();
}

void roundtrips_end(double begun)
{
	trips++;
	trips_ms += now_ms() - begun;
}

void roundtrips_reset(void)
{
	trips = 0;
	trips_ms = 0;
}

void roundtrips_get(int *round_trips, double *ms)
{
	*round_trips = trips;
	*ms = trips_ms;
}
