/* Load generator for tfgit's benchmark: C clients, each on its own keep-alive connection and
 * its own state, run cycles of LOCK, GET, POST (a new serial each time), UNLOCK.
 * usage: loadgen PORT PATH QUERY CLIENTS CYCLES BODY_FILE OPLOG [PREFIX]
 *   QUERY is the query without state, every @C@ in it replaced by the client's number (a
 *   repository per client); client c uses state PREFIX-c<c>.tfstate (PREFIX: bench).
 * Writes "METHOD start_ms end_ms status" per operation to OPLOG (epoch milliseconds) and prints
 * "METHOD count p50_ms p99_ms" per method and "wall_s ops". Exits 1 if any status was unexpected. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { LOCK, GET, POST, UNLOCK, NMETHODS };
static const char *names[] = {"LOCK", "GET", "POST", "UNLOCK"};
static int port, cycles;
static const char *path, *query, *prefix = "bench";
static char *body;
static size_t body_len;
static FILE *oplog;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static double *lat[NMETHODS];
static int nlat[NMETHODS], failed;

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int dial(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
	int one = 1, s = socket(AF_INET, SOCK_STREAM, 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (s < 0 || connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -1;
	setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return s;
}

static int write_all(int s, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(s, p, n);
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* QUERY with every @C@ replaced by client c's number, into out. */
static void client_query(char *out, size_t outlen, int c)
{
	size_t o = 0;
	for (const char *p = query; *p && o + 12 < outlen;) {
		if (!strncmp(p, "@C@", 3)) {
			o += (size_t)snprintf(out + o, outlen - o, "%d", c);
			p += 3;
		} else {
			out[o++] = *p++;
		}
	}
	out[o] = '\0';
}

/* Sends one request and reads the whole response (Content-Length bodies, or none); status. */
static int roundtrip(int s, const char *q, const char *method, const char *state, const char *extra,
		     const char *b, size_t blen)
{
	char head[4096], buf[65536];
	int n = snprintf(head, sizeof(head),
			 "%s %s?%s&state=%s%s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %zu\r\n"
			 "Content-Type: application/json\r\n\r\n",
			 method, path, q, state, extra, blen);
	if (write_all(s, head, (size_t)n) < 0 || (blen && write_all(s, b, blen) < 0))
		return -1;
	size_t have = 0;
	char *end = NULL;
	while (!end) {
		ssize_t r = read(s, buf + have, sizeof(buf) - 1 - have);
		if (r <= 0)
			return -1;
		have += (size_t)r;
		buf[have] = '\0';
		end = strstr(buf, "\r\n\r\n");
		if (!end && have >= sizeof(buf) - 1)
			return -1;
	}
	int status = atoi(buf + 9);
	char *cl = strcasestr(buf, "\r\nContent-Length:");
	size_t want = cl && cl < end ? strtoul(cl + 17, NULL, 10) : 0;
	size_t got = have - (size_t)(end + 4 - buf);
	while (got < want) {
		ssize_t r = read(s, buf, sizeof(buf) < want - got ? sizeof(buf) : want - got);
		if (r <= 0)
			return -1;
		got += (size_t)r;
	}
	return status;
}

static void record(int m, double t0, double t1, int status)
{
	pthread_mutex_lock(&mu);
	lat[m][nlat[m]++] = t1 - t0;
	fprintf(oplog, "%s %.3f %.3f %d\n", names[m], t0, t1, status);
	pthread_mutex_unlock(&mu);
}

