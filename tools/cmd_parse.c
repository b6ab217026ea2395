/*
 * cmd_parse.c - `dotsocr parse`: documents in, the official output set out
 * per page (<stem>.json, <stem>.md, <stem>_nohf.md, <stem>.jpg) and per
 * document (<name>.jsonl, and <name>.md for several pages). The page work
 * is the library's (dots_page_parse); this file decides names, writes the
 * files and keeps a user's data safe:
 *
 *  - every file is written to a temporary name and renamed over its target;
 *    a page's record (.<stem>.record.json) is written last, so a page is
 *    complete exactly when its record exists;
 *  - no output ever replaces an input: such a run is refused before the
 *    model loads (or, for a page found later, that page fails);
 *  - output names stay unique: a document keeps its official name when no
 *    other input claims it, else gets "<name>_<ext>" or "<name>_<hash>";
 *  - --resume redoes a page unless its record says it was made from the
 *    same model, input (size, mtime), mode and options, and its files exist;
 *  - one run at a time per output directory (a lock file); a second run
 *    refuses with a message naming the directory;
 *  - a failing page is reported and the others still run; a run of missing
 *    PDF pages ends that document with one error; exit 0 only if every page
 *    succeeded.
 */
#include "cli.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define MISSING_RUN_ENDS_DOCUMENT 3 /* consecutive missing PDF pages */

static const char help_parse[] =
    "usage: dotsocr parse --model MODEL INPUT... -o OUT_DIR [--mode MODE] [--prompt TEXT] [--system TEXT]\n"
    "                     [--bbox x1,y1,x2,y2] [--pages 1-5,9] [--dpi N] [--min-pixels N] [--max-pixels N]\n"
    "                     [--max-new-tokens N] [--temperature T] [--top-p P] [--seed N] [--threads N]\n"
    "                     [--images-dir DIR] [--resume] [--quiet] [--precision auto|fp32|bf16]\n"
    "                     [--no-fitz-preprocess] [--no-json-constraint] [--no-loop-guard] [--replay-dir DIR]\n"
    "                     [--no-mmap|--mmap] [--mmproj FILE] [--shard K/N|auto|auto/N] [--inputs-from FILE]\n"
    "                     [--dry-run] [--batch N]\n"
    "  Parses images, PDFs, multi-page TIFFs and directories of them. Modes, their\n"
    "  defaults, --prompt and --system: see 'dotsocr help run'. Per page in the\n"
    "  layout modes (layout-all, layout-only, web-parsing):\n"
    "  <stem>.json, <stem>.md, <stem>_nohf.md and <stem>.jpg (the layout drawn),\n"
    "  stem = <name> or <name>_page_<i> (i from 0); per document <name>.jsonl and, for\n"
    "  several pages, <name>.md. <name> is the input's file name without extension;\n"
    "  when two inputs would share it, each gets <name>_<ext> (or <name>_<hash>).\n"
    "  No output may replace an input. --pages is 1-based. --bbox (grounding) is in\n"
    "  source pixels. --images-dir writes Picture crops as files instead of\n"
    "  embedding them. --resume skips a page only when its files exist and were made\n"
    "  from the same model, input and options. --replay-dir DIR post-processes\n"
    "  DIR/<stem>.txt as the model's answer instead of running the model. Images go\n"
    "  through the official fitz_preprocess (MuPDF renders them at --dpi from their\n"
    "  own resolution) unless --no-fitz-preprocess. Exit 0 only if every page\n"
    "  succeeded. Weights: a bf16 model is mapped from its files; a GGUF with\n"
    "  Q8_0/Q4_0/Q4_K matrices is copied and repacked for decode; --no-mmap copies\n"
    "  any model, --mmap maps any model. --precision auto (the default) computes\n"
    "  the products in bf16 on CPUs with native bf16 dot products, as the official\n"
    "  model does, and in fp32 elsewhere; fp32 is the exact path. In the layout modes\n"
    "  the answer is kept valid layout JSON token by token, closed in time when the\n"
    "  budget runs out (--no-json-constraint: off); the loop guard ends repetition\n"
    "  loops of 1024 tokens (--no-loop-guard: off). --shard K/N does the K-th (from 0)\n"
    "  of N equal parts of all selected pages (ordered by output name and page, so\n"
    "  the listing order does not matter); auto takes K and N from Slurm\n"
    "  (SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN, SLURM_ARRAY_TASK_COUNT), auto/N\n"
    "  takes K as it is from Kubernetes' JOB_COMPLETION_INDEX or SLURM_ARRAY_TASK_ID\n"
    "  (so a task resubmitted alone keeps its share). A page is made by one run at a time (a lock\n"
    "  per page); a document's .jsonl and .md are written by the run that finds all\n"
    "  its pages finished. --inputs-from FILE reads more inputs, one per line.\n"
    "  --dry-run prints the pages this run would do and exits. --batch N decodes up\n"
    "  to N pages at once (pages of one document or of several; default: twice the\n"
    "  threads, 4..16, fewer if memory is short): each decode step reads the weights\n"
    "  once for all of them. Outputs are written as pages finish; the files are the\n"
    "  same bytes as with --batch 1.\n";

static dots_state *volatile g_state; /* what SIGINT cancels */
static volatile sig_atomic_t g_stop;

static void on_sigint(int sig) {
    (void)sig;
    g_stop = 1;
    if (g_state) dots_state_cancel(g_state);
}

/* ------------------------------------------------------------- inputs */

typedef struct input {
    char *path;  /* as given (or dir/name) */
    char *name;  /* the output name, unique among the inputs */
    dev_t dev;
    ino_t ino;
    int64_t size, mtime_ns;
    bool ok;     /* stat worked */
    int err;     /* errno of a failed stat */
    /* the plan (plan_pages): */
    int32_t n_pages;  /* -1: the document does not open */
    bool paged;       /* stems carry _page_<i> (PDFs, multi-page TIFFs) */
    bool *sel;        /* [n_pages] selected by --pages */
    bool *todo;       /* [n_pages] this run's share of them */
    bool bad_pages;   /* --pages names a page past the end */
    bool report;      /* this run reports the document's open error */
} input;

typedef struct page_range {
    int64_t a, b; /* 1-based, inclusive */
} page_range;

typedef struct job {
    const char *out_dir, *images_dir, *replay_dir, *model_path, *mmproj;
    page_range *ranges;
    size_t n_ranges;
    bool resume, quiet, tty;
    dots_page_options po;
    input *inputs;
    size_t n_inputs;
    json_t *model_id; /* what identifies the model in a resume record */
    dots_precision precision;
    int n_ok, n_failed, n_skipped;
    int64_t shard_k, shard_n; /* this run does share k of n (0 <= k < n) */
    int64_t n_planned;
    double t0;
} job;

