/* demo-hello: a compiled tool whose binary embeds its install prefix (a conda "binary
 * placeholder"): the installer patches DEMO_PREFIX in the executable, and envrun relocates it. */
#include <stdio.h>
#include <string.h>

#ifndef DEMO_PREFIX
#error "build with -DDEMO_PREFIX=\"<placeholder>\""
#endif

static const char prefix[] = DEMO_PREFIX;

int main(int argc, char** argv) {
  char path[4096];
  /* strlen, not sizeof: after patching, the string is shorter and NUL-padded. */
  snprintf(path, sizeof path, "%s/share/demo-hello/greeting.txt", prefix);
  FILE* f = fopen(path, "r");
  if (!f) {
    fprintf(stderr, "demo-hello: cannot open %s (is the prefix relocated correctly?)\n", path);
    return 1;
  }
  char line[256] = {0};
  if (!fgets(line, sizeof line, f)) line[0] = 0;
  fclose(f);
  line[strcspn(line, "\n")] = 0;
  /* Through a volatile pointer: the compiler would otherwise fold strlen() of the constant
   * (the 255-byte placeholder) at build time. */
  const char* volatile patched = prefix;
  printf("%s (from %s, %zu bytes of prefix)\n", line, patched, strlen(patched));
  if (argc > 1 && strcmp(argv[1], "--prefix") == 0) printf("%s\n", prefix);
  return 0;
}
