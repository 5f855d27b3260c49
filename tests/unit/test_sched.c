/* Unit tests for the coordinator's run queue (priority, fair round-robin,
 * capability matching) and cron schedules. */
#include "tests/unit/unit.h"

#include <string.h>
#include <time.h>

#include "coordinator/cron.h"
#include "coordinator/sched.h"

static const char *const cpu_oracle_b[] = {"oracle", "random"};
static const pb_sched_caps_t cpu_caps = {"cpu", cpu_oracle_b, 2};

static pdb_task_ref_t ref(int64_t task, int64_t job, int prio, const char *dev, const char *backend)
{
    pdb_task_ref_t r;
    memset(&r, 0, sizeof r);
    r.task_id = task;
    r.job_id = job;
    r.priority = prio;
    snprintf(r.device, sizeof r.device, "%s", dev);
    snprintf(r.backend, sizeof r.backend, "%s", backend);
    r.items = 1;
    r.timeout_s = 60;
    return r;
}

static void test_priority_first(void **state)
{
    (void)state;
    pb_sched_t *s;
    assert_int_equal(pb_sched_new(&s), 0);
    pdb_task_ref_t a = ref(1, 1, 0, "any", "oracle"), b = ref(2, 2, 5, "any", "oracle");
    pb_sched_add(s, &a, 0, 0);
    pb_sched_add(s, &b, 0, 0);
    pdb_task_ref_t out;
    assert_int_equal(pb_sched_pick(s, &cpu_caps, &out, NULL), 1);
    assert_int_equal(out.task_id, 2); /* higher priority although submitted later */
    assert_int_equal(pb_sched_pick(s, &cpu_caps, &out, NULL), 1);
    assert_int_equal(out.task_id, 1);
    assert_int_equal(pb_sched_pick(s, &cpu_caps, &out, NULL), 0);
    pb_sched_free(s);
}

/* A 10,000-task job must not starve a 10-task job submitted after it. */
static void test_round_robin_no_starvation(void **state)
{
    (void)state;
    pb_sched_t *s;
    assert_int_equal(pb_sched_new(&s), 0);
    for (int i = 0; i < 10000; i++) {
        pdb_task_ref_t r = ref(i + 1, 1, 0, "any", "oracle");
        assert_int_equal(pb_sched_add(s, &r, 0, 0), 0);
    }
    pdb_task_ref_t out;
    for (int i = 0; i < 5; i++) /* the big job already running */
        assert_int_equal(pb_sched_pick(s, &cpu_caps, &out, NULL), 1);
    for (int i = 0; i < 10; i++) {
        pdb_task_ref_t r = ref(100000 + i, 2, 0, "any", "oracle");
        pb_sched_add(s, &r, 0, 0);
    }
    int small_done = 0, picks = 0;
    while (small_done < 10 && picks < 100) {
        assert_int_equal(pb_sched_pick(s, &cpu_caps, &out, NULL), 1);
        picks++;
        if (out.job_id == 2)
            small_done++;
    }
    assert_int_equal(small_done, 10);
    assert_true(picks <= 21); /* alternating: the small job finishes within 2x its size */
    assert_int_equal(pb_sched_depth(s), 10000 - 5 - (size_t)(picks - 10));
    pb_sched_free(s);
}

static void test_capabilities(void **state)
{
    (void)state;
    pb_sched_t *s;
    assert_int_equal(pb_sched_new(&s), 0);
    pdb_task_ref_t g = ref(1, 1, 9, "gpu", "oracle"), n = ref(2, 2, 9, "any", "native"),
                   c = ref(3, 3, 0, "cpu", "random");
    pb_sched_add(s, &g, 0, 0);
    pb_sched_add(s, &n, 0, 0);
    pb_sched_add(s, &c, 0, 0);
    pdb_task_ref_t out;
    /* The cpu worker without the native backend may only take task 3. */
    assert_int_equal(pb_sched_pick(s, &cpu_caps, &out, NULL), 1);
    assert_int_equal(out.task_id, 3);
    assert_int_equal(pb_sched_pick(s, &cpu_caps, &out, NULL), 0);
    static const char *const gpu_b[] = {"oracle", "native"};
    pb_sched_caps_t gpu = {"gpu", gpu_b, 2};
    assert_int_equal(pb_sched_pick(s, &gpu, &out, NULL), 1);
    assert_true(out.task_id == 1 || out.task_id == 2);
    assert_int_equal(pb_sched_pick(s, &gpu, &out, NULL), 1);
    assert_int_equal(pb_sched_depth(s), 0);
    pb_sched_free(s);
}