static bool known_ext(const char *name) {
    static const char *const exts[] = {".pdf", ".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".pbm", ".pnm"};
    const char *dot = strrchr(name, '.');
    for (size_t i = 0; dot && i < sizeof exts / sizeof *exts; i++)
        if (strcasecmp(dot, exts[i]) == 0) return true;
    return false;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* "1-5,9" -> ranges; false on any syntax error, 0, a reversed range or a
 * number past INT32_MAX. */
static bool parse_pages(const char *spec, page_range **out, size_t *n_out) {
    size_t n = 1;
    for (const char *p = spec; *p; p++) n += *p == ',';
    page_range *r = calloc(n, sizeof *r);
    if (!r || !*spec) {
        free(r);
        return false;
    }
    const char *p = spec;
    size_t k = 0;
    while (*p) {
        char *end;
        errno = 0;
        if (*p < '0' || *p > '9') goto bad;
        long long a = strtoll(p, &end, 10), b = a;
        if (errno || a < 1 || a > INT32_MAX) goto bad;
        p = end;
        if (*p == '-') {
            if (p[1] < '0' || p[1] > '9') goto bad;
            b = strtoll(p + 1, &end, 10);
            if (errno || b < a || b > INT32_MAX) goto bad;
            p = end;
        }
        r[k].a = a;
        r[k++].b = b;
        if (*p == ',') {
            p++;
            if (!*p) goto bad;
        } else if (*p) {
            goto bad;
        }
    }
    *out = r;
    *n_out = k;
    return true;
bad:
    free(r);
    return false;
}

static bool add_input(input **v, size_t *n, size_t *cap, const char *path) {
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 16;
        input *q = realloc(*v, c * sizeof *q);
        if (!q) return false;
        *v = q;
        *cap = c;
    }
    input *in = &(*v)[*n];
    memset(in, 0, sizeof *in);
    in->path = strdup(path);
    if (!in->path) return false;
    struct stat sb;
    if (stat(path, &sb) == 0) {
        in->ok = true;
        in->dev = sb.st_dev;
        in->ino = sb.st_ino;
        in->size = (int64_t)sb.st_size;
        in->mtime_ns = (int64_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec;
    } else {
        in->err = errno;
    }
    (*n)++;
    return true;
}

/* Collects the files and the documents inside directories (sorted). 0, or
 * an exit code (message printed). */
static int collect_inputs(job *j, int argc, char **argv) {
    input *v = NULL;
    size_t n = 0, cap = 0;
    for (int i = 0; i < argc; i++) {
        struct stat sb;
        if (stat(argv[i], &sb) == 0 && S_ISDIR(sb.st_mode)) {
            DIR *d = opendir(argv[i]);
            if (!d) {
                fprintf(stderr, "dotsocr: error: %s: %s\n", argv[i], strerror(errno));
                return 1;
            }
            char **names = NULL;
            size_t nn = 0, nc = 0;
            struct dirent *e;
            while ((e = readdir(d))) {
                if (e->d_name[0] == '.' || !known_ext(e->d_name)) continue;
                if (nn == nc) {
                    char **q = realloc(names, (nc = nc ? nc * 2 : 16) * sizeof *q);
                    if (!q) break;
                    names = q;
                }
                size_t l = strlen(argv[i]) + strlen(e->d_name) + 2;
                if (!(names[nn] = malloc(l))) break;
                snprintf(names[nn++], l, "%s/%s", argv[i], e->d_name);
            }
            closedir(d);
            if (nn == 0) {
                free(names);
                return cli_usage("parse", "no documents in the directory '%s' (.pdf .png .jpg .jpeg .webp .tif .tiff .pnm)",
                                 argv[i]);
            }
            qsort(names, nn, sizeof *names, cmp_str);
            bool ok = true;
            for (size_t k = 0; k < nn; k++) {
                if (ok) ok = add_input(&v, &n, &cap, names[k]);
                free(names[k]);
            }
            free(names);
            if (!ok) return cli_fail(NULL);
            continue;
        }
        if (!add_input(&v, &n, &cap, argv[i])) return cli_fail(NULL);
    }
    j->inputs = v;
    j->n_inputs = n;
    return 0;
}

/* --inputs-from FILE (- for stdin): one path per line; empty lines and
 * lines starting with # are skipped. The command line's inputs come first. */
static int read_input_list(const char *file, char **args, int n_args, char ***out, size_t *n_out) {
    FILE *f = strcmp(file, "-") == 0 ? stdin : fopen(file, "r");
    if (!f) {
        fprintf(stderr, "dotsocr: error: %s: %s\n", file, strerror(errno));
        return 1;
    }
    size_t n = 0, cap = 64 + (size_t)n_args, lcap = 0;
    char **v = malloc(cap * sizeof *v), *line = NULL;
    ssize_t len;
    bool ok = v != NULL;
    for (int i = 0; ok && i < n_args; i++) ok = (v[n++] = strdup(args[i])) != NULL;
    while (ok && (len = getline(&line, &lcap, f)) >= 0) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = '\0';
        if (len == 0 || line[0] == '#') continue;
        if (n == cap) {
            char **q = realloc(v, (cap *= 2) * sizeof *v);
            if (!q) {
                ok = false;
                break;
            }
            v = q;
        }
        ok = (v[n++] = strdup(line)) != NULL;
    }
    free(line);
    if (f != stdin) fclose(f);
    if (!ok || !v) {
        for (size_t i = 0; v && i < n; i++) free(v[i]);
        free(v);
        return cli_fail(NULL);
    }
    if (n == 0) {
        free(v);
        return cli_usage("parse", "no INPUT given (%s lists none)", file);
    }
    *out = v;
    *n_out = n;
    return 0;
}

static char *base_stem(const char *path) {
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    char *s = strdup(b);
    char *dot = s ? strrchr(s, '.') : NULL;
    if (dot && dot != s) *dot = '\0';
    return s;
}

/* a's outputs could be b's: equal names, or a is "<b>_page_<digits>" */
static bool names_clash(const char *a, const char *b) {
    if (strcmp(a, b) == 0) return true;
    size_t lb = strlen(b);
    if (strncmp(a, b, lb) != 0 || strncmp(a + lb, "_page_", 6) != 0 || !a[lb + 6]) return false;
    for (const char *p = a + lb + 6; *p; p++)
        if (*p < '0' || *p > '9') return false;
    return true;
}

static uint32_t fnv1a(const char *s) {
    uint32_t h = 2166136261u;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

/* The official name (file name without extension) where it is unique;
 * else name_ext; else name_<hash of the real path>. The same inputs give
 * the same names in every run, which --resume relies on. */
static int assign_names(job *j) {
    for (size_t i = 0; i < j->n_inputs; i++)
        if (!(j->inputs[i].name = base_stem(j->inputs[i].path))) return cli_fail(NULL);
    bool *clash = calloc(j->n_inputs + 1, sizeof *clash);
    if (!clash) return cli_fail(NULL);
    for (size_t i = 0; i < j->n_inputs; i++)
        for (size_t k = 0; k < j->n_inputs; k++)
            if (i != k && names_clash(j->inputs[i].name, j->inputs[k].name)) clash[i] = clash[k] = true;
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < j->n_inputs; i++) {
            if (!clash[i]) continue;
            input *in = &j->inputs[i];
            char *stem = base_stem(in->path), buf[PATH_MAX + 64];
            if (!stem) return cli_fail(NULL);
            const char *b = strrchr(in->path, '/'), *dot = strrchr(b ? b + 1 : in->path, '.');
            if (pass == 0 && dot && dot[1]) {
                snprintf(buf, sizeof buf, "%s_%s", stem, dot + 1);
            } else {
                char real[PATH_MAX];
                snprintf(buf, sizeof buf, "%s_%08x", stem, fnv1a(realpath(in->path, real) ? real : in->path));
            }
            free(stem);
            free(in->name);
            if (!(in->name = strdup(buf))) return cli_fail(NULL);
        }
        bool still = false;
        for (size_t i = 0; i < j->n_inputs; i++) {
            bool c = false;
            for (size_t k = 0; k < j->n_inputs; k++)
                if (i != k && names_clash(j->inputs[i].name, j->inputs[k].name)) c = true;
            if (!c && clash[i] && pass == 0) {
                fprintf(stderr, "dotsocr: warning: %s is written as '%s' (another input has the same name)\n",
                        j->inputs[i].path, j->inputs[i].name);
                clash[i] = false;
            }
            still |= c;
        }
        if (!still) break;
        if (pass == 1) {
            free(clash);
            return cli_usage("parse", "%s", "two inputs are the same file");
        }
    }
    for (size_t i = 0; i < j->n_inputs; i++)
        if (clash[i])
            fprintf(stderr, "dotsocr: warning: %s is written as '%s' (another input has the same name)\n", j->inputs[i].path,
                    j->inputs[i].name);
    free(clash);
    return 0;
}