static void *client(void *arg)
{
	int c = (int)(long)arg, s = dial();
	char state[128], id[64], extra[96], lockbody[160], q[2048];
	char *post = malloc(body_len + 64);
	snprintf(state, sizeof(state), "%s-c%d.tfstate", prefix, c);
	client_query(q, sizeof(q), c);
	for (int i = 0; s >= 0 && post && i < cycles; i++) {
		int st, ok = 1;
		double t0, t1;
		snprintf(id, sizeof(id), "bench-%d-%d", c, i);
		snprintf(lockbody, sizeof(lockbody), "{\"ID\":\"%s\",\"Who\":\"loadgen\"}", id);
		snprintf(extra, sizeof(extra), "&ID=%s", id);
		/* a new serial each cycle, so every POST is a real change */
		size_t plen = (size_t)sprintf(post, "{\"serial\":%d,", i) + body_len - 1;
		memcpy(post + plen - (body_len - 1), body + 1, body_len - 1);

		int sl, sg, sp, su;
		t0 = now_ms(); sl = st = roundtrip(s, q, "LOCK", state, "", lockbody, strlen(lockbody)); t1 = now_ms();
		record(LOCK, t0, t1, st); ok &= st == 200;
		t0 = now_ms(); sg = st = roundtrip(s, q, "GET", state, "", NULL, 0); t1 = now_ms();
		record(GET, t0, t1, st); ok &= st == 200 || st == 204;
		t0 = now_ms(); sp = st = roundtrip(s, q, "POST", state, extra, post, plen); t1 = now_ms();
		record(POST, t0, t1, st); ok &= st == 200;
		t0 = now_ms(); su = st = roundtrip(s, q, "UNLOCK", state, "", lockbody, strlen(lockbody)); t1 = now_ms();
		record(UNLOCK, t0, t1, st); ok &= st == 200;
		if (!ok) {
			fprintf(stderr, "loadgen: client %d cycle %d: LOCK %d GET %d POST %d UNLOCK %d\n", c, i,
				sl, sg, sp, su);
			pthread_mutex_lock(&mu);
			failed++;
			pthread_mutex_unlock(&mu);
		}
	}
	if (s < 0) {
		pthread_mutex_lock(&mu);
		failed++;
		pthread_mutex_unlock(&mu);
	}
	free(post);
	if (s >= 0)
		close(s);
	return NULL;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	if (argc != 8 && argc != 9) {
		fprintf(stderr, "usage: loadgen PORT PATH QUERY CLIENTS CYCLES BODY_FILE OPLOG [PREFIX]\n");
		return 2;
	}
	if (argc == 9)
		prefix = argv[8];
	port = atoi(argv[1]);
	path = argv[2];
	query = argv[3];
	int clients = atoi(argv[4]);
	cycles = atoi(argv[5]);
	FILE *f = fopen(argv[6], "rb");
	oplog = fopen(argv[7], "w");
	if (!f || !oplog || clients < 1 || cycles < 1)
		return 2;
	fseek(f, 0, SEEK_END);
	body_len = (size_t)ftell(f);
	rewind(f);
	body = malloc(body_len + 1);
	if (!body || fread(body, 1, body_len, f) != body_len || body_len < 2 || body[0] != '{')
		return 2;
	fclose(f);
	for (int m = 0; m < NMETHODS; m++)
		lat[m] = calloc((size_t)clients * (size_t)cycles, sizeof(double));
	pthread_t *t = calloc((size_t)clients, sizeof(*t));
	double t0 = now_ms();
	for (int c = 0; c < clients; c++)
		pthread_create(&t[c], NULL, client, (void *)(long)c);
	for (int c = 0; c < clients; c++)
		pthread_join(t[c], NULL);
	double wall = (now_ms() - t0) / 1e3;
	for (int m = 0; m < NMETHODS; m++) {
		qsort(lat[m], (size_t)nlat[m], sizeof(double), cmp);
		double p50 = nlat[m] ? lat[m][nlat[m] / 2] : 0;
		double p99 = nlat[m] ? lat[m][(nlat[m] * 99) / 100 < nlat[m] ? (nlat[m] * 99) / 100 : nlat[m] - 1] : 0;
		printf("%s %d %.2f %.2f\n", names[m], nlat[m], p50, p99);
	}
	printf("wall %.3f %d\n", wall, nlat[0] + nlat[1] + nlat[2] + nlat[3]);
	fclose(oplog);
	return failed ? 1 : 0;
}
