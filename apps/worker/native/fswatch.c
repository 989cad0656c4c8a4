/*
 * ferry-fswatch ROOT — what changed below ROOT, without walking it.
 *
 * Marks the file system that holds ROOT with fanotify (FAN_MARK_FILESYSTEM: every mount of it,
 * the container's own included) and reports events as directory handle + name. Each line
 * "flush" on stdin answers with what changed below ROOT since the previous flush, then ".\0":
 *
 *   E<dir>\0   entries of this directory were created, deleted or renamed
 *   F<path>\0  this object's content or metadata changed (write, truncate, chmod, xattr, ...)
 *   T<dir>\0   this directory appeared here (made or moved in): its whole tree is new here
 *   !<why>\0   do not trust this list (queue overflow, an event it could not place)
 *
 * Paths are relative to ROOT ("." for ROOT itself), bytes as the kernel has them. "ready\n" is
 * printed once the mark is in place; the program ends when stdin closes.
 *
 * Events on other directories of the file system are dropped as they are read (each directory
 * handle is resolved once). What fanotify cannot see — writes through a shared mapping before
 * the file is released — the caller covers by listing files its processes hold open for writing.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fanotify.h>
#include <unistd.h>

#define MASK (FAN_MODIFY | FAN_ATTRIB | FAN_CLOSE_WRITE | FAN_CREATE | FAN_DELETE | FAN_MOVED_FROM | FAN_MOVED_TO | FAN_ONDIR)

static char root[PATH_MAX];
static size_t root_len;
static int mount_fd;

/* ---- a small hash map of byte strings (to a string value, or NULL) ---- */
struct map {
  char **keys;
  size_t *lens;
  char **vals;
  size_t cap, n;
};

static uint64_t hash(const char *s, size_t n) {
  uint64_t h = 1469598103934665603ULL;
  for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
  return h;
}

static void map_grow(struct map *m);

/* The slot of key `k`, added (value NULL) if missing; `*added` says which. */
static size_t map_slot(struct map *m, const char *k, size_t n, int *added) {
  if (m->n * 2 >= m->cap) map_grow(m);
  size_t i = hash(k, n) & (m->cap - 1);
  while (m->keys[i]) {
    if (m->lens[i] == n && memcmp(m->keys[i], k, n) == 0) {
      *added = 0;
      return i;
    }
    i = (i + 1) & (m->cap - 1);
  }
  m->keys[i] = malloc(n ? n : 1);
  if (!m->keys[i]) abort();
  memcpy(m->keys[i], k, n);
  m->lens[i] = n;
  m->vals[i] = NULL;
  m->n++;
  *added = 1;
  return i;
}

static void map_grow(struct map *m) {
  size_t old = m->cap;
  char **keys = m->keys, **vals = m->vals;
  size_t *lens = m->lens;
  m->cap = old ? old * 2 : 1024;
  m->keys = calloc(m->cap, sizeof(char *));
  m->vals = calloc(m->cap, sizeof(char *));
  m->lens = calloc(m->cap, sizeof(size_t));
  if (!m->keys || !m->vals || !m->lens) abort();
  m->n = 0;
  for (size_t i = 0; i < old; i++) {
    if (!keys[i]) continue;
    int added;
    size_t j = map_slot(m, keys[i], lens[i], &added);
    m->vals[j] = vals[i];
    free(keys[i]);
  }
  free(keys);
  free(vals);
  free(lens);
}

static void map_clear(struct map *m) {
  for (size_t i = 0; i < m->cap; i++) {
    free(m->keys[i]);
    free(m->vals[i]);
    m->keys[i] = m->vals[i] = NULL;
  }
  m->n = 0;
}

/* Records to report: kind byte + relative path (no values). */
static struct map pending;
/* Directory handle -> its path relative to ROOT, or NULL when outside ROOT or gone. */
static struct map handles;
static int doubt;
static char doubt_why[128];

static void note_doubt(const char *why) {
  if (!doubt) snprintf(doubt_why, sizeof doubt_why, "%s", why);
  doubt = 1;
}

/* Path of a directory handle relative to ROOT; NULL if outside it or gone. Cached. */
static const char *resolve(struct file_handle *fh) {
  int added;
  size_t slot = map_slot(&handles, (const char *)fh, sizeof(*fh) + fh->handle_bytes, &added);
  if (!added) return handles.vals[slot];
  int fd = open_by_handle_at(mount_fd, fh, O_PATH);
  if (fd < 0) return NULL; /* gone: its parent's own event covers it */
  char link[64], path[PATH_MAX];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, path, sizeof path - 1);
  close(fd);
  if (n < 0) return NULL;
  path[n] = 0;
  if ((size_t)n == root_len && memcmp(path, root, root_len) == 0) return handles.vals[slot] = strdup(".");
  if ((size_t)n > root_len && memcmp(path, root, root_len) == 0 && path[root_len] == '/') return handles.vals[slot] = strdup(path + root_len + 1);
  return NULL;
}