/* Whether writing path would replace one of the inputs. */
static const input *clobbered_input(const job *j, const char *path) {
    struct stat sb;
    if (stat(path, &sb) != 0) return NULL;
    for (size_t i = 0; i < j->n_inputs; i++)
        if (j->inputs[i].ok && j->inputs[i].dev == sb.st_dev && j->inputs[i].ino == sb.st_ino) return &j->inputs[i];
    return NULL;
}

/* Before the model loads: the names every input's outputs will have
 * (pages beyond the first are checked when written). */
static int check_outputs_spare_inputs(const job *j) {
    static const char *const exts[] = {".json", ".md", "_nohf.md", ".jpg", ".jsonl", "_page_0.json", "_page_0.md",
                                       "_page_0_nohf.md", "_page_0.jpg"};
    for (size_t i = 0; i < j->n_inputs; i++)
        for (size_t e = 0; e < sizeof exts / sizeof *exts; e++) {
            char path[PATH_MAX * 2];
            snprintf(path, sizeof path, "%s/%s%s", j->out_dir, j->inputs[i].name, exts[e]);
            const input *in = clobbered_input(j, path);
            if (in)
                return cli_usage("parse", "the output %s would replace the input %s: choose another -o", path, in->path);
        }
    return 0;
}

/* ---------------------------------------------------------- JSON helpers */

/* The bytes as a JSON-safe string: invalid UTF-8 becomes U+FFFD (file
 * names are bytes, JSON text is Unicode). */
static json_t *json_bytes(const char *s) {
    size_t n = strlen(s), k = 0;
    char *o = malloc(n * 3 + 1);
    if (!o) return NULL;
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        size_t len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
        bool ok = len > 0 && i + len <= n;
        for (size_t t = 1; ok && t < len; t++) ok = ((unsigned char)s[i + t] & 0xC0) == 0x80;
        if (ok && len > 1) { /* no overlong forms, surrogates or values past U+10FFFF */
            uint32_t cp = len == 2 ? c & 0x1F : len == 3 ? c & 0x0F : c & 0x07;
            for (size_t t = 1; t < len; t++) cp = cp << 6 | ((unsigned char)s[i + t] & 0x3F);
            ok = (len == 2 && cp >= 0x80) || (len == 3 && cp >= 0x800 && (cp < 0xD800 || cp > 0xDFFF)) ||
                 (len == 4 && cp >= 0x10000 && cp <= 0x10FFFF);
        }
        if (ok) {
            memcpy(o + k, s + i, len);
            k += len;
            i += len;
        } else {
            memcpy(o + k, "\xEF\xBF\xBD", 3);
            k += 3;
            i++;
        }
    }
    json_t *j = json_stringn(o, k);
    free(o);
    return j;
}

static char *read_text(const char *path, size_t *len_out) {
    struct stat sb;
    if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_size > (1 << 30)) return NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t n = (size_t)sb.st_size;
    char *s = malloc(n + 1);
    if (s && fread(s, 1, n, f) != n) {
        free(s);
        s = NULL;
    }
    if (s) s[n] = '\0';
    fclose(f);
    if (len_out) *len_out = n;
    return s;
}

static bool exists(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0;
}

/* What made a page: the model, the input, and every option that changes
 * its outputs. --resume redoes a page whose record differs. */
static json_t *page_fingerprint(const job *j, const input *in, int32_t page) {
    const dots_page_options *o = &j->po;
    char real[PATH_MAX];
    return json_pack("{s:O, s:{s:o, s:I, s:I, s:i}, s:{s:s, s:[i,i,i,i], s:i, s:b, s:I, s:I, s:i, s:f, s:f, s:I, s:s, s:o, s:s, s:b, s:b, "
                     "s:o, s:o}}",
                     "model", j->model_id, "input", "path", json_bytes(realpath(in->path, real) ? real : in->path), "size",
                     (json_int_t)in->size, "mtime_ns", (json_int_t)in->mtime_ns, "page", page, "options", "mode",
                     dots_prompt_mode_name(o->mode), "bbox", o->bbox[0], o->bbox[1], o->bbox[2], o->bbox[3], "dpi", o->dpi,
                     "fitz_preprocess", o->fitz_preprocess, "min_pixels", (json_int_t)o->min_pixels, "max_pixels",
                     (json_int_t)o->max_pixels, "max_new_tokens", o->max_new_tokens, "temperature", (double)o->temperature,
                     "top_p", (double)o->top_p, "seed", (json_int_t)o->seed, "precision",
                     j->precision == DOTS_PRECISION_BF16 ? "bf16" : "fp32", "images_dir",
                     j->images_dir ? json_bytes(j->images_dir) : json_null(), "replay", j->replay_dir ? "yes" : "no",
                     "json_constraint", !o->no_json_constraint, "loop_guard", !o->no_loop_guard, "prompt",
                     o->prompt ? json_bytes(o->prompt) : json_null(), "system", o->system ? json_bytes(o->system) : json_null());
}

