/* The round trips of the request being served with git servers, kept per process: remote.c
 * brackets each connection and transfer with begin/end; the front resets them before a request
 * and reads them after it (its log line, its counters). net/'s lowest file: it calls nothing. */
#ifndef TFGIT_ROUNDTRIPS_H
#define TFGIT_ROUNDTRIPS_H

/* The moment a round trip begins, for roundtrips_end(). */
double roundtrips_begin(void);
/* One round trip more, and the time since begun. */
void roundtrips_end(double begun);
void roundtrips_reset(void);
void roundtrips_get(int *round_trips, double *ms);

#endif
