"""The dashboard's monitor pages in headless Chromium against a real
coordinator and worker: the job monitor follows a slow job to completion
without a reload, a cancel from the page stops a job, the items page shows
a sample's prompt excerpt, prediction, reference and score as the API has
them, and the schedules page lists a schedule and draws its timeline.
Screenshots go under $PB_BUILDDIR/test-screenshots/."""

import pytest

import pbutil
from browser import Page, browser, chart_served  # noqa: F401 (browser is a fixture)
from pbutil import spec, t, wait_for


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    yield from pbutil.running_cluster(tmp_path_factory.mktemp("webmon"),
                                      lambda c: c.start(workers=1, slots=1))


def _bar(p, css):
    return p.js("const e = document.querySelector(arguments[0]);"
                "return e ? [Number(e.dataset.done), Number(e.dataset.total)] : null;", css)


def test_job_monitor_follows_a_job_to_done(cluster, browser):  # noqa: F811
    api = cluster.api
    # 24 items at 60 ms on one slot: about 1.5 s, long enough to watch
    job = api.submit(spec(name="watched", backend="oracle", digits=(1, 3), samples=8,
                          shard_size=4, model_extra={"delay_ms": 60}))
    p = Page(browser, cluster.url).open(f"jobs.html?job={job}",
                                        ready="document.getElementById('job-progress')")
    first = _bar(p, "#job-progress")
    assert first[1] == 24, first
    load_marker = p.js("window.__no_reload = 1; return 1;")
    seen = {first[0]}
    wait_for(lambda: seen.add(_bar(p, "#job-progress")[0]) or
             p.js("return document.getElementById('job-status').dataset.state") == "done",
             t(30), 0.1, "the page to show the job done")
    assert p.js("return window.__no_reload") == load_marker  # same page, no reload
    assert _bar(p, "#job-progress") == [24, 24]
    assert len(seen) >= 2, seen  # progress was seen moving, not only the end
    assert "100%" in p.text("#job-progress")
    assert p.js("return document.getElementById('cancel')") is None
    assert p.text("#job-view .state") == "done"
    # every bucket row ends full, with a link to its items
    assert p.js("return [...document.querySelectorAll('.buckets .pbar')]"
                ".every(b => b.dataset.done === b.dataset.total)")
    assert p.js("return document.querySelectorAll('.buckets a[href*=\"items.html\"]').length") == 3
    p.screenshot("jobs-one-done")
    # the list shows it done, and the worker
    p.open("jobs.html", ready="document.getElementById('jobs-table') && "
           "document.getElementById('workers-table')")
    row = p.js("return [...document.querySelectorAll('#jobs-table tbody tr')]"
               ".map(r => r.textContent).find(t => t.includes('watched'))")
    assert row and "done" in row and "24 / 24" in row, row
    assert "w1" in p.text("#workers-table")
    p.screenshot("jobs-list")
    # a phone's width: no sideways scroll of the page itself
    p.resize(400, 800)
    assert p.js("return document.documentElement.scrollWidth") <= 400 + 2
    p.screenshot("jobs-list-phone")
    p.resize(1280, 900)
    p.assert_no_js_errors()


def test_cancel_from_the_page_stops_the_job(cluster, browser):  # noqa: F811
    api = cluster.api
    job = api.submit(spec(name="to-cancel", backend="random", digits=(1, 4), samples=50,
                          shard_size=5, model_extra={"delay_ms": 100}))
    p = Page(browser, cluster.url).open(f"jobs.html?job={job}",
                                        ready="document.getElementById('cancel')")
    p.js("document.getElementById('cancel').click();")
    assert api.job(job)["state"] in ("queued", "running")  # one click only arms it
    assert p.text("#cancel") == "Confirm cancel"
    p.js("document.getElementById('cancel').click();")
    p.wait("document.getElementById('job-status') && "
           "document.getElementById('job-status').dataset.state === 'cancelled'",
           what="the page to show the job cancelled")
    j = api.job(job)
    assert j["state"] == "cancelled" and j["items_done"] < j["items_total"], j
    assert "cancelled" in p.text("#pb-banner")
    p.screenshot("jobs-cancelled")
    p.assert_no_js_errors()