/* The model's identity: its path and the size and mtime of every file. */
static json_t *model_fingerprint(const dots_model *m, const char *path, const char *mmproj) {
    char real[PATH_MAX];
    json_t *files = json_array();
    dots_model_info info;
    if (!files || dots_model_get_info(m, &info) != DOTS_OK) {
        json_decref(files);
        return NULL;
    }
    for (int32_t i = 0; i < info.n_files; i++) {
        const char *f = dots_model_file_path(m, i);
        struct stat sb;
        if (f && stat(f, &sb) == 0)
            json_array_append_new(files, json_pack("[o,I,I]", json_bytes(f), (json_int_t)sb.st_size,
                                                   (json_int_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec));
    }
    return json_pack("{s:o, s:o, s:o}", "path", json_bytes(realpath(path, real) ? real : path), "mmproj",
                     mmproj ? json_bytes(mmproj) : json_null(), "files", files);
}

/* ---------------------------------------------------------------- pages */

typedef struct progress {
    const job *j;
    const char *doc;
    int32_t page, n_pages;
    int64_t tokens;
    double t0, last_line;
    dots_stage stage;
} progress;

static bool on_token(void *user, int32_t token, const char *text, size_t len) {
    (void)token, (void)text, (void)len;
    progress *p = user;
    p->tokens++;
    if (p->j->tty && !p->j->quiet && p->tokens % 8 == 0) {
        double s = cli_now() - p->t0;
        fprintf(stderr, "\r\033[K%s page %d/%d: %lld tokens, %.1f tok/s", p->doc, p->page, p->n_pages, (long long)p->tokens,
                s > 0 ? p->tokens / s : 0.0);
    }
    return true;
}

/* Off a terminal (a log file, a batch system) there is no progress bar:
 * a line when each stage starts, and one every 10 s within a long stage. */
static void on_progress(void *user, dots_stage stage, int64_t done, int64_t total) {
    progress *p = user;
    if (p->j->tty || p->j->quiet) return;
    double now = cli_now();
    if (stage == p->stage && now - p->last_line < 10) return;
    if (stage != p->stage && (stage == DOTS_STAGE_POSTPROCESS || stage == DOTS_STAGE_RENDER) && now - p->t0 < 2) {
        p->stage = stage; /* short pages: no line for the quick stages */
        return;
    }
    p->stage = stage;
    p->last_line = now;
    static const char *const what[] = {"rendering", "preprocessing", "vision encoder, block", "prefill, token", "decoding, token",
                                       "post-processing"};
    if (stage == DOTS_STAGE_VISION || stage == DOTS_STAGE_PREFILL || stage == DOTS_STAGE_DECODE)
        fprintf(stderr, "dotsocr: %s page %d/%d: %s %lld/%lld (%.0f s)\n", p->doc, p->page, p->n_pages, what[stage],
                (long long)done, (long long)total, now - p->t0);
    else
        fprintf(stderr, "dotsocr: %s page %d/%d: %s (%.0f s)\n", p->doc, p->page, p->n_pages, what[stage], now - p->t0);
}

/* Writes one output, refusing to replace an input. */
static int write_output(dots_ctx *ctx, const job *j, const char *path, const void *data, size_t len) {
    const input *in = clobbered_input(j, path);
    if (in) {
        fprintf(stderr, "dotsocr: error: %s: would replace the input %s; nothing written (choose another -o)\n", path, in->path);
        return 1;
    }
    if (dots_write_file_atomic(ctx, path, data, len) != DOTS_OK) return cli_fail(ctx);
    return 0;
}

/* A finished page by its record: same fingerprint, every file present. */
static bool page_done(const char *rec_path, const json_t *fp, char **why) {
    json_error_t err;
    json_t *rec = json_load_file(rec_path, 0, &err);
    *why = NULL;
    if (!rec) return false;
    bool ok = true;
    const json_t *old = json_object_get(rec, "made_from");
    if (!json_equal(old, fp)) {
        ok = false;
        const char *key;
        json_t *v;
        json_object_foreach((json_t *)fp, key, v) {
            if (!json_equal(json_object_get(old, key), v)) {
                *why = strdup(key);
                break;
            }
        }
    }
    const json_t *r = json_object_get(rec, "record");
    static const char *const keys[] = {"layout_info_path", "layout_image_path", "md_content_path", "md_content_nohf_path",
                                       "svg_path", "rendered_image_path"};
    for (size_t k = 0; ok && k < sizeof keys / sizeof *keys; k++) {
        const json_t *p = json_object_get(r, keys[k]);
        if (p && (!json_is_string(p) || !exists(json_string_value(p)))) {
            ok = false;
            *why = strdup("a missing output file");
        }
    }
    if (!json_is_object(r)) ok = false;
    json_decref(rec);
    return ok;
}

/* Writes a parsed page's files and then its record (which marks it
 * complete), replacing what an earlier run left there. */
static int write_page(dots_ctx *ctx, job *j, const input *in, int32_t page, const char *stem, const progress *pr,
                      dots_page_result *rp) {
    char path[PATH_MAX * 2], rec_path[PATH_MAX * 2];
    snprintf(rec_path, sizeof rec_path, "%s/.%s.record.json", j->out_dir, stem);
    dots_page_result r = *rp;
    memset(rp, 0, sizeof *rp);
    int rc = 1;
    json_t *rec = json_pack("{s:i, s:i, s:i}", "page_no", page, "input_height", r.source_height_px, "input_width",
                            r.source_width_px);
    json_t *fp = page_fingerprint(j, in, page);
    if (!rec || !fp) goto oom;
    /* a page made again: its old record goes first (until the new one is
     * written the page is not complete), and so do old outputs this run does
     * not make (a layout picture left from another --mode would mix runs) */
    if (unlink(rec_path) != 0 && errno != ENOENT) {
        fprintf(stderr, "dotsocr: error: %s: cannot remove the old record: %s\n", rec_path, strerror(errno));
        goto out;
    }
    const struct {
        const char *suffix;
        bool made;
    } outs[] = {{".json", r.json != NULL},           {".jpg", r.layout_jpeg != NULL}, {".md", r.markdown != NULL},
                {"_nohf.md", r.markdown_nohf != NULL}, {".svg", r.svg != NULL},         {"_rendered.png", r.rendered_png != NULL}};
    for (size_t k = 0; k < sizeof outs / sizeof *outs; k++) {
        snprintf(path, sizeof path, "%s/%s%s", j->out_dir, stem, outs[k].suffix);
        if (!outs[k].made && !clobbered_input(j, path) && unlink(path) != 0 && errno != ENOENT) {
            fprintf(stderr, "dotsocr: error: %s: cannot remove an output of an earlier run: %s\n", path, strerror(errno));
            goto out;
        }
    }
    /* outputs first, then the record that marks the page complete */
    if (r.json) {
        snprintf(path, sizeof path, "%s/%s.json", j->out_dir, stem);
        if (write_output(ctx, j, path, r.json, strlen(r.json))) goto out;
        json_object_set_new(rec, "layout_info_path", json_bytes(path));
    }
    if (r.layout_jpeg) {
        snprintf(path, sizeof path, "%s/%s.jpg", j->out_dir, stem);
        if (write_output(ctx, j, path, r.layout_jpeg, r.layout_jpeg_len)) goto out;
        json_object_set_new(rec, "layout_image_path", json_bytes(path));
    }
    if (r.markdown) {
        snprintf(path, sizeof path, "%s/%s.md", j->out_dir, stem);
        if (write_output(ctx, j, path, r.markdown, strlen(r.markdown))) goto out;
        json_object_set_new(rec, "md_content_path", json_bytes(path));
    }
    if (r.markdown_nohf) {
        snprintf(path, sizeof path, "%s/%s_nohf.md", j->out_dir, stem);
        if (write_output(ctx, j, path, r.markdown_nohf, strlen(r.markdown_nohf))) goto out;
        json_object_set_new(rec, "md_content_nohf_path", json_bytes(path));
    }
    if (r.svg) { /* image-to-svg: the SVG itself, and its render at the source size */
        snprintf(path, sizeof path, "%s/%s.svg", j->out_dir, stem);
        if (write_output(ctx, j, path, r.svg, strlen(r.svg))) goto out;
        json_object_set_new(rec, "svg_path", json_bytes(path));
    }
    if (r.rendered_png) {
        snprintf(path, sizeof path, "%s/%s_rendered.png", j->out_dir, stem);
        if (write_output(ctx, j, path, r.rendered_png, r.rendered_png_len)) goto out;
        json_object_set_new(rec, "rendered_image_path", json_bytes(path));
    }
    if (r.render_error) {
        fprintf(stderr, "%sdotsocr: %s page %d: the SVG was not rendered: %s\n", j->tty ? "\r\033[K" : "", in->path, page + 1,
                r.render_error);
        json_object_set_new(rec, "render_error", json_bytes(r.render_error));
    }
    if (r.filtered) json_object_set_new(rec, "filtered", json_true());
    if (j->po.mode == DOTS_MODE_SCENE_SPOTTING && !r.filtered)
        json_object_set_new(rec, "text_instances", json_integer((json_int_t)r.n_cells));
    /* whether the layout constraint or the loop guard changed the answer */
    json_object_set_new(rec, "constrained", json_boolean(r.constrained));
    json_object_set_new(rec, "loop_guard", json_pack("{s:i, s:I}", "fired", r.loop_guard_fired, "first_at",
                                                     (json_int_t)r.loop_guard_first_at));
    json_object_set_new(rec, "file_path", json_bytes(in->path));
    json_t *whole = json_pack("{s:O, s:O}", "record", rec, "made_from", fp);
    char *text = whole ? json_dumps(whole, 0) : NULL;
    json_decref(whole);
    if (!text) goto oom;
    rc = write_output(ctx, j, rec_path, text, strlen(text));
    free(text);
    if (rc == 0 && !j->quiet) {
        double secs = cli_now() - pr->t0;
        fprintf(stderr, "%sdotsocr: %s page %d/%d: %lld tokens in %.1f s (%.1f tok/s, %s)%s%s", j->tty ? "\r\033[K" : "",
                in->path, page + 1, pr->n_pages, (long long)r.n_tokens, secs, secs > 0 ? r.n_tokens / secs : 0.0,
                dots_stop_reason_name(r.stop), r.filtered ? ", answer not valid JSON: salvaged" : "",
                r.constrained ? ", constrained" : "");
        if (r.loop_guard_fired)
            fprintf(stderr, ", loop guard fired %d time(s), first at token %lld", r.loop_guard_fired, (long long)r.loop_guard_first_at);
        fputc('\n', stderr);
    }
    goto out;
oom:
    fprintf(stderr, "dotsocr: error: %s page %d: out of memory\n", in->path, page + 1);
out:
    json_decref(rec);
    json_decref(fp);
    dots_page_result_free(&r);
    return rc;
}

/* ------------------------------------------------------------ documents */

static void stem_of(char *out, size_t cap, const char *name, bool paged, int32_t page) {
    if (paged) snprintf(out, cap, "%s_page_%d", name, page);
    else snprintf(out, cap, "%s", name);
}

static void report_missing(const input *in, int32_t first, int32_t n, int32_t claimed, bool ends) {
    if (n <= 0) return;
    if (n == 1)
        fprintf(stderr, "dotsocr: error: %s: page %d is missing from the file (the page tree claims %d)%s\n", in->path, first + 1,
                claimed, ends ? "; skipping the rest of the document" : "");
    else
        fprintf(stderr, "dotsocr: error: %s: pages %d-%d are missing from the file (the page tree claims %d)%s\n", in->path,
                first + 1, first + n, claimed, ends ? "; skipping the rest of the document" : "");
}

/* --------------------------------------------------------------- the plan */

static int cmp_input_name(const void *a, const void *b) {
    return strcmp((*(input *const *)a)->name, (*(input *const *)b)->name);
}

/* Opens every input to count its pages, applies --pages, and gives this
 * run its share: the selected pages of all documents, ordered by output
 * name (so the listing order does not matter) and page, cut into n
 * contiguous parts whose sizes differ by at most one. A document that does
 * not open (or whose --pages is out of range) counts as one unit, so that
 * exactly one shard reports it. */
static int plan_pages(dots_ctx *ctx, job *j) {
    input **order = calloc(j->n_inputs + 1, sizeof *order);
    if (!order) return cli_fail(NULL);
    int64_t total = 0;
    for (size_t i = 0; i < j->n_inputs; i++) {
        input *in = order[i] = &j->inputs[i];
        in->n_pages = -1;
        dots_document *doc = NULL;
        if (in->ok && dots_document_open(ctx, in->path, &doc) == DOTS_OK) {
            in->n_pages = dots_document_n_pages(doc);
            in->paged = dots_document_is_pdf(doc) || in->n_pages > 1;
            dots_document_close(doc);
        }
        dots_ctx_clear_error(ctx);
        if (in->n_pages > 0) {
            in->sel = calloc((size_t)in->n_pages, sizeof *in->sel);
            in->todo = calloc((size_t)in->n_pages, sizeof *in->todo);
            if (!in->sel || !in->todo) {
                free(order);
                return cli_fail(NULL);
            }
            for (size_t r = 0; r < j->n_ranges; r++) {
                if (j->ranges[r].a > in->n_pages) in->bad_pages = true;
                for (int64_t p = j->ranges[r].a; p <= j->ranges[r].b && p <= in->n_pages; p++) in->sel[p - 1] = true;
            }
            if (!j->ranges)
                for (int32_t p = 0; p < in->n_pages; p++) in->sel[p] = true;
            for (int32_t p = 0; p < in->n_pages; p++) total += in->sel[p];
        }
        if (in->n_pages <= 0 || in->bad_pages) total++; /* the error's unit */
    }
    qsort(order, j->n_inputs, sizeof *order, cmp_input_name);
    const int64_t lo = total * j->shard_k / j->shard_n, hi = total * (j->shard_k + 1) / j->shard_n;
    int64_t unit = 0;
    for (size_t i = 0; i < j->n_inputs; i++) {
        input *in = order[i];
        if (in->n_pages <= 0 || in->bad_pages) {
            in->report = unit >= lo && unit < hi;
            unit++;
        }
        for (int32_t p = 0; p < in->n_pages; p++) {
            if (!in->sel[p]) continue;
            in->todo[p] = unit >= lo && unit < hi;
            j->n_planned += in->todo[p];
            unit++;
        }
    }
    free(order);
    return 0;
}

/* --dry-run: what this run would do, one line per page. */
static void print_plan(const job *j) {
    for (size_t i = 0; i < j->n_inputs; i++) {
        const input *in = &j->inputs[i];
        if (in->report) printf("%s\terror\n", in->path);
        for (int32_t p = 0; p < in->n_pages; p++)
            if (in->todo && in->todo[p]) printf("%s\t%d\t%s%s%d\n", in->path, p + 1, in->name, in->paged ? "_page_" : "#", p);
    }
}

/* The shard's progress file, rewritten after every page: what a scheduler's
 * log collector or `dotsocr shards` reads. */
static void write_summary(dots_ctx *ctx, const job *j, bool finished) {
    if (j->shard_n <= 1) return;
    char path[PATH_MAX * 2];
    snprintf(path, sizeof path, "%s/.dotsocr-shard-%lld-of-%lld.json", j->out_dir, (long long)j->shard_k, (long long)j->shard_n);
    json_t *o = json_pack("{s:I, s:I, s:I, s:i, s:i, s:i, s:f, s:b}", "shard", (json_int_t)j->shard_k, "of", (json_int_t)j->shard_n,
                          "pages_planned", (json_int_t)j->n_planned, "pages_done", j->n_ok, "pages_failed", j->n_failed,
                          "pages_skipped", j->n_skipped, "seconds", cli_now() - j->t0, "finished", finished);
    char *text = o ? json_dumps(o, 0) : NULL;
    json_decref(o);
    if (text && dots_write_file_atomic(ctx, path, text, strlen(text)) != DOTS_OK) cli_fail(ctx);
    free(text);
}

/* A page is made by one run at a time: two runs of one shard (a requeue
 * racing a slow node), or two parses of one folder, split the pages between
 * them instead of writing the same files at once. flock(2): the lock goes
 * with the process, so a killed run leaves none behind. */
static int lock_page(const job *j, const char *stem) {
    char path[PATH_MAX * 2];
    snprintf(path, sizeof path, "%s/.%s.lock", j->out_dir, stem);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) return -2;
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* ------------------------------------------------------- the page loop
 *
 * Pages go through a dots_batch: up to --batch of them decode together, from
 * one document or several. Pages are fed in input and page order (render,
 * vision and prefill happen as each is added); each page's files are written
 * the moment it finishes, and a document's .jsonl / .md once its last page
 * is settled, from the records in page order. */

typedef struct doc_run {
    input *in;
    dots_document *doc;
    bool *done, *failed;  /* [n_pages] */
    int failures;
    int32_t next;         /* next page to feed */
    int32_t miss_first, miss_n;
    int in_flight;        /* pages in the batch */
    bool fed_all;         /* no more pages to feed */
    bool finished;
} doc_run;

typedef struct flight {
    doc_run *d;
    int32_t page;
    int64_t id;
    int lock;
    char stem[PATH_MAX];
    progress pr;
} flight;

/* The document's files, once every selected page is settled (here or by
 * another run); frees what the document held. */
static void finish_document(dots_ctx *ctx, job *j, doc_run *d) {
    input *in = d->in;
    d->finished = true;
    report_missing(in, d->miss_first, d->miss_n, in->n_pages, false);
    const int32_t n = in->n_pages;
    const bool paged = in->paged;
    bool *done = d->done, *failed = d->failed;
    /* pages of the document that other runs (shards, or a run that held a
     * page's lock) made: finished when their record matches these options.
     * The document files are written once every page is settled, finished
     * or failed here; else by the run that settles the last page. */
    bool complete = done != NULL;
    for (int32_t i = 0; done && i < n; i++) {
        if (!in->sel[i] || done[i] || failed[i]) continue;
        char stem[PATH_MAX], rec[PATH_MAX * 2];
        stem_of(stem, sizeof stem, in->name, paged, i);
        snprintf(rec, sizeof rec, "%s/.%s.record.json", j->out_dir, stem);
        json_t *fp = page_fingerprint(j, in, i);
        char *why = NULL;
        if (fp && page_done(rec, fp, &why)) done[i] = true;
        else complete = false;
        free(why);
        json_decref(fp);
    }
    /* per document: the records of the finished pages in page order, and
     * for several pages the Markdown of all of them. Shards write them only
     * when every selected page is finished: the last one to finish does. */
    if (complete) {
        char *jsonl = NULL, *all_md = NULL;
        size_t jl = 0, ml = 0;
        FILE *jf = open_memstream(&jsonl, &jl), *mf = open_memstream(&all_md, &ml);
        bool first_md = true;
        for (int32_t i = 0; i < n && jf && mf; i++) {
            if (!done[i]) continue;
            char stem[PATH_MAX], path[PATH_MAX * 2];
            stem_of(stem, sizeof stem, in->name, paged, i);
            snprintf(path, sizeof path, "%s/.%s.record.json", j->out_dir, stem);
            json_t *rec = json_load_file(path, 0, NULL);
            char *line = rec ? json_dumps(json_object_get(rec, "record"), 0) : NULL;
            if (line) fprintf(jf, "%s\n", line);
            free(line);
            json_decref(rec);
            snprintf(path, sizeof path, "%s/%s.md", j->out_dir, stem);
            char *md = read_text(path, NULL);
            if (md) {
                fprintf(mf, "%s%s", first_md ? "" : "\n\n", md);
                first_md = false;
            }
            free(md);
        }
        if (jf) fclose(jf);
        if (mf) fclose(mf);
        char path[PATH_MAX * 2];
        snprintf(path, sizeof path, "%s/%s.jsonl", j->out_dir, in->name);
        if (!jsonl || write_output(ctx, j, path, jsonl, jl) != 0) d->failures++;
        if (paged && all_md && !first_md) {
            snprintf(path, sizeof path, "%s/%s.md", j->out_dir, in->name);
            if (write_output(ctx, j, path, all_md, ml) != 0) d->failures++;
        }
        free(jsonl);
        free(all_md);
    }
    free(d->done);
    free(d->failed);
    d->done = d->failed = NULL;
    dots_document_close(d->doc);
    d->doc = NULL;
}

/* Opens a document for feeding; false when it has nothing to feed (it is
 * then settled: its error reported, or another shard's). */
static bool start_document(dots_ctx *ctx, job *j, doc_run *d) {
    input *in = d->in;
    d->fed_all = true;
    d->finished = true;
    if (in->n_pages <= 0 || in->bad_pages) {
        if (!in->report) return false; /* another shard reports it */
        if (!in->ok) fprintf(stderr, "dotsocr: error: %s: %s\n", in->path, strerror(in->err));
        else if (in->bad_pages)
            fprintf(stderr, "dotsocr: error: %s: --pages names a page past the end: the document has %d page(s)\n", in->path,
                    in->n_pages);
        j->n_failed++;
        d->failures++;
        if (in->n_pages <= 0 || !in->ok) {
            dots_document *doc = NULL;
            if (in->ok && dots_document_open(ctx, in->path, &doc) != DOTS_OK) fprintf(stderr, "dotsocr: error: %s\n", dots_errmsg(ctx));
            dots_document_close(doc);
            return false;
        }
    }
    bool any = false;
    for (int32_t p = 0; p < in->n_pages; p++) any |= in->todo[p];
    if (!any && j->shard_n > 1) return false;
    if (dots_document_open(ctx, in->path, &d->doc) != DOTS_OK) {
        fprintf(stderr, "dotsocr: error: %s\n", dots_errmsg(ctx));
        j->n_failed++;
        d->failures++;
        return false;
    }
    d->done = calloc((size_t)in->n_pages, sizeof *d->done);
    d->failed = calloc((size_t)in->n_pages, sizeof *d->failed);
    d->miss_first = -1;
    d->fed_all = false;
    d->finished = false;
    if (!d->done || !d->failed) {
        free(d->done);
        free(d->failed);
        d->done = d->failed = NULL;
        d->failures++;
        d->fed_all = true; /* nothing fed: finish_document closes it */
    }
    return true;
}

/* A page that failed: counted, reported (missing pages in runs of them). */
static void page_failed(dots_ctx *ctx, job *j, doc_run *d, int32_t i, dots_status s, bool at_add) {
    const input *in = d->in;
    if (at_add && dots_document_page_empty(d->doc, i)) { /* as dots.mocr's parser: skipped, not a failure */
        fprintf(stderr, "dotsocr: %s page %d: empty (no area); skipped\n", in->path, i + 1);
        j->n_skipped++;
        d->failed[i] = true; /* settled: the document's files list the others */
        return;
    }
    const bool missing = at_add && dots_document_page_missing(d->doc, i);
    j->n_failed++;
    d->failures++;
    d->failed[i] = true;
    write_summary(ctx, j, false);
    if (missing) {
        if (d->miss_n == 0) d->miss_first = i;
        if (++d->miss_n == MISSING_RUN_ENDS_DOCUMENT) {
            report_missing(in, d->miss_first, d->miss_n, in->n_pages, true);
            d->miss_n = 0;
            for (int32_t k = i + 1; k < in->n_pages; k++) d->failed[k] = in->todo[k]; /* the rest is not in the file */
            d->fed_all = true;
        }
        return;
    }
    report_missing(in, d->miss_first, d->miss_n, in->n_pages, false);
    d->miss_n = 0;
    if (s == DOTS_ERR_CANCELLED)
        fprintf(stderr, "%sdotsocr: error: %s page %d: interrupted\n", j->tty ? "\n" : "", in->path, i + 1);
    else
        fprintf(stderr, "%sdotsocr: error: %s page %d: %s\n", j->tty ? "\n" : "", in->path, i + 1, dots_errmsg(ctx));
}

/* Feeds d's next page to do into the batch as flight f. Returns true when
 * f now holds a page in the batch. */
static bool feed_page(dots_ctx *ctx, job *j, dots_batch *b, doc_run *d, flight *f) {
    input *in = d->in;
    const int32_t n = in->n_pages;
    while (!d->fed_all && !g_stop) {
        const int32_t i = d->next++;
        if (i >= n) {
            d->fed_all = true;
            break;
        }
        if (!in->todo[i]) continue;
        memset(f, 0, sizeof *f);
        stem_of(f->stem, sizeof f->stem, in->name, in->paged, i);
        int lock = lock_page(j, f->stem);
        if (lock == -1) {
            if (!j->quiet) fprintf(stderr, "dotsocr: %s page %d/%d: being made by another run; skipped\n", in->path, i + 1, n);
            j->n_skipped++;
            continue;
        }
        if (j->resume) {
            char rec[PATH_MAX * 2];
            snprintf(rec, sizeof rec, "%s/.%s.record.json", j->out_dir, f->stem);
            json_t *fp = page_fingerprint(j, in, i);
            char *why = NULL;
            bool ok = fp && page_done(rec, fp, &why);
            json_decref(fp);
            if (ok) {
                if (!j->quiet) fprintf(stderr, "dotsocr: %s page %d/%d: already done (--resume)\n", in->path, i + 1, n);
                j->n_ok++;
                d->done[i] = true;
                free(why);
                if (lock >= 0) close(lock);
                continue;
            }
            if (why && !j->quiet) fprintf(stderr, "dotsocr: %s page %d/%d: redoing it (%s changed)\n", in->path, i + 1, n, why);
            free(why);
        }
        f->d = d;
        f->page = i;
        f->lock = lock;
        f->pr = (progress){j, in->path, i + 1, n, 0, cli_now(), cli_now(), (dots_stage)-1};
        dots_page_options po = j->po;
        po.stem = f->stem;
        po.on_token = on_token;
        po.on_progress = on_progress;
        po.user = &f->pr;
        char *answer = NULL;
        if (j->replay_dir) {
            char path[PATH_MAX * 2];
            snprintf(path, sizeof path, "%s/%s.txt", j->replay_dir, f->stem);
            if (!(answer = read_text(path, NULL))) {
                fprintf(stderr, "dotsocr: error: %s: no replay answer: %s\n", path, strerror(errno));
                j->n_failed++;
                d->failures++;
                d->failed[i] = true;
                if (lock >= 0) close(lock);
                continue;
            }
            po.answer = answer;
        }
        dots_status s = dots_batch_add_page(ctx, b, d->doc, i, &po, &f->id);
        free(answer);
        if (s != DOTS_OK) {
            page_failed(ctx, j, d, i, s, true);
            if (lock >= 0) close(lock);
            continue;
        }
        report_missing(in, d->miss_first, d->miss_n, n, false);
        d->miss_n = 0;
        d->in_flight++;
        return true;
    }
    return false;
}

/* Takes finished page id out of the batch and writes its files. */
static void land_page(dots_ctx *ctx, job *j, dots_batch *b, flight *f) {
    doc_run *d = f->d;
    dots_page_result r = {0};
    dots_status s = dots_batch_take_page(ctx, b, f->id, &r);
    if (s == DOTS_OK && write_page(ctx, j, d->in, f->page, f->stem, &f->pr, &r) == 0) {
        j->n_ok++;
        d->done[f->page] = true;
        write_summary(ctx, j, false);
    } else if (s != DOTS_OK) {
        page_failed(ctx, j, d, f->page, s, false);
    } else {
        j->n_failed++;
        d->failures++;
        d->failed[f->page] = true;
        write_summary(ctx, j, false);
    }
    dots_page_result_free(&r);
    if (f->lock >= 0) close(f->lock);
    f->d = NULL;
    d->in_flight--;
}

/* Every input's pages through one batch of up to n_batch pages. Returns the
 * number of documents with a failure. */
static int process_inputs(dots_ctx *ctx, dots_state *st, job *j, int n_batch) {
    doc_run *docs = calloc(j->n_inputs + 1, sizeof *docs);
    flight *fl = calloc((size_t)n_batch, sizeof *fl);
    dots_batch *b = NULL;
    if (!docs || !fl || dots_batch_create(ctx, st, n_batch, &b) != DOTS_OK) {
        free(docs);
        free(fl);
        cli_fail(docs && fl ? ctx : NULL);
        return 1;
    }
    for (size_t i = 0; i < j->n_inputs; i++) docs[i].in = &j->inputs[i];
    size_t cur = 0;     /* the document being fed */
    bool cur_started = false;
    int n_flight = 0;
    for (;;) {
        /* fill the batch in input and page order */
        while (n_flight < n_batch && cur < j->n_inputs && !g_stop) {
            doc_run *d = &docs[cur];
            if (!cur_started) {
                cur_started = true;
                if (!start_document(ctx, j, d)) {
                    cur++, cur_started = false;
                    continue;
                }
            }
            flight *f = NULL;
            for (int k = 0; k < n_batch && !f; k++)
                if (!fl[k].d) f = &fl[k];
            if (feed_page(ctx, j, b, d, f)) {
                n_flight++;
                continue;
            }
            if (d->in_flight == 0 && !d->finished) finish_document(ctx, j, d);
            cur++, cur_started = false;
        }
        if (n_flight == 0) break;
        if (dots_batch_running(b) > 0 && dots_batch_step(ctx, b) != DOTS_OK) dots_ctx_clear_error(ctx); /* its runs end with it */
        for (int64_t id; (id = dots_batch_finished_id(b)) >= 0;) {
            flight *f = NULL;
            for (int k = 0; k < n_batch && !f; k++)
                if (fl[k].d && fl[k].id == id) f = &fl[k];
            doc_run *d = f->d;
            land_page(ctx, j, b, f);
            n_flight--;
            if (d->fed_all && d->in_flight == 0 && !d->finished) finish_document(ctx, j, d);
        }
    }
    int failed_docs = 0;
    for (size_t i = 0; i < j->n_inputs; i++) {
        if (docs[i].doc) { /* interrupted before its pages were all fed */
            free(docs[i].done);
            free(docs[i].failed);
            dots_document_close(docs[i].doc);
        }
        failed_docs += docs[i].failures > 0;
    }
    dots_batch_free(b);
    free(fl);
    free(docs);
    return failed_docs;
}

int dots_cmd_parse(int argc, char **argv) {
    static const struct option opts[] = {CLI_PAGE_OPTIONS,
                                         {"output", required_argument, NULL, 'o'},
                                         {"pages", required_argument, NULL, 'g'},
                                         {"images-dir", required_argument, NULL, 'I'},
                                         {"resume", no_argument, NULL, 'r'},
                                         {"replay-dir", required_argument, NULL, 1003},
                                         {"shard", required_argument, NULL, 1004},
                                         {"inputs-from", required_argument, NULL, 1005},
                                         {"dry-run", no_argument, NULL, 1006},
                                         {"batch", required_argument, NULL, 1007},
                                         {"quiet", no_argument, NULL, 'q'},
                                         {"verbose", no_argument, NULL, 'v'},
                                         {"help", no_argument, NULL, 'h'},
                                         {0, 0, 0, 0}};
    job j = {0};
    cli_page_args a;
    cli_page_args_init(&a);
    const char *pages = NULL, *inputs_from = NULL;
    bool dry_run = false;
    int64_t n_batch = 0;
    j.shard_n = 1;
    int c, rc;
    while ((c = getopt_long(argc, argv, "o:vqh", opts, NULL)) != -1) {
        if ((rc = cli_page_option("parse", c, optarg, &a)) >= 0) {
            if (rc) return rc;
            continue;
        }
        switch (c) {
        case 'o': j.out_dir = optarg; break;
        case 'g': pages = optarg; break;
        case 'I': j.images_dir = optarg; break;
        case 'r': j.resume = true; break;
        case 'q': j.quiet = true; cli_quiet(); break;
        case 1003: j.replay_dir = optarg; break;
        case 1004: if (cli_shard("parse", optarg, &j.shard_k, &j.shard_n)) return DOTS_EXIT_USAGE; break;
        case 1005: inputs_from = optarg; break;
        case 1006: dry_run = true; break;
        case 1007: if (cli_int("parse", "--batch", optarg, 1, 64, &n_batch)) return DOTS_EXIT_USAGE; break;
        case 'v': cli_more_verbose(); break;
        case 'h': fputs(help_parse, stdout); return 0;
        default: return cli_bad_option("parse", argc, argv, opts, "o:vqh");
        }
    }
    if ((rc = cli_page_args_check("parse", &a))) return rc;
    if (!j.out_dir) return cli_usage("parse", "%s", "-o OUT_DIR is required");
    if (!*j.out_dir) return cli_usage("parse", "%s", "-o OUT_DIR is empty");
    if (optind >= argc && !inputs_from) return cli_usage("parse", "%s", "no INPUT given");
    if (pages && !parse_pages(pages, &j.ranges, &j.n_ranges))
        return cli_usage("parse", "bad --pages '%s': 1-based pages and ranges such as 1-5,9 (up to %d)", pages, INT32_MAX);
    j.po = a.po;
    j.model_path = a.model;
    j.mmproj = a.mmproj;
    j.po.images_dir = j.images_dir;
    j.tty = isatty(2);
    char **listed = NULL;
    size_t n_listed = 0;
    rc = inputs_from ? read_input_list(inputs_from, argv + optind, argc - optind, &listed, &n_listed) : 0;
    if (rc == 0) rc = collect_inputs(&j, inputs_from ? (int)n_listed : argc - optind, inputs_from ? listed : argv + optind);
    for (size_t i = 0; i < n_listed; i++) free(listed[i]);
    free(listed);
    if (rc == 0) rc = assign_names(&j);
    dots_ctx *ctx = NULL;
    dots_model *model = NULL;
    dots_state *st = NULL;
    double t0 = j.t0 = cli_now();
    if (rc == 0 && !(ctx = cli_make_ctx())) rc = 1;
    if (rc == 0) rc = plan_pages(ctx, &j);
    if (rc == 0 && dry_run) {
        print_plan(&j);
        goto done;
    }
    if (rc == 0 && (cli_ensure_dir(j.out_dir) != 0 || (j.images_dir && cli_ensure_dir(j.images_dir) != 0))) rc = 1;
    if (rc == 0) rc = check_outputs_spare_inputs(&j);
    if (rc != 0) goto done;
    if (cli_open_model(ctx, j.model_path, j.mmproj, a.placement, &model) != DOTS_OK ||
        dots_state_create(ctx, model, (int32_t)a.threads, &st) != DOTS_OK ||
        dots_state_set_precision(ctx, st, a.precision) != DOTS_OK) {
        rc = cli_fail(ctx);
        goto done;
    }
    j.precision = dots_state_precision(st);
    if (!n_batch) n_batch = cli_default_batch(model, a.threads, &j.po, j.precision);
    if (!(j.model_id = model_fingerprint(model, j.model_path, j.mmproj))) {
        rc = cli_fail(NULL);
        goto done;
    }
    g_stop = 0;
    g_state = st;
    signal(SIGINT, on_sigint);
    if (process_inputs(ctx, st, &j, (int)n_batch) != 0) rc = 1;
    signal(SIGINT, SIG_DFL);
    g_state = NULL;
    write_summary(ctx, &j, !g_stop);
    if (!j.quiet)
        fprintf(stderr, "dotsocr: %d page(s) done, %d failed, %d skipped (made by another run), %zu document(s), %.1f s, "
                "up to %lld decoded at once%s\n",
                j.n_ok, j.n_failed, j.n_skipped, j.n_inputs, cli_now() - t0, (long long)n_batch, g_stop ? " (interrupted)" : "");
    if (j.n_failed || g_stop) rc = 1;
done:
    for (size_t i = 0; i < j.n_inputs; i++) {
        free(j.inputs[i].path);
        free(j.inputs[i].name);
        free(j.inputs[i].sel);
        free(j.inputs[i].todo);
    }
    free(j.inputs);
    free(j.ranges);
    json_decref(j.model_id);
    dots_state_free(st);
    dots_model_close(model);
    dots_ctx_free(ctx);
    return rc;
}
