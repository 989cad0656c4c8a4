/*
 * ferry-treemeta ROOT: the metadata part of ferry's default verification digest, computed in
 * one pass of C instead of `find -printf` piped into JavaScript (which spent as long splitting,
 * formatting and sorting as find spent walking: ~1.3 s per side at 100,000 files, all of it while
 * the container is down).
 *
 * Writes to stdout exactly the bytes apps/worker/src/verify/tree-digest.ts hashes for the metadata
 * of every entry below ROOT (see metadataLines there; the two must agree byte for byte, a test
 * holds them to it): one line per entry, sorted,
 *
 *   <path> NUL <type> <mode> <uid> <gid> <size|-> <mtime ms> NUL <symlink target> [NUL <group>]
 *
 * each followed by "\n", where <path> is relative to ROOT (ROOT itself is "."), <type> is find's
 * %y letter, <mode> the permission bits in octal, <size> is "-" for directories, <mtime ms> the
 * seconds followed by the first three digits of the fraction, and <group> (entries other than
 * directories whose inode has more than one name in the tree) the smallest path of that inode.
 * Names are bytes; as the JavaScript side hashes them as latin1 strings encoded to UTF-8, every
 * byte >= 0x80 is written as its two-byte UTF-8 form.
 *
 * Exit 0; 1 when an entry could not be read (as find would), 2 on bad usage or memory.
 */
#define _GNU_SOURCE
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct entry {
  char *line;        /* path NUL meta NUL target (no group yet) */
  size_t len;
  size_t pathlen;    /* bytes of the path at the start of line */
  dev_t dev;
  ino_t ino;
  int linked;        /* not a directory, nlink > 1 */
  const char *group; /* smallest path of its inode group, when the group has >= 2 names here */
};

static struct entry *entries;
static size_t count, cap;
static int failed;

static void *xrealloc(void *p, size_t n) {
  void *q = realloc(p, n);
  if (!q) {
    fputs("ferry-treemeta: out of memory\n", stderr);
    exit(2);
  }
  return q;
}

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

static int visit(const char *fpath, const struct stat *st, int flag, struct FTW *ftw) {
  (void)ftw;
  if (flag == FTW_NS || flag == FTW_DNR) {
    fprintf(stderr, "ferry-treemeta: cannot read %s\n", fpath);
    failed = 1;
    if (flag == FTW_NS) return 0;
  }
  /* nftw walks "." after a chdir: "./a/b" -> "a/b", "." stays "." */
  const char *path = strcmp(fpath, ".") == 0 ? "." : fpath + 2;
  size_t plen = strlen(path);
  char t = type_letter(st->st_mode);
  char target[4097] = "";
  if (t == 'l') {
    ssize_t n = readlink(fpath, target, sizeof target - 1);
    if (n < 0) {
      fprintf(stderr, "ferry-treemeta: cannot read link %s\n", fpath);
      failed = 1;
      n = 0;
    }
    target[n] = 0;
  }
  char size[32];
  if (t == 'd') strcpy(size, "-");
  else snprintf(size, sizeof size, "%lld", (long long)st->st_size);
  char meta[160];
  int mlen = snprintf(meta, sizeof meta, "%c %o %u %u %s %lld%03ld", t, (unsigned)(st->st_mode & 07777), (unsigned)st->st_uid,
                      (unsigned)st->st_gid, size, (long long)st->st_mtim.tv_sec, (long)(st->st_mtim.tv_nsec / 1000000));
  size_t tlen = strlen(target);
  size_t len = plen + 1 + (size_t)mlen + 1 + tlen;
  char *line = xrealloc(NULL, len);
  memcpy(line, path, plen);
  line[plen] = 0;
  memcpy(line + plen + 1, meta, (size_t)mlen);
  line[plen + 1 + mlen] = 0;
  memcpy(line + plen + 2 + mlen, target, tlen);
  if (count == cap) {
    cap = cap ? cap * 2 : 4096;
    entries = xrealloc(entries, cap * sizeof *entries);
  }
  entries[count++] = (struct entry){line, len, plen, st->st_dev, st->st_ino, t != 'd' && st->st_nlink != 1, NULL};
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

static char outbuf[1 << 16];
static size_t outlen;

static void out_byte(unsigned char c) {
  if (outlen + 2 > sizeof outbuf) {
    fwrite(outbuf, 1, outlen, stdout);
    outlen = 0;
  }
  if (c < 0x80) outbuf[outlen++] = (char)c;
  else {
    outbuf[outlen++] = (char)(0xC0 | (c >> 6));
    outbuf[outlen++] = (char)(0x80 | (c & 0x3F));
  }
}

static void out_bytes(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++) out_byte((unsigned char)s[i]);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fputs("usage: ferry-treemeta ROOT\n", stderr);
    return 2;
  }
  if (chdir(argv[1]) != 0) {
    fprintf(stderr, "ferry-treemeta: cannot enter %s\n", argv[1]);
    return 1;
  }
  if (nftw(".", visit, 64, FTW_PHYS) != 0) {
    fputs("ferry-treemeta: walk failed\n", stderr);
    return 1;
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
  char **groups = xrealloc(NULL, (count + 1) * sizeof *groups);
  for (size_t i = 0; i < count; i++) groups[i] = entries[i].group ? strdup(entries[i].group) : NULL;
  for (size_t i = 0; i < count; i++) entries[i].group = groups[i];
  qsort(entries, count, sizeof *entries, by_line);
  for (size_t i = 0; i < count; i++) {
    out_bytes(entries[i].line, entries[i].len);
    if (entries[i].group) {
      out_byte(0);
      out_bytes(entries[i].group, strlen(entries[i].group));
    }
    out_byte('\n');
  }
  fwrite(outbuf, 1, outlen, stdout);
  if (fflush(stdout) != 0) return 1;
  return failed;
}
