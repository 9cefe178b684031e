#include "core/file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

kiln_status kiln_file_read(const char *path, size_t max_bytes, void **out, size_t *len) {
  *out = NULL;
  *len = 0;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return kiln_error(KILN_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return kiln_error(KILN_ERR_IO, "'%s' is not a regular file", path);
  }
  if ((unsigned long long)st.st_size > max_bytes) {
    close(fd);
    return kiln_error(KILN_ERR_IO, "'%s' is too large (%lld bytes)", path, (long long)st.st_size);
  }
  size_t n = (size_t)st.st_size;
  char *buf = malloc(n ? n : 1);
  if (!buf) {
    close(fd);
    return kiln_error(KILN_ERR_OUT_OF_MEMORY, "out of memory reading '%s'", path);
  }
  size_t got = 0;
  while (got < n) {
    ssize_t r = read(fd, buf + got, n - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      free(buf);
      close(fd);
      return kiln_error(KILN_ERR_IO, "cannot read '%s': %s", path, r < 0 ? strerror(errno) : "short read");
    }
    got += (size_t)r;
  }
  close(fd);
  *out = buf;
  *len = n;
  return NULL;
}

kiln_status kiln_file_write_atomic(const char *path, const void *data, size_t len) {
  size_t plen = strlen(path);
  char *tmp = malloc(plen + 32);
  KILN_CHECK_ALLOC(tmp);
  snprintf(tmp, plen + 32, "%s.tmp.%ld", path, (long)getpid());
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    kiln_status st = kiln_error(KILN_ERR_IO, "cannot write '%s': %s", path, strerror(errno));
    free(tmp);
    return st;
  }
  const char *p = data;
  size_t done = 0;
  while (done < len) {
    ssize_t w = write(fd, p + done, len - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      kiln_status st = kiln_error(KILN_ERR_IO, "cannot write '%s': %s", path, strerror(errno));
      close(fd);
      unlink(tmp);
      free(tmp);
      return st;
    }
    done += (size_t)w;
  }
  if (fsync(fd) != 0 || close(fd) != 0) {
    kiln_status st = kiln_error(KILN_ERR_IO, "cannot write '%s': %s", path, strerror(errno));
    unlink(tmp);
    free(tmp);
    return st;
  }
  if (rename(tmp, path) != 0) {
    kiln_status st = kiln_error(KILN_ERR_IO, "cannot write '%s': %s", path, strerror(errno));
    unlink(tmp);
    free(tmp);
    return st;
  }
  free(tmp);
  return NULL;
}

char *kiln_path_dirname(const char *path) {
  const char *slash = strrchr(path, '/');
  if (!slash) return strdup(".");
  if (slash == path) return strdup("/");
  return strndup(path, (size_t)(slash - path));
}
