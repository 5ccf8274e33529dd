/* The bound on one operation's time (TFGIT_REMOTE_TIMEOUT): libgit2 1.5 has no timeouts. */
#include <signal.h>
#include <string.h>
#include <sys/time.h>

#include "deadline.h"

static volatile sig_atomic_t passed;

static void on_alarm(int sig)
{
	(void)sig;
	passed = 1;
}

void deadline_start(int seconds)
{
	struct sigaction sa;
	struct itimerval it = {.it_interval = {0, 100 * 1000}, .it_value = {seconds, 0}};
	passed = 0;
	if (seconds <= 0)
		return;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0; /* no SA_RESTART: blocking calls must return EINTR */
	sigaction(SIGALRM, &sa, NULL);
	setitimer(ITIMER_REAL, &it, NULL);
}

int deadline_passed(void)
{
	return passed;
}

void deadline_stop(void)
{
	struct itimerval off;
	memset(&off, 0, sizeof(off));
	setitimer(ITIMER_REAL, &off, NULL);
}
