/* bench_instant_server: the openai benchmark's "instant answer" server. Any
 * POST gets the same small completion at once, over keep-alive HTTP/1.1,
 * from one epoll loop per thread (SO_REUSEPORT), so that the client side
 * (bench/openai.c) is what the benchmark measures; a Python server tops out
 * far below what the worker can send. Not a general HTTP server: requests
 * must carry Content-Length, and anything odd closes the connection. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define CONN_BUF (256 * 1024) /* a request larger than this closes the connection */
#define MAX_EVENTS 256

static const char body[] =
    "{\"id\":\"cmpl-1\",\"object\":\"text_completion\",\"model\":\"m\",\"choices\":[{\"index\":0,"
    "\"text\":\"42\",\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":4,"
    "\"completion_tokens\":1,\"total_tokens\":5}}";
static char response[512];
static size_t response_len;
static int port;

typedef struct conn {
    int fd;
    size_t len;
    char buf[CONN_BUF];
} conn_t;

/* Answer every whole request in c->buf; -1 to close. */
static int serve(conn_t *c)
{
    size_t off = 0;
    for (;;) {
        char *start = c->buf + off, *end = memmem(start, c->len - off, "\r\n\r\n", 4);
        if (end == NULL)
            break;
        size_t hlen = (size_t)(end - start) + 4, clen = 0;
        for (char *p = start; p < end; p++)
            if ((p == start || p[-1] == '\n') && strncasecmp(p, "content-length:", 15) == 0)
                clen = strtoul(p + 15, NULL, 10);
        if (off + hlen + clen > c->len)
            break; /* the body is still coming */
        off += hlen + clen;
        for (size_t w = 0; w < response_len;) {
            ssize_t k = write(c->fd, response + w, response_len - w);
            if (k < 0 && errno == EINTR)
                continue;
            if (k <= 0)
                return -1; /* a full socket buffer: this client is not reading */
            w += (size_t)k;
        }
    }
    memmove(c->buf, c->buf + off, c->len - off);
    c->len -= off;
    return c->len == sizeof c->buf ? -1 : 0;
}

static void *loop(void *arg)
{
    (void)arg;
    int one = 1, ep = epoll_create1(0);
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(ls, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    if (ep < 0 || ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof a) || listen(ls, 1024)) {
        perror("bench_instant_server: listen");
        exit(1);
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL}, evs[MAX_EVENTS];
    epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
    for (;;) {
        int n = epoll_wait(ep, evs, MAX_EVENTS, -1);
        for (int i = 0; i < n; i++) {
            conn_t *c = evs[i].data.ptr;
            if (c == NULL) {
                int fd;
                while ((fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    conn_t *nc = malloc(sizeof *nc);
                    if (nc == NULL) {
                        close(fd);
                        continue;
                    }
                    nc->fd = fd;
                    nc->len = 0;
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    struct epoll_event ce = {.events = EPOLLIN, .data.ptr = nc};
                    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ce);
                }
                continue;
            }
            ssize_t k;
            int closed = 0;
            while ((k = read(c->fd, c->buf + c->len, sizeof c->buf - c->len)) > 0) {
                c->len += (size_t)k;
                if (serve(c)) {
                    closed = 1;
                    break;
                }
            }
            if (closed || k == 0 || (k < 0 && errno != EAGAIN && errno != EINTR)) {
                close(c->fd);
                free(c);
            }
        }
    }
    return NULL;
}

int main(int argc, char **argv)
{
    int threads = 1;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--port") == 0)
            port = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--threads") == 0)
            threads = atoi(argv[i + 1]);
    }
    if (port <= 0 || threads < 1 || threads > 64) {
        fprintf(stderr, "usage: bench_instant_server --port N [--threads N]\n");
        return 2;
    }
    response_len = (size_t)snprintf(response, sizeof response,
                                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                    "Content-Length: %zu\r\n\r\n%s", strlen(body), body);
    pthread_t t;
    for (int i = 1; i < threads; i++)
        pthread_create(&t, NULL, loop, NULL);
    printf("listening on http://127.0.0.1:%d/\n", port);
    fflush(stdout);
    loop(NULL);
    return 0;
}
