/* Testbed description (testbed.h) from /proc/cpuinfo, the NVIDIA driver's
 * /proc entries and the kernels library. Only the SIMD-relevant CPU flags
 * are kept: the full list differs between kernels and hypervisors on the
 * same hardware and would split one machine's series in two. */
#include "worker/testbed.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "kernels/kernels.h"

/* Flags (x86 "flags", Arm "Features") that change which kernels run. */
static const char *const simd_flags[] = {
    "sse4_1", "sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512dq",
    "avx512vl", "avx512_bf16", "avx512_vnni", "avx_vnni", "amx_bf16", "amx_tile", "asimd",
    "asimdhp", "asimddp", "sve", "sve2", "bf16", "i8mm", NULL};

/* Value of the first "key<spaces>: value" line of /proc/cpuinfo into out. */
static int cpuinfo_value(const char *key, char *out, size_t n)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f == NULL)
        return -1;
    char line[8192];
    size_t klen = strlen(key);
    int found = -1;
    while (found < 0 && fgets(line, sizeof line, f)) {
        if (strncmp(line, key, klen) != 0 || (line[klen] != ' ' && line[klen] != '\t' &&
                                              line[klen] != ':'))
            continue;
        char *colon = strchr(line, ':');
        if (colon == NULL)
            continue;
        colon++;
        while (*colon == ' ')
            colon++;
        colon[strcspn(colon, "\n")] = '\0';
        snprintf(out, n, "%s", colon);
        found = 0;
    }
    fclose(f);
    return found;
}

/* The SIMD flags present in a space-separated flag list, in table order. */
static json_t *flags_json(const char *list)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && simd_flags[i]; i++) {
        size_t len = strlen(simd_flags[i]);
        for (const char *p = list; (p = strstr(p, simd_flags[i])) != NULL; p += len)
            if ((p == list || p[-1] == ' ') && (p[len] == ' ' || p[len] == '\0')) {
                json_array_append_new(arr, json_string(simd_flags[i]));
                break;
            }
    }
    return arr;
}

/* "Model: NAME" from the first GPU the NVIDIA driver lists, if any. */
static int gpu_model(char *out, size_t n)
{
    DIR *d = opendir("/proc/driver/nvidia/gpus");
    if (d == NULL)
        return -1;
    struct dirent *e;
    int found = -1;
    while (found < 0 && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[512], line[256];
        snprintf(path, sizeof path, "/proc/driver/nvidia/gpus/%s/information", e->d_name);
        FILE *f = fopen(path, "r");
        while (f && fgets(line, sizeof line, f))
            if (strncmp(line, "Model:", 6) == 0) {
                char *v = line + 6;
                while (*v == ' ' || *v == '\t')
                    v++;
                v[strcspn(v, "\n")] = '\0';
                snprintf(out, n, "%s", v);
                found = 0;
                break;
            }
        if (f)
            fclose(f);
    }
    closedir(d);
    return found;
}

json_t *pb_testbed(int threads)
{
    char cpu[256] = "", flags[8192] = "", gpu[256] = "";
    struct utsname u;
    if (cpuinfo_value("model name", cpu, sizeof cpu) != 0 &&
        cpuinfo_value("Hardware", cpu, sizeof cpu) != 0)
        snprintf(cpu, sizeof cpu, "unknown");
    if (cpuinfo_value("flags", flags, sizeof flags) != 0)
        cpuinfo_value("Features", flags, sizeof flags);
    if (threads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        threads = n > 0 ? (int)n : 1;
    }
    json_t *fl = flags_json(flags);
    int have_gpu = gpu_model(gpu, sizeof gpu) == 0;
    return json_pack("{s:s, s:o, s:s?, s:i, s:s, s:s, s:s}", "cpu_model", cpu, "cpu_flags",
                     fl ? fl : json_array(), "gpu_model", have_gpu ? gpu : NULL, "threads",
                     threads, "isa", pk_isa_name(pk_cpu_isa()), "blas", pk_blas_name(), "arch",
                     uname(&u) == 0 ? u.machine : "unknown");
}
