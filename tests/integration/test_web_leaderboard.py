"""The dashboard's leaderboard, model and heatmap pages in headless Chromium
against a real coordinator and worker with oracle and random jobs run: the
ranking (oracle above random), a Chart.js chart with one point per length
bucket, heatmap cells equal to the API's breakdown, and empty states with no
data. Screenshots go to $PB_BUILDDIR/test-screenshots/."""

import os

import pytest

import pbutil
from browser import Page, browser, chart_served  # noqa: F401 (browser is a fixture)
from pbutil import t

DIGITS = (1, 4)


def _spec(backend):
    return {
        "name": "web-" + backend,
        "model": {"name": backend, "backend": backend},
        "runs": [{"suite": "arithmetic", "task": "add", "samples": 24,
                  "params": {"digits": list(DIGITS), "format": "reversed"}},
                 {"suite": "longctx", "task": "passkey", "samples": 6,
                  "params": {"lengths": [1024, 2048], "depths": 3}}],
        "seed": 21,
        "shard_size": 16,
    }


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    def setup(c):
        # PB_WEB_DIR: serve another copy of the dashboard (default: the source tree's web/).
        web = os.environ.get("PB_WEB_DIR")
        c.start(workers=1, slots=2, coord_extra=["--web", web] if web else [])
        c.job_ids = {b: c.api.submit(_spec(b)) for b in ("oracle", "random")}
        for i in c.job_ids.values():
            c.api.wait_job(i, t(60))
    yield from pbutil.running_cluster(tmp_path_factory.mktemp("web"), setup)


def test_leaderboard_ranks_oracle_above_random(cluster, browser):  # noqa: F811
    p = Page(browser, cluster.url).open("/")
    p.wait("location.pathname.endsWith('leaderboard.html')", what="the redirect from /")
    p.wait("document.querySelectorAll('.lb-group').length >= 2", what="leaderboard groups")
    order = p.js("""
        const g = [...document.querySelectorAll('.lb-group')]
            .find(s => s.querySelector('h2').textContent === 'arithmetic / add');
        return [...g.querySelectorAll('tbody tr')].map(r => r.cells[1].textContent);""")
    assert order == ["oracle", "random"], order
    p.screenshot("leaderboard")
    # Filter by model name: state in the URL, one row per table left.
    p.d.find_element("id", "f-model").send_keys("rand")
    p.wait("location.search.includes('model=rand')", what="the filter in the URL")
    rows = p.js("return [...document.querySelectorAll('.lb-table tbody tr')]"
                ".map(r => r.cells[1].textContent);")
    assert rows and set(rows) == {"random"}, rows
    # Sort by score ascending with the keyboard: random first again.
    p.open("leaderboard.html?suite=arithmetic")
    p.wait("document.querySelectorAll('.lb-table tbody tr').length === 2")
    th = p.d.find_element("css selector", ".lb-table th[data-key=score]")
    th.send_keys("\n")   # Enter on the focused header: descending first (numbers)
    th.send_keys(" ")    # Space: ascending
    p.wait("document.querySelector('.lb-table th[data-key=score]')"
           ".getAttribute('aria-sort') === 'ascending'")
    first = p.text(".lb-table tbody tr td:nth-child(2)")
    assert first == "random", first
    assert "sort=score" in p.js("return location.search;")
    p.assert_no_js_errors()


def test_model_page_chart_points(cluster, browser):  # noqa: F811
    p = Page(browser, cluster.url).open("model.html?model=oracle&compare=random")
    p.wait("document.querySelectorAll('.chart-card').length >= 2", what="chart cards")
    if not chart_served(cluster.api):
        pytest.skip("the coordinator does not serve /vendor/chart.js yet")
    p.wait("window.Chart && [...document.querySelectorAll('canvas')].every(c => Chart.getChart(c))",
           what="Chart.js charts")
    got = p.js("""
        const card = document.querySelector('.chart-card[data-task="arithmetic / add"]');
        const ch = Chart.getChart(card.querySelector('canvas'));
        return ch.data.datasets.map(d => [d.pbRole, d.label, d.data.length,
                                          d.data.map(pt => pt.y)]);""")
    acc = [d for d in got if d[0] == "accuracy"]
    assert [d[1] for d in acc] == ["oracle", "random"], got
    n_buckets = DIGITS[1] - DIGITS[0] + 1
    assert all(d[2] == n_buckets for d in got), got
    assert acc[0][3] == [1.0] * n_buckets, acc
    # The random line's points are the API's bucket accuracies.
    lb = cluster.api.get_json("/api/v1/leaderboard")["entries"]
    (rnd,) = [e for e in lb if e["model"] == "random" and e["task"] == "add"]
    assert acc[1][3] == pytest.approx([b["accuracy"] for b in rnd["buckets"]]), (acc, rnd)
    bands = [d for d in got if d[0] in ("ci_low", "ci_high")]
    assert len(bands) == 4, got
    # Digits are whole numbers: one tick per measured length, none repeated.
    ticks = p.js("""
        const card = document.querySelector('.chart-card[data-task="arithmetic / add"]');
        return Chart.getChart(card.querySelector('canvas')).scales.x.ticks.map(t => t.label);""")
    assert ticks == [str(d) for d in range(DIGITS[0], DIGITS[1] + 1)], ticks
    # The legend shows the accuracy lines only, as point styles (no dashed boxes).
    legend = p.js("""
        const ch = Chart.getChart(document.querySelector('.chart-card canvas'));
        return [ch.legend.legendItems.map(i => i.text), ch.options.plugins.legend.labels.usePointStyle];""")
    assert legend == [["oracle", "random"], True], legend
    p.screenshot("model")
    p.assert_no_js_errors()