static void add(char kind, const char *dir, const char *name) {
  char buf[PATH_MAX * 2];
  int n;
  if (!name || !*name) n = snprintf(buf, sizeof buf, "%c%s", kind, dir);
  else if (strcmp(dir, ".") == 0) n = snprintf(buf, sizeof buf, "%c%s", kind, name);
  else n = snprintf(buf, sizeof buf, "%c%s/%s", kind, dir, name);
  if (n < 0 || (size_t)n >= sizeof buf) {
    note_doubt("path too long");
    return;
  }
  int added;
  map_slot(&pending, buf, (size_t)n, &added);
}

static void on_event(struct fanotify_event_metadata *m) {
  if (m->mask & FAN_Q_OVERFLOW) {
    note_doubt("event queue overflow");
    return;
  }
  char *p = (char *)(m + 1), *end = (char *)m + m->event_len;
  while (p < end) {
    struct fanotify_event_info_fid *info = (struct fanotify_event_info_fid *)p;
    if (info->hdr.len == 0) break;
    p += info->hdr.len;
    if (info->hdr.info_type != FAN_EVENT_INFO_TYPE_DFID_NAME && info->hdr.info_type != FAN_EVENT_INFO_TYPE_DFID) continue;
    struct file_handle *fh = (struct file_handle *)info->handle;
    const char *name = info->hdr.info_type == FAN_EVENT_INFO_TYPE_DFID_NAME ? (const char *)(fh->f_handle + fh->handle_bytes) : NULL;
    if (m->mask & (FAN_MOVED_FROM | FAN_MOVED_TO) && m->mask & FAN_ONDIR) map_clear(&handles); /* a directory moved: cached paths may be stale */
    const char *dir = resolve(fh);
    if (!dir) continue;
    if (!name || strcmp(name, ".") == 0) {
      add('F', dir, NULL);
      add('E', dir, NULL);
      continue;
    }
    if (m->mask & (FAN_CREATE | FAN_DELETE | FAN_MOVED_FROM | FAN_MOVED_TO)) add('E', dir, NULL);
    if (m->mask & (FAN_CREATE | FAN_MOVED_TO) && m->mask & FAN_ONDIR) add('T', dir, name);
    if (m->mask & (FAN_MODIFY | FAN_ATTRIB | FAN_CLOSE_WRITE)) add('F', dir, name);
  }
}

static void drain(int fan) {
  static char buf[256 * 1024] __attribute__((aligned(__alignof__(struct fanotify_event_metadata))));
  for (;;) {
    ssize_t n = read(fan, buf, sizeof buf);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) return;
      note_doubt("fanotify read failed");
      return;
    }
    if (n == 0) return;
    struct fanotify_event_metadata *m = (struct fanotify_event_metadata *)buf;
    for (; FAN_EVENT_OK(m, n); m = FAN_EVENT_NEXT(m, n)) {
      if (m->vers != FANOTIFY_METADATA_VERSION) {
        note_doubt("fanotify metadata version");
        continue;
      }
      on_event(m);
      if (m->fd >= 0) close(m->fd);
    }
  }
}

static void out(const char *s, size_t n) {
  while (n) {
    ssize_t w = write(1, s, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      exit(3);
    }
    s += w;
    n -= (size_t)w;
  }
}

static void flush(int fan) {
  drain(fan);
  for (size_t i = 0; i < pending.cap; i++) {
    if (!pending.keys[i]) continue;
    out(pending.keys[i], pending.lens[i]);
    out("", 1);
  }
  if (doubt) {
    out("!", 1);
    out(doubt_why, strlen(doubt_why));
    out("", 1);
  }
  out(".", 2);
  map_clear(&pending);
  doubt = 0;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: ferry-fswatch ROOT\n");
    return 2;
  }
  if (!realpath(argv[1], root)) {
    perror(argv[1]);
    return 2;
  }
  root_len = strlen(root);
  if (root_len == 1) root_len = 0; /* "/" */
  mount_fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (mount_fd < 0) {
    perror(root);
    return 2;
  }
  int fan = fanotify_init(FAN_CLASS_NOTIF | FAN_REPORT_DFID_NAME | FAN_UNLIMITED_QUEUE | FAN_CLOEXEC | FAN_NONBLOCK, O_RDONLY | O_LARGEFILE);
  if (fan < 0) {
    perror("fanotify_init");
    return 1;
  }
  if (fanotify_mark(fan, FAN_MARK_ADD | FAN_MARK_FILESYSTEM, MASK, AT_FDCWD, root) < 0) {
    perror("fanotify_mark");
    return 1;
  }
  map_grow(&pending);
  map_grow(&handles);
  out("ready\n", 6);
  char line[64];
  size_t have = 0;
  struct pollfd pf[2] = {{.fd = fan, .events = POLLIN}, {.fd = 0, .events = POLLIN}};
  for (;;) {
    if (poll(pf, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return 3;
    }
    if (pf[0].revents & POLLIN) drain(fan);
    if (pf[1].revents & (POLLIN | POLLHUP)) {
      ssize_t n = read(0, line + have, sizeof line - 1 - have);
      if (n <= 0) return 0; /* the worker is gone */
      have += (size_t)n;
      char *nl;
      while ((nl = memchr(line, '\n', have))) {
        *nl = 0;
        if (strcmp(line, "flush") == 0) flush(fan);
        size_t used = (size_t)(nl - line) + 1;
        memmove(line, nl + 1, have - used);
        have -= used;
      }
      if (have >= sizeof line - 1) have = 0; /* garbage: drop it */
    }
  }
}