static void test_front_and_drop(void **state)
{
    (void)state;
    pb_sched_t *s;
    assert_int_equal(pb_sched_new(&s), 0);
    for (int i = 1; i <= 40; i++) { /* enough to grow the ring buffer */
        pdb_task_ref_t r = ref(i, 7, 0, "any", "oracle");
        pb_sched_add(s, &r, i, 0);
    }
    pdb_task_ref_t retry = ref(99, 7, 0, "any", "oracle");
    pb_sched_add(s, &retry, 1000, 1);
    pdb_task_ref_t out;
    int64_t enq = 0;
    assert_int_equal(pb_sched_pick(s, &cpu_caps, &out, &enq), 1);
    assert_int_equal(out.task_id, 99);
    assert_int_equal(enq, 1000);
    assert_int_equal(pb_sched_pick(s, &cpu_caps, &out, NULL), 1);
    assert_int_equal(out.task_id, 1);
    assert_int_equal(pb_sched_drop_job(s, 7), 39);
    assert_int_equal(pb_sched_depth(s), 0);
    assert_int_equal(pb_sched_pick(s, &cpu_caps, &out, NULL), 0);
    pdb_task_ref_t again = ref(200, 7, 0, "any", "oracle");
    pb_sched_add(s, &again, 0, 0);
    assert_int_equal(pb_sched_pick(s, &cpu_caps, &out, NULL), 1);
    assert_int_equal(out.task_id, 200);
    pb_sched_free(s);
}

static double utc(int y, int mo, int d, int h, int mi)
{
    struct tm tm = {0};
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    return (double)timegm(&tm);
}

static void test_cron(void **state)
{
    (void)state;
    pb_cron_t c;
    pb_err_t err = {0};
    assert_int_equal(pb_cron_parse("0 2 * * *", &c, &err), 0);
    assert_true(pb_cron_next(&c, utc(2026, 11, 25, 21, 43)) == utc(2026, 11, 26, 2, 0));
    assert_int_equal(pb_cron_parse("*/15 * * * *", &c, &err), 0);
    assert_true(pb_cron_next(&c, utc(2026, 11, 25, 21, 43)) == utc(2026, 11, 25, 21, 45));
    assert_true(pb_cron_next(&c, utc(2026, 11, 25, 21, 45)) == utc(2026, 11, 25, 22, 0));
    assert_int_equal(pb_cron_parse("30 4 * * mon-fri", &c, &err), 0);
    /* 2026-11-28 is a Saturday: next is Monday the 30th. */
    assert_true(pb_cron_next(&c, utc(2026, 11, 27, 5, 0)) == utc(2026, 11, 30, 4, 30));
    assert_int_equal(pb_cron_parse("0 0 1 jan,jul *", &c, &err), 0);
    assert_true(pb_cron_next(&c, utc(2026, 11, 25, 0, 0)) == utc(2027, 1, 1, 0, 0));
    assert_int_equal(pb_cron_parse("@nightly", &c, &err), 0);
    assert_true(pb_cron_next(&c, utc(2026, 11, 25, 1, 59)) == utc(2026, 11, 25, 2, 0));
    assert_int_equal(pb_cron_parse("0 0 30 2 *", &c, &err), 0);
    assert_true(pb_cron_next(&c, utc(2026, 1, 1, 0, 0)) < 0); /* never */
    assert_int_equal(pb_cron_parse("@every 90s", &c, &err), 0);
    assert_true(pb_cron_next(&c, 1000.5) == 1090.5);
    assert_int_equal(pb_cron_parse("@every 2h", &c, &err), 0);
    assert_true(pb_cron_next(&c, 0) == 7200);
    assert_int_equal(pb_cron_parse("@every 5", &c, &err), PB_EINVAL);
    assert_int_equal(pb_cron_parse("@every 0s", &c, &err), PB_EINVAL);
    assert_int_equal(pb_cron_parse("@every 5sx", &c, &err), PB_EINVAL);
    assert_non_null(strstr(err.msg, "interval"));
    assert_int_equal(pb_cron_parse("0 0 * *", &c, &err), PB_EINVAL);
    assert_non_null(strstr(err.msg, "5 fields"));
    assert_int_equal(pb_cron_parse("61 * * * *", &c, &err), PB_EINVAL);
    assert_non_null(strstr(err.msg, "minute"));
    assert_int_equal(pb_cron_parse("* * * * xyz", &c, &err), PB_EINVAL);
    assert_non_null(strstr(err.msg, "day-of-week"));
    assert_int_equal(pb_cron_parse("1,,2 * * * *", &c, &err), PB_EINVAL);
    assert_int_equal(pb_cron_parse("5-1 * * * *", &c, &err), PB_EINVAL);
}

int pb_test_sched(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_priority_first),
        cmocka_unit_test(test_round_robin_no_starvation),
        cmocka_unit_test(test_capabilities),
        cmocka_unit_test(test_front_and_drop),
        cmocka_unit_test(test_cron),
    };
    return cmocka_run_group_tests_name("sched", tests, NULL, NULL);
}
