/* The bound on one operation's time (TFGIT_REMOTE_TIMEOUT): libgit2 1.5 has no timeouts. */
#ifndef TFGIT_DEADLINE_H
#define TFGIT_DEADLINE_H

/* Arms SIGALRM (process-wide, no SA_RESTART) to fire after seconds and then every 100 ms, so
 * a blocking connect(), recv() or flock() returns EINTR and the operation fails; the remote
 * callbacks also refuse to go on. 0 seconds: no bound. */
void deadline_start(int seconds);
/* The same in milliseconds (group commit: a batch ends by the earliest of its requests'
 * deadlines). */
void deadline_start_ms(long ms);

/* 1 once the bound has passed. */
int deadline_passed(void);

/* Bounds a wait inside the operation (the repository's flock) to seconds, when that is shorter
 * than what is left of the operation: blocking calls then return EINTR and
 * deadline_wait_passed() is 1. deadline_wait_end() goes back to the operation's bound. */
void deadline_wait_begin(int seconds);
int deadline_wait_passed(void);
void deadline_wait_end(void);

/* Disarms the timer; the handler stays, and does nothing but set the flag. */
void deadline_stop(void);

/* The monotonic clock in milliseconds. */
long long core_now_ms(void);

#endif
