/*
 * cmd_shards.c - `dotsocr shards OUT_DIR`: the progress files that
 * `parse --shard` leaves in its output folder, one line per shard and the
 * totals. Exit 0 only when every shard of the split has finished with no
 * failed page: a job script's last step can gate on it.
 */
#include "cli.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static const char help_shards[] =
    "usage: dotsocr shards [--json] OUT_DIR\n"
    "  Totals the .dotsocr-shard-K-of-N.json progress files of `parse --shard` in\n"
    "  OUT_DIR: per shard and in all, pages planned, done, failed and skipped (made by\n"
    "  another run), seconds, finished. Exit 0 when all N shards finished with no\n"
    "  failed page, 1 otherwise.\n";

int dots_cmd_shards(int argc, char **argv) {
    static const struct option opts[] = {{"json", no_argument, NULL, 'j'}, {"help", no_argument, NULL, 'h'}, {0, 0, 0, 0}};
    bool as_json = false;
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'j': as_json = true; break;
        case 'h': fputs(help_shards, stdout); return 0;
        default: return cli_bad_option("shards", argc, argv, opts, "h");
        }
    }
    if (argc - optind != 1) return cli_usage("shards", "%s", "expected one OUT_DIR");
    const char *dir = argv[optind];
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "dotsocr: error: %s: %s\n", dir, strerror(errno));
        return 1;
    }
    json_t *shards = json_array();
    long long of = -1, planned = 0, done = 0, failed = 0, skipped = 0, n_finished = 0;
    double seconds = 0;
    bool mixed = false;
    struct dirent *e;
    while (shards && (e = readdir(d))) {
        long long k, n;
        int used = 0;
        if (sscanf(e->d_name, ".dotsocr-shard-%lld-of-%lld.json%n", &k, &n, &used) != 2 || e->d_name[used]) continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        json_t *o = json_load_file(path, 0, NULL);
        if (!json_is_object(o)) {
            fprintf(stderr, "dotsocr: warning: %s: not a progress file\n", path);
            json_decref(o);
            continue;
        }
        if (of >= 0 && n != of) mixed = true;
        of = n;
        planned += json_integer_value(json_object_get(o, "pages_planned"));
        done += json_integer_value(json_object_get(o, "pages_done"));
        failed += json_integer_value(json_object_get(o, "pages_failed"));
        skipped += json_integer_value(json_object_get(o, "pages_skipped"));
        seconds += json_number_value(json_object_get(o, "seconds"));
        n_finished += json_is_true(json_object_get(o, "finished"));
        json_array_append_new(shards, o);
    }
    closedir(d);
    size_t n_files = json_array_size(shards);
    bool ok = n_files > 0 && !mixed && (long long)n_files == of && n_finished == of && failed == 0;
    if (as_json) {
        json_t *all = json_pack("{s:o, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:b}", "shards", shards, "of", (json_int_t)of,
                                "finished", (json_int_t)n_finished, "pages_planned", (json_int_t)planned, "pages_done",
                                (json_int_t)done, "pages_failed", (json_int_t)failed, "pages_skipped", (json_int_t)skipped,
                                "seconds", seconds, "complete", ok);
        char *text = all ? json_dumps(all, JSON_INDENT(2)) : NULL;
        if (text) puts(text);
        free(text);
        json_decref(all);
    } else {
        size_t i;
        json_t *o;
        json_array_foreach(shards, i, o) {
            printf("shard %lld/%lld: %lld planned, %lld done, %lld failed, %lld skipped, %.1f s%s\n",
                   (long long)json_integer_value(json_object_get(o, "shard")), of,
                   (long long)json_integer_value(json_object_get(o, "pages_planned")),
                   (long long)json_integer_value(json_object_get(o, "pages_done")),
                   (long long)json_integer_value(json_object_get(o, "pages_failed")),
                   (long long)json_integer_value(json_object_get(o, "pages_skipped")), json_number_value(json_object_get(o, "seconds")),
                   json_is_true(json_object_get(o, "finished")) ? "" : ", not finished");
        }
        printf("all: %zu of %lld shard file(s), %lld finished; %lld pages planned, %lld done, %lld failed, %lld skipped; %.1f s "
               "of work%s\n",
               n_files, of, n_finished, planned, done, failed, skipped, seconds, mixed ? " (files of different splits!)" : "");
        json_decref(shards);
    }
    return ok ? 0 : 1;
}
