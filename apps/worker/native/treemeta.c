/*
 * ferry-treemeta: the metadata part of ferry's default verification digest, in C (find piped
 * into JavaScript spent ~1.3 s per side at 100,000 files, all of it while the container was down).
 *
 *   ferry-treemeta ROOT                  every entry's line, sorted (what metadataLines in
 *                                        apps/worker/src/verify/tree-digest.ts gives; a test holds
 *                                        the two to the same bytes)
 *   ferry-treemeta sum ROOT              the digest of those lines: their sum (below), in hex
 *   ferry-treemeta snapshot ROOT FILE    the same sum, and FILE: every entry's path and line hash
 *   ferry-treemeta patch ROOT FILE LIST  the sum of ROOT as it is now, from FILE and a fresh look
 *                                        at only the entries LIST names; exit 3 when it cannot
 *                                        vouch for that (the caller then walks: `sum`)
 *
 * A line: <path> NUL <type> <mode> <uid> <gid> <size|-> <mtime ms> NUL <symlink target>
 * [NUL <group>] "\n", where <path> is relative to ROOT (ROOT itself is "."), <type> is find's %y
 * letter, <mode> the permission bits in octal, <size> is "-" for directories, <mtime ms> the
 * seconds followed by the first three digits of the fraction, and <group> (entries other than
 * directories whose inode has more than one name in the tree) the smallest path of that inode.
 * Names are bytes; as the JavaScript side hashes them as latin1 strings encoded to UTF-8, every
 * byte >= 0x80 is written as its two-byte UTF-8 form.
 *
 * Why a sum: the digest is SHA-256 of each line, added up modulo 2^256. It does not depend on the
 * order of the lines, so it can be brought up to date by taking out the hashes of the entries a
 * final pass touched, as they were, and adding them as they are: the work grows with the change,
 * not with the tree. That is `patch`: FILE was taken (`snapshot`) after the last pre-copy pass,
 * while the container ran; LIST is the final pass's rsync --files-from list (paths relative to
 * ROOT: `p` for an entry, `d/.` for a directory and its entries, deletions included), which is
 * everything that pass could have changed here. Entries with more than one link are refused
 * (their <group> depends on names elsewhere in the tree), as is a ROOT that is not the directory
 * FILE was taken of, and a FILE of another format (taken by an older ferry).
 *
 * Exit 0; 1 when an entry could not be read (as find would); 2 on bad usage, a bad FILE or LIST,
 * or memory; 3 when `patch` cannot vouch.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static void *xrealloc(void *p, size_t n) {
  void *q = realloc(p, n ? n : 1);
  if (!q) {
    fputs("ferry-treemeta: out of memory\n", stderr);
    exit(2);
  }
  return q;
}

/* ---- SHA-256 (FIPS 180-4) ------------------------------------------------------------------ */

typedef struct {
  uint32_t h[8];
  uint64_t bytes;
  unsigned char buf[64];
  size_t n;
} sha256_ctx;