def test_items_page_shows_prompt_prediction_reference_score(cluster, browser):  # noqa: F811
    api = cluster.api
    job = api.submit({"name": "items", "model": {"name": "random", "backend": "random"},
                      "seed": 7, "runs": [{"suite": "longctx", "task": "passkey", "samples": 3,
                                           "params": {"lengths": [1024, 2048], "depths": 2}}]})
    api.wait_job(job, t(60))
    page = api.get_json(f"/api/v1/jobs/{job}/items?run=0&bucket=2048&limit=2")
    first = page["items"][0]
    p = Page(browser, cluster.url).open(
        f"items.html?job={job}&run=0&bucket=2048&limit=20",
        ready="document.querySelector('#items article .prompt-text[data-loaded=\"1\"]')")
    card = ("document.querySelector('#items article[data-task=\"%d\"][data-idx=\"%d\"]')"
            % (first["task_id"], first["idx"]))
    assert p.js(f"return {card}.querySelector('.prediction pre').textContent") == first["prediction"]
    assert p.js(f"return {card}.querySelector('.reference pre').textContent") == first["reference"]
    assert p.js(f"return {card}.querySelector('.score').dataset.score") == str(first["score"]) or \
        float(p.js(f"return {card}.querySelector('.score').dataset.score")) == first["score"]
    p.wait(f"{card}.querySelector('.prompt-text').dataset.loaded === '1'")
    excerpt = p.js(f"return {card}.querySelector('.prompt-text').textContent")
    full = api.get_json(f"/api/v1/jobs/{job}/items/{first['task_id']}/{first['idx']}"
                        "/prompt?max=100000")["prompt"]
    assert "characters left out" in excerpt
    assert full.startswith(excerpt.split("\n\u2026")[0][:200])
    assert full.endswith(excerpt.split("\u2026\n")[-1][-200:])
    assert p.js("return document.querySelectorAll('#items article').length") == 3
    p.screenshot("items")
    # the whole prompt on demand
    p.js(f"{card}.querySelector('.prompt button').click();")
    p.wait(f"{card}.querySelector('.prompt-text').textContent.length === {len(full)}",
           what="the whole prompt")
    # paging: the cursor goes in the URL and back returns
    p.open(f"items.html?job={job}&limit=2", ready="document.getElementById('next-page')")
    ids = p.js("return [...document.querySelectorAll('#items article')].map(a => a.dataset.idx + ':' + a.dataset.task)")
    p.js("document.getElementById('next-page').click();")
    p.wait("location.search.includes('after=')")
    p.wait("document.querySelectorAll('#items article').length === 2 && "
           "[...document.querySelectorAll('#items article')].map(a => a.dataset.idx + ':' + a.dataset.task).join() !== %r"
           % ",".join(ids))
    browser.back()
    p.wait("!location.search.includes('after=') && [...document.querySelectorAll('#items article')]"
           ".map(a => a.dataset.idx + ':' + a.dataset.task).join() === %r" % ",".join(ids))
    p.assert_no_js_errors()


def test_schedules_page_lists_and_plots(cluster, browser):  # noqa: F811
    api = cluster.api
    r = api.post("/api/v1/schedules", {"name": "nightly-web", "cron": "@every 1s",
                                       "job": spec(name="sched", digits=(1, 2), samples=4)})
    assert r.status == 201, r
    sid = r.json()["id"]

    def done_jobs():
        return [j for j in api.get_json(f"/api/v1/jobs?schedule={sid}")["jobs"]
                if j["state"] == "done"]

    wait_for(lambda: len(done_jobs()) >= 2, t(30), 0.2, "two finished firings")
    assert api.post(f"/api/v1/schedules/{sid}/disable").status == 200
    wait_for(lambda: all(j["state"] in ("done", "failed", "cancelled") for j in
                         api.get_json(f"/api/v1/jobs?schedule={sid}")["jobs"]), t(30), 0.2,
             "the schedule's jobs to finish")
    n_done = len(done_jobs())
    p = Page(browser, cluster.url).open(
        "schedules.html", ready=f"document.querySelector('#schedule-{sid} .schedule-jobs table')")
    assert "nightly-web" in p.text(f"#schedule-{sid} h2")
    assert "disabled" in p.text(f"#schedule-{sid} h2")
    rows = p.js(f"return document.querySelectorAll('#schedule-{sid} .schedule-jobs tbody tr').length")
    assert rows == len(api.get_json(f"/api/v1/jobs?schedule={sid}")["jobs"])
    if chart_served(api):
        p.wait(f"document.querySelector('#schedule-{sid} .chart-box canvas')")
        # one run per job: one point per finished job
        assert p.js(f"return Number(document.querySelector('#schedule-{sid} .chart-box')"
                    ".dataset.points)") == n_done
        assert p.js(f"return Chart.getChart(document.querySelector('#schedule-{sid} canvas'))"
                    ".data.datasets[0].data.filter(v => v !== null).every(v => v === 1)")
        # and it is drawn, at a visible size: count the painted pixels
        painted = p.js(f"const c = document.querySelector('#schedule-{sid} canvas');"
                       "const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
                       "let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i]) n++; return n")
        assert painted > 1000, painted
        shown = p.js(f"const c = document.querySelector('#schedule-{sid} canvas');"
                     "return [c.clientWidth, c.clientHeight]")
        assert shown[0] > 100 and shown[1] > 50, shown
    else:
        assert "Chart.js is not available" in p.text(f"#schedule-{sid}")
    p.screenshot("schedules")
    # one schedule by URL, and the empty state of an unknown one
    p.open(f"schedules.html?schedule={sid}", ready=f"document.getElementById('schedule-{sid}')")
    p.open("schedules.html?schedule=99999", ready="document.querySelector('.empty')")
    assert "No schedule 99999" in p.text(".empty")
    p.assert_no_js_errors(allow=("static.js", "favicon.ico", "chart.js"))
