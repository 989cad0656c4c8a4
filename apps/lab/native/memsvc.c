/*
 * ferry-memsvc: the lab's service whose state lives only in memory, to show what live migration
 * keeps and restart mode loses. Static, so it runs in the busybox containers as it is.
 *
 *   ferry-memsvc <MiB>
 *
 * - holds <MiB> MiB filled with a pattern that depends only on the offset, and keeps dirtying it
 *   (rewrites 16 MiB of it with the same values every 100 ms tick), as a busy service would;
 * - counts ticks in memory (never on disk): a restarted process counts from 0 again;
 * - HTTP on port 8080: `GET /` answers "pid=<pid in its namespace> count=<ticks> mib=<MiB>";
 *   `GET /check` scans the whole region first and adds " intact=1" (or 0 when a page differs);
 * - port 9000: a line-echo server, each reply "<count> <line>"; a client may hold its
 *   connection across a migration and ask again afterwards.
 * One thread, one poll loop: nothing here needs locking, and CRIU sees one simple task.
 */
#define _GNU_SOURCE /* accept4 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CLIENTS 32
#define TICK_MS 100
#define TOUCH_BYTES (16u << 20)

static uint64_t *mem;
static size_t words;
static size_t touch_at;
static unsigned long count;

static uint64_t pattern(size_t i) { return (uint64_t)i * 0x9E3779B97F4A7C15ull ^ 0x5A5A5A5A5A5A5A5Aull; }

static void touch(void) {
  size_t pages = words / 512; /* 512 words of 8 bytes: one 4 KiB page */
  for (size_t k = 0; k < TOUCH_BYTES / 4096 && pages; k++) {
    size_t i = touch_at * 512;
    mem[i] = pattern(i);
    touch_at = (touch_at + 1) % pages;
  }
}

static int intact(void) {
  for (size_t i = 0; i < words; i++)
    if (mem[i] != pattern(i)) return 0;
  return 1;
}

static int listen_on(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_ANY)};
  if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) || bind(fd, (struct sockaddr *)&a, sizeof a) || listen(fd, 16)) {
    perror("listen");
    exit(1);
  }
  return fd;
}

static long now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1000L + t.tv_nsec / 1000000L;
}

static void http(int fd, unsigned long mib) {
  char req[1024], body[128], out[256];
  ssize_t n = read(fd, req, sizeof req - 1);
  if (n <= 0) return;
  req[n] = 0;
  int check = strncmp(req, "GET /check", 10) == 0;
  int len = snprintf(body, sizeof body, "pid=%d count=%lu mib=%lu%s\n", (int)getpid(), count, mib, check ? (intact() ? " intact=1" : " intact=0") : "");
  len = snprintf(out, sizeof out, "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", len, body);
  if (write(fd, out, (size_t)len) < 0) { /* the client went away */ }
}

int main(int argc, char **argv) {
  unsigned long mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 0;
  signal(SIGPIPE, SIG_IGN);
  if (mib) {
    size_t bytes = mib << 20;
    mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) {
      perror("mmap");
      return 1;
    }
    words = bytes / sizeof(uint64_t);
    for (size_t i = 0; i < words; i++) mem[i] = pattern(i);
  }
  struct pollfd p[2 + MAX_CLIENTS];
  char buf[MAX_CLIENTS][512];
  size_t have[MAX_CLIENTS] = {0};
  int nclients = 0;
  p[0] = (struct pollfd){.fd = listen_on(8080), .events = POLLIN};
  p[1] = (struct pollfd){.fd = listen_on(9000), .events = POLLIN};
  long next = now_ms() + TICK_MS;
  for (;;) {
    long wait = next - now_ms();
    int r = poll(p, 2 + nclients, wait > 0 ? (int)wait : 0);
    if (r < 0 && errno != EINTR) return 1;
    if (now_ms() >= next) {
      count++;
      touch();
      next += TICK_MS;
      if (next < now_ms()) next = now_ms() + TICK_MS; /* after a freeze: no burst of ticks */
    }
    if (r <= 0) continue;
    if (p[0].revents & POLLIN) {
      int c = accept4(p[0].fd, NULL, NULL, SOCK_CLOEXEC);
      if (c >= 0) {
        http(c, mib);
        close(c);
      }
    }
    if ((p[1].revents & POLLIN) && nclients < MAX_CLIENTS) {
      int c = accept4(p[1].fd, NULL, NULL, SOCK_CLOEXEC);
      if (c >= 0) {
        p[2 + nclients] = (struct pollfd){.fd = c, .events = POLLIN};
        have[nclients++] = 0;
      }
    }
    for (int i = 0; i < nclients; i++) {
      if (!p[2 + i].revents) continue;
      ssize_t n = read(p[2 + i].fd, buf[i] + have[i], sizeof buf[i] - have[i] - 1);
      if (n <= 0) {
        close(p[2 + i].fd);
        p[2 + i] = p[2 + nclients - 1];
        memcpy(buf[i], buf[nclients - 1], have[nclients - 1]);
        have[i] = have[nclients - 1];
        nclients--;
        i--;
        continue;
      }
      have[i] += (size_t)n;
      char *nl;
      while ((nl = memchr(buf[i], '\n', have[i]))) {
        char out[600];
        int len = snprintf(out, sizeof out, "%lu %.*s\n", count, (int)(nl - buf[i]), buf[i]);
        if (write(p[2 + i].fd, out, (size_t)len) < 0) { /* closed: the next read says so */ }
        have[i] -= (size_t)(nl + 1 - buf[i]);
        memmove(buf[i], nl + 1, have[i]);
      }
      if (have[i] == sizeof buf[i] - 1) have[i] = 0; /* a line too long: dropped */
    }
  }
}
