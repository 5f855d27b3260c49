/* Unit tests for user datasets: SHA-256 against the FIPS 180-4 vectors,
 * line checks that name the first bad line, a line turned into an item,
 * plans that expand a dataset's buckets, the store's record and file, and
 * the worker's cache, index and runner on a cached dataset, and its
 * downloads from a tiny loopback HTTP server: one per hash however many
 * tasks ask, other hashes not held up, a wrong download refused. */
#include "tests/unit/unit.h"

#include <dirent.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/sha256.h"
#include "common/util.h"
#include "db/store.h"
#include "suites/dataset.h"
#include "suites/jobspec.h"
#include "worker/datasets.h"
#include "worker/runner.h"

/* ---- SHA-256 ---- */

static void test_sha256_vectors(void **state)
{
    (void)state;
    char hex[PB_SHA256_HEX];
    pb_sha256_hex("", 0, hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    pb_sha256_hex("abc", 3, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *m448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    pb_sha256_hex(m448, strlen(m448), hex);
    assert_string_equal(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    const char *m896 = "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnop"
                       "jklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu";
    pb_sha256_hex(m896, strlen(m896), hex);
    assert_string_equal(hex, "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");

    /* one million 'a', fed in uneven pieces across block boundaries */
    char *a = malloc(1000000);
    memset(a, 'a', 1000000);
    pb_sha256_t s;
    unsigned char d[PB_SHA256_LEN];
    pb_sha256_init(&s);
    for (size_t off = 0, step = 1; off < 1000000; off += step, step = step * 3 % 127 + 1)
        pb_sha256_update(&s, a + off, off + step > 1000000 ? 1000000 - off : step);
    pb_sha256_final(&s, d);
    pb_sha256_to_hex(d, hex);
    assert_string_equal(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    free(a);

    /* padding edges: 55, 56, 63, 64 bytes hashed whole and byte by byte agree */
    for (size_t n = 54; n <= 66; n++) {
        char buf[66], one[PB_SHA256_HEX];
        memset(buf, 'x', n);
        pb_sha256_hex(buf, n, one);
        pb_sha256_init(&s);
        for (size_t i = 0; i < n; i++)
            pb_sha256_update(&s, buf + i, 1);
        pb_sha256_final(&s, d);
        pb_sha256_to_hex(d, hex);
        assert_string_equal(hex, one);
    }
    assert_true(pb_sha256_is_hex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
    assert_false(pb_sha256_is_hex("E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"));
    assert_false(pb_sha256_is_hex("e3b0"));
    assert_false(pb_sha256_is_hex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b8550"));
    assert_false(pb_sha256_is_hex(NULL));
}

/* ---- line checks ---- */

static void scan_fails(const char *suite, const char *text, const char *field, const char *what)
{
    ps_dataset_stats_t st;
    pb_err_t err = {{0}, {0}};
    int rc = ps_dataset_scan(suite, text, strlen(text), &st, &err);
    if (rc == 0)
        fail_msg("accepted: %s", text);
    assert_int_equal(rc, PB_EINVAL);
    assert_string_equal(err.field, field);
    if (strstr(err.msg, what) == NULL || strncmp(err.msg, field, strlen(field)) != 0)
        fail_msg("error \"%s\" lacks \"%s\"", err.msg, what);
    assert_null(st.buckets);
}

static void test_line_errors(void **state)
{
    (void)state;
    const char *ok = "{\"prompt\": \"p\", \"reference\": \"1\"}\n";
    scan_fails("arithmetic", "{\"prompt\": \"p\", \"reference\": \"1\"}\n{\"prompt\":\n", "line 2",
               "malformed JSON");
    /* blank lines count in the numbering and are skipped */
    char text[512];
    snprintf(text, sizeof text, "%s\n  \r\n%s{\"prompt\": 3, \"reference\": \"1\"}", ok, ok);
    scan_fails("arithmetic", text, "line 5", "\"prompt\" must be a string");
    scan_fails("table", "{\"prompt\": \"p\", \"references\": [\"1\", \"2\"]}", "line 1",
               "exactly one reference");
    scan_fails("longctx", "{\"prompt\": \"p\", \"references\": []}", "line 1", "1 to 256");
    scan_fails("longctx", "{\"prompt\": \"p\", \"references\": [\"a\", 2]}", "line 1", "strings");
    scan_fails("longctx", "{\"prompt\": \"p\"}", "line 1", "exactly one of");
    scan_fails("longctx", "{\"prompt\": \"p\", \"reference\": \"a\", \"references\": [\"a\"]}",
               "line 1", "exactly one of");
    scan_fails("longctx", "{\"prompt\": \"p\", \"reference\": \"a\", \"extra\": 1}", "line 1",
               "unknown key \"extra\"");
    scan_fails("longctx", "{\"prompt\": \"p\", \"reference\": \"a\", \"metadata\": [1]}", "line 1",
               "\"metadata\" must be an object");
    scan_fails("longctx", "{\"prompt\": \"p\", \"reference\": \"a\", \"bucket\": 1.5}", "line 1",
               "\"bucket\"");
    scan_fails("longctx", "{\"prompt\": \"p\", \"reference\": \"a\", \"bucket\": \"3\"}", "line 1",
               "\"bucket\"");
    scan_fails("longctx", "{\"prompt\": \"p\", \"reference\": \"a\", \"id\": [1]}", "line 1",
               "\"id\"");
    scan_fails("longctx", "{\"prompt\": \"a\", \"prompt\": \"b\", \"reference\": \"a\"}", "line 1",
               "malformed JSON");
    scan_fails("longctx", "\"just a string\"", "line 1", "JSON object");
    scan_fails("longctx", "{\"prompt\": \"p\", \"reference\": \"a\"} trailing", "line 1",
               "malformed JSON");
    scan_fails("arithmetic", "{\"parts\": [\"a\"], \"references\": [\"1\"]}", "line 1",
               "halluc lines only");
    scan_fails("halluc", "{\"prompt\": \"a\", \"reference\": \"yes\"}", "line 1", "3 yes/no");
    scan_fails("halluc", "{\"parts\": [\"a\", \"b\", \"c\"], \"references\": [\"yes\", \"no\"]}",
               "line 1", "one answer per part");
    scan_fails("retrieval", "{\"type\": \"doc\", \"text\": \"t\"}", "line 1", "\"id\"");
    scan_fails("retrieval", "{\"type\": \"passage\"}", "line 1", "unknown type");
    scan_fails("retrieval", "{\"id\": 1}", "line 1", "\"type\"");

    /* buckets counted, ascending; CRLF endings and a missing final newline */
    const char *good = "{\"prompt\": \"p\", \"reference\": \"1\", \"bucket\": 9}\r\n"
                       "\n"
                       "{\"prompt\": \"q\", \"reference\": \"2\"}\r\n"
                       "{\"prompt\": \"r\", \"reference\": \"3\", \"bucket\": 9.0}";
    ps_dataset_stats_t st;
    pb_err_t err;
    assert_int_equal(ps_dataset_scan("arithmetic", good, strlen(good), &st, &err), 0);
    assert_int_equal(st.lines, 3);
    assert_int_equal(st.n_buckets, 2);
    assert_int_equal(st.buckets[0], 0);
    assert_int_equal(st.counts[0], 1);
    assert_int_equal(st.buckets[1], 9);
    assert_int_equal(st.counts[1], 2);
    ps_dataset_stats_free(&st);
    /* an empty file is no dataset */
    assert_int_equal(ps_dataset_scan("arithmetic", "\n \n", 3, &st, &err), PB_EINVAL);
    /* a retrieval dataset is one bucket, its corpus size, of its queries */
    const char *ret = "{\"type\": \"doc\", \"id\": \"d1\", \"text\": \"t\"}\n"
                      "{\"type\": \"query\", \"id\": 7, \"text\": \"q\"}\n"
                      "{\"type\": \"doc\", \"id\": 5, \"text\": \"u\"}\n"
                      "{\"type\": \"qrel\", \"query\": 7, \"doc\": \"d1\", \"grade\": 2}\n";
    assert_int_equal(ps_dataset_scan("retrieval", ret, strlen(ret), &st, &err), 0);
    assert_int_equal(st.lines, 4);
    assert_int_equal(st.n_buckets, 1);
    assert_int_equal(st.buckets[0], 2);
    assert_int_equal(st.counts[0], 1);
    ps_dataset_stats_free(&st);
}

/* ---- retrieval datasets: the whole-file checks ---- */

#define D(id, text) "{\"type\": \"doc\", \"id\": " id ", \"text\": \"" text "\"}\n"
#define Q(id, text) "{\"type\": \"query\", \"id\": " id ", \"text\": \"" text "\"}\n"
#define QH(id, text, hard)                                                                         \
    "{\"type\": \"query\", \"id\": " id ", \"text\": \"" text "\", \"hard_negatives\": " hard    \
    "}\n"
#define R(q, d, g) "{\"type\": \"qrel\", \"query\": " q ", \"doc\": " d ", \"grade\": " g "}\n"

static void test_retrieval_errors(void **state)
{
    (void)state;
    const char *base = D("\"a\"", "x") D("\"b\"", "y") Q("1", "q");
    char text[2048];
    struct {
        const char *extra, *field, *what;
    } cases[] = {
        {R("1", "\"a\"", "1") R("2", "\"a\"", "1"), "line 5", "unknown query \"2\""},
        {R("1", "\"zz\"", "1"), "line 4", "unknown doc \"zz\""},
        {R("1", "\"a\"", "1") D("\"b\"", "again"), "line 5",
         "duplicate doc id \"b\" (also line 2)"},
        {R("1", "\"a\"", "1") Q("1", "again"), "line 5", "duplicate query id \"1\""},
        {R("1", "\"a\"", "1") "\n" R("1", "\"a\"", "2"), "line 6", "duplicate qrel"},
        {R("1", "\"a\"", "0"), "line 3", "no qrel with grade >= 1"},
        {R("1", "\"a\"", "1") QH("2", "q2", "[\"b\", \"nope\"]") R("2", "\"a\"", "1"), "line 5",
         "hard negative \"nope\" is not a doc id"},
        {R("1", "\"a\"", "1") QH("2", "q2", "[\"a\"]") R("2", "\"a\"", "3"), "line 5",
         "judged relevant (grade 3)"},
        {R("1", "\"a\"", "1") QH("2", "q2", "[\"b\", \"b\"]") R("2", "\"a\"", "1"), "line 5",
         "listed twice"},
        {R("1", "\"a\"", "-1"), "line 4", "\"grade\""},
        {R("1", "\"a\"", "1.5"), "line 4", "\"grade\""},
        {R("1", "\"a\"", "101"), "line 4", "\"grade\""},
        {"{\"type\": \"qrel\", \"query\": 1, \"doc\": \"a\", \"grade\": 1, \"bucket\": 3}\n",
         "line 4", "unknown key \"bucket\""},
        {D("\"has space\"", "t"), "line 4", "\"id\""},
        {D("\"a,b\"", "t"), "line 4", "\"id\""},
        {Q("\"q9\"", ""), "line 4", "\"text\""},
        {QH("\"q9\"", "t", "\"a\""), "line 4", "hard_negatives"},
        {QH("\"q9\"", "t", "[1.5]"), "line 4", "hard_negatives[0]"},
    };
    for (size_t i = 0; i < PB_ARRAY_LEN(cases); i++) {
        snprintf(text, sizeof text, "%s%s", base, cases[i].extra);
        scan_fails("retrieval", text, cases[i].field, cases[i].what);
    }
    /* No query at all; no docs then no relevant qrel either. */
    ps_dataset_stats_t st;
    pb_err_t err = {{0}, {0}};
    const char *docs = D("\"a\"", "x");
    assert_int_equal(ps_dataset_scan("retrieval", docs, strlen(docs), &st, &err), PB_EINVAL);
    assert_string_equal(err.field, "body");
}

static void test_retrieval_parse(void **state)
{
    (void)state;
    /* qrels before their docs and queries; ids integers and strings */
    const char *text = R("\"q\"", "10", "2") R("\"q\"", "\"b\"", "0") R("3", "\"a\"", "1")
        D("\"b\"", "bee") D("10", "ten") "\r\n" QH("\"q\"", "first", "[\"a\"]") D("\"a\"", "ay")
            Q("3", "second");
    ps_rdata_t d;
    pb_err_t err = {{0}, {0}};
    assert_int_equal(ps_rdata_parse(text, strlen(text), &d, &err), 0);
    assert_int_equal(d.lines, 8);
    assert_int_equal(d.n_docs, 3);
    /* the corpus in docno order (strcmp: "10" < "a" < "b") */
    assert_string_equal(d.docno[0], "10");
    assert_string_equal(d.docno[1], "a");
    assert_string_equal(d.docno[2], "b");
    assert_string_equal(d.doc_text[2], "bee");
    /* the queries in file order */
    assert_int_equal(d.n_queries, 2);
    assert_string_equal(d.qid[0], "q");
    assert_string_equal(d.q_text[1], "second");
    assert_int_equal(d.q_line[0], 7);
    assert_int_equal(d.q_line[1], 9);
    /* query "q": docs 10 (grade 2) and b (0), ascending corpus index; hard a */
    assert_int_equal(d.qrel_at[0], 0);
    assert_int_equal(d.qrel_at[1], 2);
    assert_int_equal(d.qrel_doc[0], 0);
    assert_int_equal(d.qrel_grade[0], 2);
    assert_int_equal(d.qrel_doc[1], 2);
    assert_int_equal(d.qrel_grade[1], 0);
    assert_int_equal(d.qrel_at[2], 3);
    assert_int_equal(d.qrel_doc[2], 1);
    assert_int_equal(d.hard_at[1], 1);
    assert_int_equal(d.hard_doc[0], 1);
    assert_int_equal(d.hard_at[2], 1);
    ps_rdata_free(&d);
}

/* ---- line -> item ---- */

static void test_line_item(void **state)
{
    (void)state;
    ps_run_t run;
    ps_item_t it;
    pb_err_t err;
    const char *line = "{\"prompt\": \"Find the two numbers.\", \"references\": [\"12\", \"34\"],"
                       " \"metadata\": {\"depth\": 50, \"src\": \"x\"}, \"bucket\": 4, \"id\": \"a7\"}";
    double score = 0;
    pb_test_open_run(&run, ps_suite_find("longctx"), "niah_single_1", NULL, 4, 1);
    assert_int_equal(ps_dataset_item(&run, line, strlen(line), 17, 3, &it, &err), 0);
    assert_string_equal(it.prompt, "Find the two numbers.");
    assert_string_equal(it.reference, "12\n34");
    assert_int_equal(it.idx, 3);
    assert_int_equal(it.bucket, 4);
    assert_int_equal(it.length, (int64_t)strlen(it.prompt));
    assert_int_equal(it.n_parts, 0);
    assert_int_equal(json_integer_value(json_object_get(it.meta, "depth")), 50);
    assert_int_equal(json_integer_value(json_object_get(it.meta, "line")), 17);
    assert_string_equal(json_string_value(json_object_get(it.meta, "id")), "a7");
    assert_string_equal(json_string_value(json_object_get(it.meta, "src")), "x");
    /* the suite's own scorer: string_match_all over the joined references */
    assert_int_equal(run.suite->score(&run, &it, "34 and 12", &score, NULL), 0);
    assert_true(score == 1.0);
    assert_int_equal(run.suite->score(&run, &it, "12 only", &score, NULL), 0);
    assert_true(score < 1.0);
    ps_item_clear(&it);
    assert_int_equal(ps_dataset_item(&run, "{\"prompt\": 1}", 13, 5, 0, &it, &err), PB_EINVAL);
    assert_string_equal(err.field, "line 5");
    assert_null(it.prompt);
    ps_run_close(&run);

    const ps_suite_t *h = ps_suite_find("halluc");
    if (h == NULL)
        return;
    const char *parts = "{\"parts\": [\"Is A in it?\", \"Is B in it?\", \"Is C?\"],"
                        " \"references\": [\"yes\", \"no\", \"no\"]}";
    run = (ps_run_t){0};
    pb_test_open_run(&run, h, h->tasks[0].name, NULL, 0, 1);
    assert_int_equal(ps_dataset_item(&run, parts, strlen(parts), 1, 0, &it, &err), 0);
    assert_int_equal(it.n_parts, 3);
    assert_string_equal(it.parts[1], "Is B in it?");
    assert_string_equal(it.part_refs[0], "yes");
    assert_string_equal(it.prompt, "Is A in it?\nIs B in it?\nIs C?");
    assert_string_equal(it.reference, "yes\nno\nno");
    /* the suite's scorer reads the parts' answers as a JSON array */
    double m[PS_MAX_METRICS] = {0};
    assert_int_equal(h->score(&run, &it, "[\"yes\", \"no\", \"no\"]", &score, m), 0);
    assert_true(score == 1.0);
    ps_item_clear(&it);
    ps_run_close(&run);
}

/* ---- plans ---- */

static int fake_resolve(void *ctx, const char *hash, ps_dataset_ref_t *out)
{
    (void)ctx;
    if (hash[0] != 'a')
        return PB_ENOTFOUND;
    snprintf(out->suite, sizeof out->suite, "arithmetic");
    out->buckets = malloc(2 * sizeof *out->buckets);
    out->counts = malloc(2 * sizeof *out->counts);
    out->buckets[0] = 0, out->buckets[1] = 5;
    out->counts[0] = 5, out->counts[1] = 2;
    out->n_buckets = 2;
    return 0;
}

static int plan_of(const char *run, ps_plan_t **plan, pb_err_t *err)
{
    char text[512];
    snprintf(text, sizeof text,
             "{\"model\": {\"name\": \"o\", \"backend\": \"oracle\"}, \"shard_size\": 2,"
             " \"runs\": [%s]}", run);
    json_t *spec = pb_test_json(text);
    memset(err, 0, sizeof *err);
    int rc = ps_plan_build_ds(spec, fake_resolve, NULL, plan, err);
    json_decref(spec);
    return rc;
}

#define HASH_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define HASH_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

static void test_plan(void **state)
{
    (void)state;
    ps_plan_t *plan = NULL;
    pb_err_t err;
    /* 65 hex digits: not a hash */
    assert_int_equal(plan_of("{\"suite\": \"arithmetic\", \"dataset\": \"a" HASH_A "\"}", &plan,
                             &err), PB_EINVAL);
    assert_string_equal(err.field, "runs[0].dataset");
    const char *a = "{\"suite\": \"arithmetic\", \"task\": \"add\", \"dataset\": \"" HASH_A;
    char run[256];
    snprintf(run, sizeof run, "%s\"}", a);
    assert_int_equal(plan_of(run, &plan, &err), 0);
    assert_int_equal(plan->n_runs, 1);
    assert_string_equal(plan->runs[0].dataset, HASH_A);
    assert_int_equal(plan->items_total, 7);
    assert_int_equal(plan->n_tasks, 3 + 1); /* 5 lines in shards of 2, then 2 */
    assert_int_equal(plan->tasks[2].item_lo, 4);
    assert_int_equal(plan->tasks[2].item_hi, 5);
    assert_int_equal(plan->tasks[3].bucket, 5);
    json_t *r0 = json_array_get(json_object_get(plan->spec, "runs"), 0);
    assert_string_equal(json_string_value(json_object_get(r0, "dataset")), HASH_A);
    ps_plan_free(plan);
    /* samples caps each bucket */
    snprintf(run, sizeof run, "%s\", \"samples\": 3}", a);
    assert_int_equal(plan_of(run, &plan, &err), 0);
    assert_int_equal(plan->items_total, 5);
    ps_plan_free(plan);
    /* unknown hash, and a dataset of another suite */
    assert_int_equal(plan_of("{\"suite\": \"arithmetic\", \"dataset\": \"" HASH_B "\"}", &plan,
                             &err), PB_EINVAL);
    assert_string_equal(err.field, "runs[0].dataset");
    assert_non_null(strstr(err.msg, "unknown dataset"));
    snprintf(run, sizeof run, "{\"suite\": \"table\", \"dataset\": \"%s\"}", HASH_A);
    assert_int_equal(plan_of(run, &plan, &err), PB_EINVAL);
    assert_non_null(strstr(err.msg, "arithmetic dataset, not table"));
    assert_null(plan);
    /* without a resolver (schedules' callers that cannot look up) */
    json_t *spec = pb_test_json("{\"model\": {\"name\": \"o\", \"backend\": \"oracle\"},"
                                " \"runs\": [{\"suite\": \"arithmetic\", \"dataset\": \"" HASH_B
                                "\"}]}");
    assert_int_not_equal(ps_plan_build(spec, &plan, &err), 0);
    assert_string_equal(err.field, "runs[0].dataset");
    json_decref(spec);
}

/* ---- store ---- */

static const char DATA[] = "{\"prompt\": \"1+1=\", \"reference\": \"2\", \"bucket\": 1}\n"
                           "{\"prompt\": \"2+2=\", \"reference\": \"4\", \"bucket\": 1}\n"
                           "{\"prompt\": \"10+10=\", \"reference\": \"20\", \"bucket\": 2}\n";

static void test_store(void **state)
{
    (void)state;
    char dir[256], path[512], file[600], hash[PB_SHA256_HEX], suite[64];
    pdb_t *db = NULL;
    pb_err_t err;
    json_t *rec = NULL, *again = NULL, *list = NULL;
    int created = -1;
    pb_test_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/pb.db", dir);
    assert_int_equal(pdb_open(path, &db, &err), 0);
    pb_sha256_hex(DATA, strlen(DATA), hash);
    int64_t b[] = {1, 2};
    uint64_t n[] = {2, 1};
    pdb_dataset_meta_t m = {.hash = hash, .name = "tiny", .suite = "arithmetic", .lines = 3,
                            .buckets = b, .counts = n, .n_buckets = 2};
    assert_int_equal(pdb_dataset_put(db, &m, DATA, strlen(DATA), &created, &rec), 0);
    assert_int_equal(created, 1);
    assert_string_equal(json_string_value(json_object_get(rec, "hash")), hash);
    assert_int_equal(json_integer_value(json_object_get(rec, "bytes")), strlen(DATA));
    assert_int_equal(json_array_size(json_object_get(rec, "buckets")), 2);
    assert_int_equal(pdb_dataset_put(db, &m, DATA, strlen(DATA), &created, &again), 0);
    assert_int_equal(created, 0);
    assert_true(json_equal(rec, again));
    json_decref(again);
    assert_int_equal(pdb_dataset_path(db, hash, file, sizeof file), 0);
    FILE *f = fopen(file, "rb");
    assert_non_null(f);
    char buf[512];
    size_t got = fread(buf, 1, sizeof buf, f);
    fclose(f);
    assert_int_equal(got, strlen(DATA));
    assert_memory_equal(buf, DATA, got);
    assert_int_equal(pdb_datasets_list(db, &list), 0);
    assert_int_equal(json_array_size(json_object_get(list, "datasets")), 1);
    int64_t *rb = NULL;
    uint64_t *rc = NULL;
    size_t k = 0;
    assert_int_equal(pdb_dataset_ref(db, hash, suite, sizeof suite, &rb, &rc, &k), 0);
    assert_string_equal(suite, "arithmetic");
    assert_int_equal(k, 2);
    assert_int_equal(rb[1], 2);
    assert_int_equal(rc[0], 2);
    free(rb);
    free(rc);
    assert_int_equal(pdb_dataset_get(db, HASH_B, &again), PB_ENOTFOUND);
    json_decref(rec);
    json_decref(list);
    pdb_close(db);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

/* ---- worker: cache, index, runner ---- */

static void write_file(const char *path, const char *data)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, strlen(data), f), strlen(data));
    fclose(f);
}

static void test_worker_cache(void **state)
{
    (void)state;
    char dir[256], file[400], hash[PB_SHA256_HEX], text[1024];
    pb_dataset_t *ds = NULL, *ds2 = NULL;
    pb_err_t err;
    pb_test_tmpdir(dir, sizeof dir);
    pb_sha256_hex(DATA, strlen(DATA), hash);
    /* not cached and no URL to fetch from */
    assert_int_equal(pb_dataset_open(dir, NULL, hash, &ds, &err), PB_EINVAL);
    assert_null(ds);
    /* a damaged copy is not used */
    snprintf(file, sizeof file, "%s/%s.jsonl", dir, hash);
    write_file(file, "{\"prompt\": \"x\", \"reference\": \"y\"}\n");
    assert_int_not_equal(pb_dataset_open(dir, NULL, hash, &ds, &err), 0);
    assert_null(ds);
    write_file(file, DATA);
    assert_int_equal(pb_dataset_open(dir, NULL, hash, &ds, &err), 0);
    assert_int_equal(pb_dataset_count(ds, 1), 2);
    assert_int_equal(pb_dataset_count(ds, 2), 1);
    assert_int_equal(pb_dataset_count(ds, 3), 0);
    /* a second open shares the handle, even with the file gone */
    unlink(file);
    assert_int_equal(pb_dataset_open(dir, NULL, hash, &ds2, &err), 0);
    assert_ptr_equal(ds, ds2);
    pb_dataset_release(ds2);
    write_file(file, DATA);

    /* the runner: items of bucket 1 are the bucket's lines in file order */
    snprintf(text, sizeof text,
             "{\"suite\": \"arithmetic\", \"task\": \"add\", \"params\": {}, \"bucket\": 1,"
             " \"item_lo\": 0, \"item_hi\": 2, \"seed\": 1, \"dataset\": \"%s\","
             " \"dataset_cache\": \"%s\", \"model\": {\"name\": \"o\", \"backend\": \"oracle\"}}",
             hash, dir);
    json_t *task = pb_test_json(text), *result = NULL;
    pb_buf_t items;
    pb_buf_init(&items, 0);
    memset(&err, 0, sizeof err);
    assert_int_equal(pb_runner_run(task, NULL, NULL, NULL, &result, &items, &err), 0);
    json_t *arr = json_loadb(items.data, items.len, 0, NULL);
    assert_int_equal(json_array_size(arr), 2);
    /* [idx, prompt_hash, prediction, reference, ...] (common/items.h) */
    json_t *second = json_array_get(arr, 1);
    assert_int_equal(json_integer_value(json_array_get(second, 0)), 1);
    assert_string_equal(json_string_value(json_array_get(second, 2)), "4");
    assert_string_equal(json_string_value(json_array_get(second, 3)), "4");
    json_t *ag = json_object_get(result, "aggregate");
    assert_true(json_number_value(json_object_get(ag, "score_sum")) == 2.0);
    json_decref(arr);
    json_decref(result);
    /* past the bucket's lines: the task is wrong */
    json_object_set_new(task, "item_hi", json_integer(3));
    assert_int_equal(pb_runner_run(task, NULL, NULL, NULL, &result, &items, &err), PB_EINVAL);
    assert_null(result);
    assert_non_null(strstr(err.msg, "2 lines in bucket 1"));
    json_decref(task);
    pb_buf_free(&items);
    pb_dataset_release(ds);
    unlink(file);
    rmdir(dir);
}

/* ---- worker: downloads ---- */

/* A loopback server: GET /slow sends SLOW once slow_go is set (or after
 * 5 s), /bad sends SLOW with one byte changed, anything else sends DATA2
 * after 100 ms. Neither was opened by an earlier test (opens are shared). */
static const char SLOW[] = "{\"prompt\": \"5+5=\", \"reference\": \"10\", \"bucket\": 1}\n"
                           "{\"prompt\": \"6+6=\", \"reference\": \"12\", \"bucket\": 1}\n";
static const char DATA2[] = "{\"prompt\": \"3+3=\", \"reference\": \"6\", \"bucket\": 4}\n";
static pthread_mutex_t srv_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t srv_cv = PTHREAD_COND_INITIALIZER;
static int srv_fd = -1, srv_active, slow_go, hits_slow, hits_other;

static void *srv_conn(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char req[2048], head[128], bad[sizeof SLOW];
    size_t n = 0;
    ssize_t r;
    while (n < sizeof req - 1 && (r = recv(fd, req + n, sizeof req - 1 - n, 0)) > 0) {
        n += (size_t)r;
        req[n] = '\0';
        if (strstr(req, "\r\n\r\n"))
            break;
    }
    req[n] = '\0';
    const char *body = DATA2;
    if (strncmp(req, "GET /slow ", 10) == 0) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 5;
        pthread_mutex_lock(&srv_mu);
        hits_slow++;
        pthread_cond_broadcast(&srv_cv);
        while (!slow_go && pthread_cond_timedwait(&srv_cv, &srv_mu, &until) == 0)
            ;
        pthread_mutex_unlock(&srv_mu);
        body = SLOW;
    } else if (strncmp(req, "GET /bad ", 9) == 0) {
        memcpy(bad, SLOW, sizeof SLOW);
        bad[2] = 'q';
        body = bad;
    } else {
        pthread_mutex_lock(&srv_mu);
        hits_other++;
        pthread_mutex_unlock(&srv_mu);
        usleep(100 * 1000); /* long enough for a second task to ask too */
    }
    int hn = snprintf(head, sizeof head,
                      "HTTP/1.0 200 OK\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
                      strlen(body));
    if (send(fd, head, (size_t)hn, MSG_NOSIGNAL) == hn)
        send(fd, body, strlen(body), MSG_NOSIGNAL);
    close(fd);
    pthread_mutex_lock(&srv_mu);
    srv_active--;
    pthread_cond_broadcast(&srv_cv);
    pthread_mutex_unlock(&srv_mu);
    return NULL;
}

static void *srv_main(void *arg)
{
    (void)arg;
    for (;;) {
        int fd = accept(srv_fd, NULL, NULL);
        if (fd < 0)
            return NULL; /* shut down */
        pthread_t t;
        pthread_mutex_lock(&srv_mu);
        srv_active++;
        pthread_mutex_unlock(&srv_mu);
        if (pthread_create(&t, NULL, srv_conn, (void *)(intptr_t)fd) == 0)
            pthread_detach(t);
        else
            srv_conn((void *)(intptr_t)fd);
    }
}

typedef struct opener {
    pthread_t t;
    const char *dir, *hash;
    char url[128];
    pb_dataset_t *ds;
    pb_err_t err;
    int rc, done;
} opener_t;

static void *opener_run(void *arg)
{
    opener_t *o = arg;
    o->rc = pb_dataset_open(o->dir, o->url, o->hash, &o->ds, &o->err);
    pthread_mutex_lock(&srv_mu);
    o->done = 1;
    pthread_mutex_unlock(&srv_mu);
    return NULL;
}

static void opener_start(opener_t *o, const char *dir, const char *hash, int port, const char *p)
{
    memset(o, 0, sizeof *o);
    o->dir = dir;
    o->hash = hash;
    snprintf(o->url, sizeof o->url, "http://127.0.0.1:%d/%s", port, p);
    assert_int_equal(pthread_create(&o->t, NULL, opener_run, o), 0);
}

static int opener_done(opener_t *o)
{
    pthread_mutex_lock(&srv_mu);
    int d = o->done;
    pthread_mutex_unlock(&srv_mu);
    return d;
}

static void test_worker_fetch(void **state)
{
    (void)state;
    char dir[256], file[400], hash[PB_SHA256_HEX], hash2[PB_SHA256_HEX];
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t salen = sizeof sa;
    pthread_t srv;
    opener_t slow, fast, same[2], bad;

    pb_test_tmpdir(dir, sizeof dir);
    pb_sha256_hex(SLOW, strlen(SLOW), hash);
    pb_sha256_hex(DATA2, strlen(DATA2), hash2);
    srv_fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(srv_fd >= 0);
    assert_int_equal(bind(srv_fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(srv_fd, 16), 0);
    assert_int_equal(getsockname(srv_fd, (struct sockaddr *)&sa, &salen), 0);
    int port = ntohs(sa.sin_port);
    assert_int_equal(pthread_create(&srv, NULL, srv_main, NULL), 0);
    uint64_t fetches = pb_datasets_fetches();

    /* a download that hangs does not hold up another dataset's tasks: two
     * of hash2 wait for one download while hash's is still going */
    opener_start(&slow, dir, hash, port, "slow");
    for (int i = 0; i < 500; i++) {
        pthread_mutex_lock(&srv_mu);
        int hit = hits_slow;
        pthread_mutex_unlock(&srv_mu);
        if (hit)
            break;
        usleep(10 * 1000);
    }
    assert_int_equal(hits_slow, 1);
    opener_start(&same[0], dir, hash2, port, "two");
    opener_start(&same[1], dir, hash2, port, "two");
    pthread_join(same[0].t, NULL);
    pthread_join(same[1].t, NULL);
    assert_false(opener_done(&slow));
    assert_int_equal(same[0].rc, 0);
    assert_int_equal(same[1].rc, 0);
    assert_ptr_equal(same[0].ds, same[1].ds);
    assert_int_equal(pb_dataset_count(same[0].ds, 4), 1);
    assert_int_equal(hits_other, 1);
    assert_int_equal(pb_datasets_fetches(), fetches + 1);
    /* a task of the hanging dataset waits for that download, not a second */
    opener_start(&fast, dir, hash, port, "slow");
    usleep(50 * 1000);
    pthread_mutex_lock(&srv_mu);
    slow_go = 1;
    pthread_cond_broadcast(&srv_cv);
    pthread_mutex_unlock(&srv_mu);
    pthread_join(slow.t, NULL);
    pthread_join(fast.t, NULL);
    assert_int_equal(slow.rc, 0);
    assert_int_equal(fast.rc, 0);
    assert_ptr_equal(slow.ds, fast.ds);
    assert_int_equal(pb_dataset_count(slow.ds, 1), 2);
    assert_int_equal(hits_slow, 1);
    assert_int_equal(pb_datasets_fetches(), fetches + 2);
    pb_dataset_release(same[0].ds);
    pb_dataset_release(same[1].ds);
    pb_dataset_release(slow.ds);
    pb_dataset_release(fast.ds);

    /* bytes that do not hash to the name: an error that says so, nothing kept */
    char bad_hash[PB_SHA256_HEX];
    const char *bad_data = "{\"prompt\": \"9+9=\", \"reference\": \"18\"}\n";
    pb_sha256_hex(bad_data, strlen(bad_data), bad_hash);
    opener_start(&bad, dir, bad_hash, port, "bad");
    pthread_join(bad.t, NULL);
    assert_int_equal(bad.rc, PB_EIO);
    assert_null(bad.ds);
    assert_non_null(strstr(bad.err.msg, "hash mismatch"));
    snprintf(file, sizeof file, "%.16s", bad_hash);
    assert_non_null(strstr(bad.err.msg, file));
    DIR *d = opendir(dir);
    assert_non_null(d);
    size_t files = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (e->d_name[0] == '.')
            continue;
        files++;
        assert_null(strstr(e->d_name, bad_hash));
        assert_null(strstr(e->d_name, "partial"));
    }
    closedir(d);
    assert_int_equal(files, 2);

    shutdown(srv_fd, SHUT_RDWR);
    close(srv_fd);
    pthread_join(srv, NULL);
    pthread_mutex_lock(&srv_mu);
    while (srv_active > 0)
        pthread_cond_wait(&srv_cv, &srv_mu);
    pthread_mutex_unlock(&srv_mu);
    snprintf(file, sizeof file, "%s/%s.jsonl", dir, hash);
    unlink(file);
    snprintf(file, sizeof file, "%s/%s.jsonl", dir, hash2);
    unlink(file);
    rmdir(dir);
}

int pb_test_datasets(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256_vectors), cmocka_unit_test(test_line_errors),
        cmocka_unit_test(test_retrieval_errors), cmocka_unit_test(test_retrieval_parse),
        cmocka_unit_test(test_line_item),      cmocka_unit_test(test_plan),
        cmocka_unit_test(test_store),          cmocka_unit_test(test_worker_cache),
        cmocka_unit_test(test_worker_fetch),
    };
    return cmocka_run_group_tests_name("datasets", tests, NULL, NULL);
}