def test_heatmap_cells_match_api(cluster, browser):  # noqa: F811
    job = cluster.job_ids["random"]
    res = cluster.api.get_json(f"/api/v1/jobs/{job}/results")
    groups = {g["value"]: g for g in res["runs"][0]["breakdown"]["da,db"]["groups"]}
    p = Page(browser, cluster.url).open(f"heatmap.html?job={job}&run=0")
    p.wait("document.querySelectorAll('.heatmap td.cell[data-acc]').length > 0", what="heatmap cells")
    cells = p.js("return [...document.querySelectorAll('.heatmap td.cell[data-acc]')]"
                 ".map(td => [td.dataset.row + ',' + td.dataset.col, +td.dataset.acc, +td.dataset.n,"
                 " td.textContent]);")
    assert len(cells) == len(groups), (cells, groups)
    for key, acc, n, text in cells:
        assert acc == pytest.approx(groups[key]["accuracy"]) and n == groups[key]["n"], key
        assert text == f"{groups[key]['accuracy']:.2f}", (key, text)
    # Hover shows n and accuracy and a link to the cell's items.
    from selenium.webdriver.common.action_chains import ActionChains
    td = p.d.find_element("css selector", ".heatmap td.cell[data-row='1'][data-col='1']")
    ActionChains(p.d).move_to_element(td).perform()
    p.wait("document.getElementById('detail').textContent.includes('n ')")
    detail = p.text("#detail")
    assert f"n {groups['1,1']['n']}" in detail, detail
    href = p.js("return document.querySelector('#detail a').getAttribute('href');")
    assert href == f"items.html?job={job}&run=0&bucket=1", href
    p.screenshot("heatmap-digits")
    # longctx: depth x length from the grid.
    p.open(f"heatmap.html?job={job}&run=1")
    p.wait("document.querySelectorAll('.heatmap td.cell[data-acc]').length === 6",
           what="3 depths x 2 lengths")
    assert p.text(".heatmap thead th:nth-child(2)") == "1024"
    assert p.js("return document.getElementById('f-key').value;") == "depth"
    p.screenshot("heatmap-depth")
    p.assert_no_js_errors()


def test_empty_states(make_cluster, browser):  # noqa: F811
    c = make_cluster()
    c.start_coordinator()
    p = Page(browser, c.url).open("leaderboard.html")
    p.wait("document.querySelector('#lb-groups .empty')", what="the leaderboard's empty state")
    assert "No results yet" in p.text("#lb-groups .empty")
    p.screenshot("leaderboard-empty")
    p.open("model.html?model=nobody")
    p.wait("document.querySelector('#charts .empty')")
    assert "No results yet" in p.text("#charts .empty")
    p.open("heatmap.html")
    p.wait("document.querySelector('#heat .empty')")
    assert "Choose a job" in p.text("#heat .empty")
    # A job that does not exist: an error banner, not a crash.
    p.open("heatmap.html?job=999")
    p.wait("!document.getElementById('pb-banner').hidden", what="the error banner")
    assert "404" in p.text("#pb-banner")
    p.assert_no_js_errors(allow=("static.js", "favicon.ico", "vendor/chart.js", "/api/v1/jobs/999"))


def test_phone_width(cluster, browser):  # noqa: F811
    """At 390 px nothing widens the page: wide tables scroll inside their box."""
    job = cluster.job_ids["random"]
    p = Page(browser, cluster.url)
    p.resize(390, 844)
    try:
        pages = (("leaderboard.html", "document.querySelectorAll('.lb-table tbody tr').length >= 4"),
                 ("model.html?model=oracle&compare=random",
                  "document.querySelectorAll('.chart-card').length >= 2 && (!window.Chart || "
                  "[...document.querySelectorAll('canvas')].every(c => Chart.getChart(c)))"),
                 (f"heatmap.html?job={job}&run=0", "document.querySelector('.heatmap td.cell')"))
        for path, ready in pages:
            p.open(path)
            p.wait(ready, what=path)
            width = p.js("return window.innerWidth;")
            assert width <= 420, width  # the window really is phone-sized
            over = p.js("""
                const w = document.documentElement.clientWidth;
                const wide = [...document.querySelectorAll('main *')].filter(e => {
                    if (e.closest('.table-wrap') && !e.classList.contains('table-wrap')) return false;
                    const r = e.getBoundingClientRect();
                    return r.width > 0 && (r.right > w + 1 || r.left < -1);
                }).map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right));
                return [document.documentElement.scrollWidth, w, wide.slice(0, 5)];""")
            assert over[0] <= over[1] and not over[2], (path, over)
            p.screenshot("phone-" + path.split(".")[0])
        p.assert_no_js_errors()
    finally:
        p.resize(1280, 900)