static const uint32_t K256[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be,
    0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa,
    0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85,
    0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3,
    0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f,
    0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void sha256_init(sha256_ctx *s) {
  static const uint32_t h0[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  memcpy(s->h, h0, sizeof h0);
  s->bytes = 0;
  s->n = 0;
}

static void sha256_block(sha256_ctx *s, const unsigned char *p) {
  uint32_t w[64];
  for (int i = 0; i < 16; i++) w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
  for (int i = 16; i < 64; i++) {
    uint32_t s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
    uint32_t s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
    w[i] = w[i - 16] + s0 + w[i - 7] + s1;
  }
  uint32_t a = s->h[0], b = s->h[1], c = s->h[2], d = s->h[3], e = s->h[4], f = s->h[5], g = s->h[6], h = s->h[7];
  for (int i = 0; i < 64; i++) {
    uint32_t t1 = h + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) + ((e & f) ^ (~e & g)) + K256[i] + w[i];
    uint32_t t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
    h = g;
    g = f;
    f = e;
    e = d + t1;
    d = c;
    c = b;
    b = a;
    a = t1 + t2;
  }
  s->h[0] += a;
  s->h[1] += b;
  s->h[2] += c;
  s->h[3] += d;
  s->h[4] += e;
  s->h[5] += f;
  s->h[6] += g;
  s->h[7] += h;
}

static void sha256_update(sha256_ctx *s, const unsigned char *p, size_t n) {
  s->bytes += n;
  while (n) {
    size_t k = 64 - s->n < n ? 64 - s->n : n;
    memcpy(s->buf + s->n, p, k);
    s->n += k;
    p += k;
    n -= k;
    if (s->n == 64) {
      sha256_block(s, s->buf);
      s->n = 0;
    }
  }
}

static void sha256_final(sha256_ctx *s, unsigned char out[32]) {
  uint64_t bits = s->bytes * 8;
  unsigned char pad = 0x80;
  sha256_update(s, &pad, 1);
  pad = 0;
  while (s->n != 56) sha256_update(s, &pad, 1);
  unsigned char len[8];
  for (int i = 0; i < 8; i++) len[i] = (unsigned char)(bits >> (56 - 8 * i));
  sha256_update(s, len, 8);
  for (int i = 0; i < 8; i++) {
    out[4 * i] = (unsigned char)(s->h[i] >> 24);
    out[4 * i + 1] = (unsigned char)(s->h[i] >> 16);
    out[4 * i + 2] = (unsigned char)(s->h[i] >> 8);
    out[4 * i + 3] = (unsigned char)s->h[i];
  }
}

/* ---- the sum: 256-bit big-endian numbers, modulo 2^256 --------------------------------------- */

static unsigned char total[32];

static void sum_add(const unsigned char h[32]) {
  unsigned carry = 0;
  for (int i = 31; i >= 0; i--) {
    unsigned v = (unsigned)total[i] + h[i] + carry;
    total[i] = (unsigned char)v;
    carry = v >> 8;
  }
}

static void sum_sub(const unsigned char h[32]) {
  int borrow = 0;
  for (int i = 31; i >= 0; i--) {
    int v = (int)total[i] - h[i] - borrow;
    borrow = v < 0;
    total[i] = (unsigned char)(v + (borrow ? 256 : 0));
  }
}

static void print_total(void) {
  for (int i = 0; i < 32; i++) printf("%02x", total[i]);
  putchar('\n');
}

/* ---- lines ------------------------------------------------------------------------------------ */

struct entry {
  char *line;        /* path NUL meta NUL target (no group yet) */
  size_t len;
  size_t pathlen;    /* bytes of the path at the start of line */
  dev_t dev;
  ino_t ino;
  int linked;        /* not a directory, nlink > 1 */
  int dir;
  const char *group; /* smallest path of its inode group, when the group has >= 2 names here */
};

static struct entry *entries;
static size_t count, cap;
static int failed;

static char type_letter(mode_t m) {
  if (S_ISREG(m)) return 'f';
  if (S_ISDIR(m)) return 'd';
  if (S_ISLNK(m)) return 'l';
  if (S_ISBLK(m)) return 'b';
  if (S_ISCHR(m)) return 'c';
  if (S_ISFIFO(m)) return 'p';
  if (S_ISSOCK(m)) return 's';
  return 'U';
}

/* The entry of `path` (relative, NUL-terminated) with status `st` and, for a symlink, `target`. */
static struct entry make_entry(const char *path, const struct stat *st, const char *target) {
  size_t plen = strlen(path);
  char t = type_letter(st->st_mode);
  char size[32];
  if (t == 'd') strcpy(size, "-");
  else snprintf(size, sizeof size, "%lld", (long long)st->st_size);
  char meta[160];
  int mlen = snprintf(meta, sizeof meta, "%c %o %u %u %s %lld%03ld", t, (unsigned)(st->st_mode & 07777), (unsigned)st->st_uid,
                      (unsigned)st->st_gid, size, (long long)st->st_mtim.tv_sec, (long)(st->st_mtim.tv_nsec / 1000000));
  size_t tlen = t == 'l' ? strlen(target) : 0;
  size_t len = plen + 1 + (size_t)mlen + 1 + tlen;
  char *line = xrealloc(NULL, len);
  memcpy(line, path, plen);
  line[plen] = 0;
  memcpy(line + plen + 1, meta, (size_t)mlen);
  line[plen + 1 + mlen] = 0;
  memcpy(line + plen + 2 + mlen, target, tlen);
  return (struct entry){line, len, plen, st->st_dev, st->st_ino, t != 'd' && st->st_nlink != 1, t == 'd', NULL};
}

static int visit(const char *fpath, const struct stat *st, int flag, struct FTW *ftw) {
  (void)ftw;
  if (flag == FTW_NS || flag == FTW_DNR) {
    fprintf(stderr, "ferry-treemeta: cannot read %s\n", fpath);
    failed = 1;
    if (flag == FTW_NS) return 0;
  }
  /* nftw walks "." after a chdir: "./a/b" -> "a/b", "." stays "." */
  const char *path = strcmp(fpath, ".") == 0 ? "." : fpath + 2;
  char target[PATH_MAX + 1] = "";
  if (S_ISLNK(st->st_mode)) {
    ssize_t n = readlink(fpath, target, sizeof target - 1);
    if (n < 0) {
      fprintf(stderr, "ferry-treemeta: cannot read link %s\n", fpath);
      failed = 1;
      n = 0;
    }
    target[n] = 0;
  }
  if (count == cap) {
    cap = cap ? cap * 2 : 4096;
    entries = xrealloc(entries, cap * sizeof *entries);
  }
  entries[count++] = make_entry(path, st, target);
  return 0;
}

/* Byte order, a shorter prefix first: what JavaScript's sort does on latin1 strings. */
static int bytes_cmp(const char *a, size_t al, const char *b, size_t bl) {
  int c = memcmp(a, b, al < bl ? al : bl);
  if (c) return c;
  return al < bl ? -1 : al > bl;
}

static int by_line(const void *x, const void *y) {
  const struct entry *a = x, *b = y;
  return bytes_cmp(a->line, a->len, b->line, b->len);
}

static int by_inode(const void *x, const void *y) {
  const struct entry *a = *(struct entry *const *)x, *b = *(struct entry *const *)y;
  if (a->dev != b->dev) return a->dev < b->dev ? -1 : 1;
  if (a->ino != b->ino) return a->ino < b->ino ? -1 : 1;
  return bytes_cmp(a->line, a->pathlen, b->line, b->pathlen);
}

/* One entry's line as hashed and printed: bytes >= 0x80 in their UTF-8 form, group, newline. */
static unsigned char *lbuf;
static size_t llen, lcap;

static void lput(unsigned char c) {
  if (llen + 2 > lcap) {
    lcap = lcap ? lcap * 2 : 8192;
    lbuf = xrealloc(lbuf, lcap);
  }
  if (c < 0x80) lbuf[llen++] = c;
  else {
    lbuf[llen++] = (unsigned char)(0xC0 | (c >> 6));
    lbuf[llen++] = (unsigned char)(0x80 | (c & 0x3F));
  }
}

static void render(const struct entry *e) {
  llen = 0;
  for (size_t i = 0; i < e->len; i++) lput((unsigned char)e->line[i]);
  if (e->group) {
    lput(0);
    for (const char *g = e->group; *g; g++) lput((unsigned char)*g);
  }
  lput('\n');
}

static void line_hash(const struct entry *e, unsigned char out[32]) {
  sha256_ctx s;
  render(e);
  sha256_init(&s);
  sha256_update(&s, lbuf, llen);
  sha256_final(&s, out);
}

/* Walks ROOT (after a chdir into it): every entry, with its hard-link group, sorted. */
static void walk_all(void) {
  if (nftw(".", visit, 64, FTW_PHYS) != 0) {
    fputs("ferry-treemeta: walk failed\n", stderr);
    exit(1);
  }
  /* Hard-link groups: names of one inode (device + inode number), the smallest path first. */
  struct entry **linked = xrealloc(NULL, (count + 1) * sizeof *linked);
  size_t nl = 0;
  for (size_t i = 0; i < count; i++)
    if (entries[i].linked) linked[nl++] = &entries[i];
  qsort(linked, nl, sizeof *linked, by_inode);
  for (size_t i = 0; i < nl;) {
    size_t j = i + 1;
    while (j < nl && linked[j]->dev == linked[i]->dev && linked[j]->ino == linked[i]->ino) j++;
    if (j - i >= 2)
      for (size_t k = i; k < j; k++) linked[k]->group = linked[i]->line; /* path: NUL-terminated */
    i = j;
  }
  /* Groups point into lines by address: give each entry its group's path before sorting moves them. */
  for (size_t i = 0; i < count; i++)
    if (entries[i].group) entries[i].group = strdup(entries[i].group);
  qsort(entries, count, sizeof *entries, by_line);
  free(linked);
}

/* ---- snapshot file: "FTMSNAP2", root dev, root ino, count (u64 each), sum, then per entry in
 * path order: u32 path length, path, u8 flags (1 directory, 2 more than one link), 32-byte hash;
 * then the file offset of each entry (u64 each, in the same order). The offsets let `patch` find
 * an entry by binary search in the mapped file: it reads only the pages of the entries it looks
 * at, so its work grows with the change, not with the tree (reading every entry first cost
 * ~180 ms at a million, on each side, while the container was down). ---- */

#define F_DIR 1
#define F_LINKED 2
static const char MAGIC[8] = {'F', 'T', 'M', 'S', 'N', 'A', 'P', '2'};

static void put64(FILE *f, uint64_t v) {
  if (fwrite(&v, sizeof v, 1, f) != 1) exit(2);
}

static int write_snapshot(const char *file, const struct stat *root) {
  char tmp[PATH_MAX];
  /* Per process: a snapshot still being taken by an earlier worker (stopped mid-walk) never shares it. */
  snprintf(tmp, sizeof tmp, "%s.tmp.%ld", file, (long)getpid());
  FILE *f = fopen(tmp, "w");
  if (!f) {
    fprintf(stderr, "ferry-treemeta: cannot write %s\n", tmp);
    return 2;
  }
  fwrite(MAGIC, 1, sizeof MAGIC, f);
  put64(f, (uint64_t)root->st_dev);
  put64(f, (uint64_t)root->st_ino);
  put64(f, (uint64_t)count);
  long at_total = ftell(f);
  fwrite(total, 1, 32, f); /* rewritten below, once known */
  uint64_t *offsets = xrealloc(NULL, (count + 1) * sizeof *offsets);
  uint64_t at = 64;
  for (size_t i = 0; i < count; i++) {
    offsets[i] = at;
    at += 4 + entries[i].pathlen + 1 + 32;
    unsigned char h[32];
    line_hash(&entries[i], h);
    sum_add(h);
    uint32_t pl = (uint32_t)entries[i].pathlen;
    unsigned char flags = (unsigned char)((entries[i].dir ? F_DIR : 0) | (entries[i].linked ? F_LINKED : 0));
    fwrite(&pl, sizeof pl, 1, f);
    fwrite(entries[i].line, 1, pl, f);
    fputc(flags, f);
    fwrite(h, 1, 32, f);
  }
  if (count && fwrite(offsets, sizeof *offsets, count, f) != count) exit(2);
  free(offsets);
  fseek(f, at_total, SEEK_SET);
  fwrite(total, 1, 32, f);
  if (fflush(f) != 0 || fsync(fileno(f)) != 0 || fclose(f) != 0 || rename(tmp, file) != 0) {
    fprintf(stderr, "ferry-treemeta: cannot write %s\n", file);
    return 2;
  }
  return 0;
}

struct rec {
  const char *path;
  uint32_t plen;
  unsigned char flags;
  const unsigned char *hash;
};

/* The mapped snapshot: `nrecs` entries, found through the offset table at its end. */
static const unsigned char *snap;
static const unsigned char *snap_table;
static size_t nrecs;
static const char *snap_file;

static void bad_snapshot(const char *file) {
  fprintf(stderr, "ferry-treemeta: %s is not a snapshot\n", file);
  exit(2);
}

static void cannot(const char *why, const char *path) {
  fprintf(stderr, "ferry-treemeta: cannot patch: %s%s%s\n", why, path ? ": " : "", path ? path : "");
  exit(3);
}

static struct rec rec_at(size_t i);

static void read_snapshot(const char *file, const struct stat *root) {
  int fd = open(file, O_RDONLY | O_CLOEXEC);
  if (fd < 0) cannot("no snapshot", file);
  struct stat st;
  if (fstat(fd, &st) != 0 || st.st_size < 8 + 24 + 32) bad_snapshot(file);
  const unsigned char *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  if (m == MAP_FAILED) bad_snapshot(file);
  /* One taken by an older ferry (a worker upgraded mid-migration): not used, the caller walks. */
  if (memcmp(m, MAGIC, 7) == 0 && m[7] != MAGIC[7]) cannot("the snapshot is of another format", file);
  if (memcmp(m, MAGIC, 8) != 0) bad_snapshot(file);
  uint64_t dev, ino, n;
  memcpy(&dev, m + 8, 8);
  memcpy(&ino, m + 16, 8);
  memcpy(&n, m + 24, 8);
  if (dev != (uint64_t)root->st_dev || ino != (uint64_t)root->st_ino) cannot("the root is not the directory the snapshot was taken of", NULL);
  memcpy(total, m + 32, 32);
  if (n > ((uint64_t)st.st_size - 64) / (8 + 4 + 1 + 32)) bad_snapshot(file);
  snap = m;
  snap_file = file;
  nrecs = (size_t)n;
  snap_table = m + st.st_size - n * 8;
  /* The layout's ends, cheaply: the first entry right after the header, the last one ending where
   * the table begins (each lookup checks its own entry's bounds). */
  if (nrecs) {
    uint64_t first;
    memcpy(&first, snap_table, 8);
    struct rec last = rec_at(nrecs - 1);
    if (first != 64 || (const unsigned char *)last.hash + 32 != snap_table) bad_snapshot(file);
  } else if (snap_table != m + 64) bad_snapshot(file);
}

/* Entry `i` of the snapshot (bounds checked: a damaged file ends the run, exit 2). */
static struct rec rec_at(size_t i) {
  uint64_t off;
  memcpy(&off, snap_table + i * 8, 8);
  size_t limit = (size_t)(snap_table - snap);
  uint32_t pl;
  if (off < 64 || off > limit - 4) bad_snapshot(snap_file);
  memcpy(&pl, snap + off, 4);
  if (limit - off - 4 < 33 || (size_t)pl > limit - off - 4 - 33) bad_snapshot(snap_file);
  return (struct rec){(const char *)snap + off + 4, pl, snap[off + 4 + pl], snap + off + 5 + pl};
}

/* First record whose path is >= key. */
static size_t lower_bound(const char *key, size_t klen) {
  size_t lo = 0, hi = nrecs;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    struct rec r = rec_at(mid);
    if (bytes_cmp(r.path, r.plen, key, klen) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

static long find_rec(const char *path) {
  size_t n = strlen(path), i = lower_bound(path, n);
  if (i >= nrecs) return -1;
  struct rec r = rec_at(i);
  return r.plen == n && memcmp(r.path, path, n) == 0 ? (long)i : -1;
}

/* ---- paths already brought up to date (each is taken out and put back once) ---- */

static char **done;
static size_t done_cap, done_n;

static uint64_t fnv(const char *s) {
  uint64_t h = 1469598103934665603ULL;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
  return h;
}

/* Adds `path`; 0 when it was there already. */
static int done_add(const char *path) {
  if (2 * (done_n + 1) > done_cap) {
    size_t old = done_cap;
    char **was = done;
    done_cap = done_cap ? done_cap * 2 : 1024;
    done = xrealloc(NULL, done_cap * sizeof *done);
    memset(done, 0, done_cap * sizeof *done);
    for (size_t i = 0; i < old; i++)
      if (was[i]) {
        size_t j = fnv(was[i]) & (done_cap - 1);
        while (done[j]) j = (j + 1) & (done_cap - 1);
        done[j] = was[i];
      }
    free(was);
  }
  size_t j = fnv(path) & (done_cap - 1);
  while (done[j]) {
    if (strcmp(done[j], path) == 0) return 0;
    j = (j + 1) & (done_cap - 1);
  }
  done[j] = strdup(path);
  done_n++;
  return 1;
}

/* ---- entries as they are now, reached from ROOT without following a symlink ---- */

static int rootfd;

static int component_ok(const char *c, size_t n) {
  return n > 0 && n <= NAME_MAX && !(n == 1 && c[0] == '.') && !(n == 2 && c[0] == '.' && c[1] == '.');
}

/* The directory holding `path` (not "."), and in *name its last component; -1 when it is not there as a directory. */
static int open_parent(const char *path, const char **name) {
  int fd = dup(rootfd);
  const char *p = path, *slash;
  while ((slash = strchr(p, '/'))) {
    size_t n = (size_t)(slash - p);
    char comp[NAME_MAX + 1];
    if (!component_ok(p, n)) {
      fprintf(stderr, "ferry-treemeta: bad path in the list: %s\n", path);
      exit(2);
    }
    memcpy(comp, p, n);
    comp[n] = 0;
    int next = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    close(fd);
    if (next < 0) return -1;
    fd = next;
    p = slash + 1;
  }
  if (!component_ok(p, strlen(p))) {
    fprintf(stderr, "ferry-treemeta: bad path in the list: %s\n", path);
    exit(2);
  }
  *name = p;
  return fd;
}

/* The entry at `path` now: 1 and *e filled, or 0 when there is none. */
static int look(const char *path, struct entry *e) {
  struct stat st;
  char target[PATH_MAX + 1] = "";
  if (strcmp(path, ".") == 0) {
    if (fstat(rootfd, &st) != 0) exit(1);
  } else {
    const char *name;
    int pfd = open_parent(path, &name);
    if (pfd < 0) return 0;
    int r = fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW);
    if (r == 0 && S_ISLNK(st.st_mode)) {
      ssize_t n = readlinkat(pfd, name, target, sizeof target - 1);
      if (n < 0) {
        fprintf(stderr, "ferry-treemeta: cannot read link %s\n", path);
        exit(1);
      }
      target[n] = 0;
    }
    int err = errno;
    close(pfd);
    if (r != 0) {
      if (err == ENOENT || err == ENOTDIR) return 0;
      fprintf(stderr, "ferry-treemeta: cannot read %s\n", path);
      exit(1);
    }
  }
  *e = make_entry(path, &st, target);
  return 1;
}

static void remove_below(const char *path);

/* Takes `path`'s hash as it was out of the sum and puts its hash as it is now in. */
static void replace(const char *path) {
  if (!done_add(path)) return;
  long i = find_rec(path);
  struct rec was = i >= 0 ? rec_at((size_t)i) : (struct rec){0};
  if (i >= 0) {
    if (was.flags & F_LINKED) cannot("an entry with more than one link", path);
    sum_sub(was.hash);
  }
  struct entry e;
  int now = look(path, &e);
  if (now) {
    if (e.linked) cannot("an entry with more than one link", path);
    unsigned char h[32];
    line_hash(&e, h);
    sum_add(h);
    free(e.line);
  }
  /* A directory that is gone (or no longer one) took everything below it along. */
  if (i >= 0 && (was.flags & F_DIR) && !(now && e.dir)) remove_below(path);
}

static void remove_below(const char *path) {
  size_t n = strlen(path);
  char *prefix = xrealloc(NULL, n + 2);
  memcpy(prefix, path, n);
  prefix[n] = '/';
  prefix[n + 1] = 0;
  for (size_t j = lower_bound(prefix, n + 1); j < nrecs; j++) {
    struct rec r = rec_at(j);
    if (!(r.plen > n && memcmp(r.path, prefix, n + 1) == 0)) break;
    char *q = strndup(r.path, r.plen);
    if (done_add(q)) {
      if (r.flags & F_LINKED) cannot("an entry with more than one link", q);
      sum_sub(r.hash);
    }
    free(q);
  }
  free(prefix);
}

/* A directory and its entries, as they were and as they are (rsync mirrored them, deletions too). */
static void replace_dir(const char *d) {
  replace(d);
  int top = strcmp(d, ".") == 0;
  size_t n = top ? 0 : strlen(d) + 1;
  char *prefix = xrealloc(NULL, n + 1);
  if (!top) {
    memcpy(prefix, d, n - 1);
    prefix[n - 1] = '/';
  }
  prefix[n] = 0;
  for (size_t j = lower_bound(prefix, n); j < nrecs; j++) {
    struct rec r = rec_at(j);
    if (!(r.plen >= n && memcmp(r.path, prefix, n) == 0)) break;
    if (r.plen == n || memchr(r.path + n, '/', r.plen - n)) continue; /* itself, or deeper */
    if (top && r.plen == 1 && r.path[0] == '.') continue;
    char *q = strndup(r.path, r.plen);
    replace(q);
    free(q);
  }
  int fd;
  if (top) fd = dup(rootfd);
  else {
    const char *name;
    int pfd = open_parent(d, &name);
    fd = pfd < 0 ? -1 : openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (pfd >= 0) close(pfd);
  }
  if (fd >= 0) {
    DIR *dir = fdopendir(fd);
    if (!dir) exit(1);
    struct dirent *de;
    while ((de = readdir(dir))) {
      if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
      size_t k = strlen(de->d_name);
      char *q = xrealloc(NULL, n + k + 1);
      memcpy(q, prefix, n);
      memcpy(q + n, de->d_name, k + 1);
      replace(q);
      free(q);
    }
    closedir(dir);
  }
  free(prefix);
}

static int patch(const char *file, const char *listfile) {
  struct stat root;
  if (fstat(rootfd, &root) != 0) return 1;
  read_snapshot(file, &root);
  FILE *f = fopen(listfile, "r");
  if (!f) {
    fprintf(stderr, "ferry-treemeta: cannot read %s\n", listfile);
    return 2;
  }
  char *item = NULL;
  size_t icap = 0;
  ssize_t n;
  while ((n = getdelim(&item, &icap, 0, f)) > 0) {
    if (item[n - 1] == 0) n--;
    item[n] = 0;
    if (n == 0) continue;
    if (strcmp(item, ".") == 0) replace_dir(".");
    else if (n >= 2 && strcmp(item + n - 2, "/.") == 0) {
      item[n - 2] = 0;
      replace_dir(item);
    } else replace(item);
  }
  fclose(f);
  free(item);
  print_total();
  return 0;
}

static int usage(void) {
  fputs("usage: ferry-treemeta ROOT | sum ROOT | snapshot ROOT FILE | patch ROOT FILE LIST\n", stderr);
  return 2;
}

int main(int argc, char **argv) {
  if (argc < 2) return usage();
  const char *mode = argc == 2 ? "lines" : argv[1];
  const char *root = argc == 2 ? argv[1] : argv[2];
  if (!(strcmp(mode, "lines") == 0 || (strcmp(mode, "sum") == 0 && argc == 3) || (strcmp(mode, "snapshot") == 0 && argc == 4) ||
        (strcmp(mode, "patch") == 0 && argc == 5)))
    return usage();
  for (int i = 3; i < argc; i++)
    if (argv[i][0] != '/') {
      fprintf(stderr, "ferry-treemeta: %s: an absolute path is needed\n", argv[i]);
      return 2;
    }
  rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0 || fchdir(rootfd) != 0) {
    fprintf(stderr, "ferry-treemeta: cannot enter %s\n", root);
    return 1;
  }
  if (strcmp(mode, "patch") == 0) return patch(argv[3], argv[4]);
  walk_all();
  if (strcmp(mode, "lines") == 0) {
    for (size_t i = 0; i < count; i++) {
      render(&entries[i]);
      fwrite(lbuf, 1, llen, stdout);
    }
    if (fflush(stdout) != 0) return 1;
    return failed;
  }
  if (failed) return failed; /* a snapshot or sum of part of the tree vouches for nothing */
  if (strcmp(mode, "sum") == 0) {
    for (size_t i = 0; i < count; i++) {
      unsigned char h[32];
      line_hash(&entries[i], h);
      sum_add(h);
    }
  } else {
    struct stat st;
    if (fstat(rootfd, &st) != 0) return 1;
    int r = write_snapshot(argv[3], &st);
    if (r) return r;
  }
  print_total();
  return fflush(stdout) != 0;
}
