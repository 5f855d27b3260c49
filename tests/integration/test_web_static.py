"""The leaderboard, model and heatmap pages of a `posbench export` snapshot,
served by a plain static host (python3 -m http.server), against the same
pages served live by the coordinator after real oracle and random jobs: the
same leaderboard rows, chart points and heatmap cells; the live-only pages
(jobs, items, schedules) are left out of the nav and no link points at them."""

import os
import subprocess
import sys
import urllib.request

import pytest

import pbutil
from browser import WEB_DIR, Page, browser  # noqa: F401 (browser is a fixture)
from pbutil import binary, free_port, t, wait_for

LIVE_ONLY = ("jobs.html", "items.html", "schedules.html")

# Page state as plain data, the same script on both hosts.
LEADERBOARD = """return [...document.querySelectorAll('.lb-group')].map(g => [
    g.querySelector('h2').textContent,
    [...g.querySelectorAll('tbody tr')].map(r => [...r.cells].slice(0, 8).map(c => c.textContent))]);"""
CHARTS = """return [...document.querySelectorAll('.chart-card')].map(card => {
    const ch = Chart.getChart(card.querySelector('canvas'));
    return [card.dataset.task, ch.data.datasets.map(d => [d.pbRole, d.label,
        d.data.map(p => [p.x, p.y])]), ch.scales.x.ticks.map(tk => tk.label)];
});"""
CELLS = """return [...document.querySelectorAll('.heatmap td.cell[data-acc]')]
    .map(td => [td.dataset.row, td.dataset.col, td.dataset.acc, td.dataset.n, td.textContent]);"""
LINKS = "return [...document.querySelectorAll('a')].map(a => a.getAttribute('href'));"
NAV = "return [...document.querySelectorAll('.pb-header nav a')].map(a => a.getAttribute('href'));"


def _spec(backend):
    return {
        "name": "static-" + backend,
        "model": {"name": backend + "-model", "backend": backend},
        "runs": [{"suite": "arithmetic", "task": "add", "samples": 16,
                  "params": {"digits": [1, 3], "format": "reversed"}},
                 {"suite": "longctx", "task": "passkey", "samples": 4,
                  "params": {"lengths": [1024, 2048], "depths": 2}}],
        "seed": 5,
        "shard_size": 16,
    }


@pytest.fixture(scope="module")
def sites(tmp_path_factory):
    """(cluster, live URL, static URL, job ids) after an export."""
    tmp = tmp_path_factory.mktemp("webstatic")
    c = pbutil.Cluster(tmp)
    srv = None
    try:
        c.start(workers=1, slots=2, coord_extra=["--web", WEB_DIR])
        ids = {b: c.api.submit(_spec(b)) for b in ("oracle", "random")}
        for i in ids.values():
            c.api.wait_job(i, t(60))
        out = tmp / "site"
        p = subprocess.run([binary("posbench"), "export", "--out", str(out), "--url", c.url,
                            "--web", WEB_DIR], capture_output=True, text=True, timeout=t(60))
        assert p.returncode == 0, (p.returncode, p.stderr)
        port = free_port()
        srv = subprocess.Popen(["/usr/bin/python3", "-m", "http.server", str(port), "--bind",
                                "127.0.0.1", "--directory", str(out)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"

        def up():
            try:
                with urllib.request.urlopen(base + "/static.js", timeout=2) as r:
                    return r.status == 200
            except OSError:
                return False
        wait_for(up, t(10), 0.05, "python3 -m http.server")
        yield c, c.url, base, ids, out
    finally:
        if srv:
            srv.terminate()
            srv.wait(timeout=10)
        problems = c.close()
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


def _both(browser, sites, path, ready, script):  # noqa: F811
    """The state `script` reads from path, live then static."""
    _, live, static, _, _ = sites
    got = []
    for base in (live, static):
        p = Page(browser, base).open(path)
        p.wait(ready, what=f"{ready} on {base}/{path}")
        got.append(p.js(script))
        assert p.js("return window.PB_STATIC === true;") == (base == static)
        p.assert_no_js_errors()
    return got, p


def test_static_leaderboard_same_rows(browser, sites):  # noqa: F811
    ready = "document.querySelectorAll('.lb-table tbody tr').length === 4"
    (live, snap), p = _both(browser, sites, "leaderboard.html", ready, LEADERBOARD)
    assert [g for g, _ in snap] == ["arithmetic / add", "longctx / passkey"], snap
    assert snap == live
    assert [r[1] for r in snap[0][1]] == ["oracle-model", "random-model"], snap
    # The snapshot's nav and links leave out the live-only pages.
    nav = p.js(NAV)
    assert nav == ["leaderboard.html", "model.html", "heatmap.html"], nav
    links = p.js(LINKS)
    assert not [h for h in links if h and h.split("?")[0] in LIVE_ONLY], links
    assert "static snapshot" in p.text(".pb-header")
    p.screenshot("static-leaderboard")
    live_nav = Page(browser, sites[1]).open("leaderboard.html").js(NAV)
    assert set(LIVE_ONLY) <= set(live_nav), live_nav


def test_static_model_same_points(browser, sites):  # noqa: F811
    _, _, _, _, out = sites
    if not (out / "vendor" / "chart.js").is_file():
        pytest.skip("the export has no Chart.js (configure did not find libjs-chart.js)")
    ready = ("window.Chart && document.querySelectorAll('.chart-card').length === 2 && "
             "[...document.querySelectorAll('.chart-card canvas')].every(c => Chart.getChart(c))")
    (live, snap), p = _both(browser, sites, "model.html?model=oracle-model&compare=random-model",
                            ready, CHARTS)
    assert snap == live
    add = dict((k, v) for k, v, _ in snap)["arithmetic / add"]
    acc = [d for d in add if d[0] == "accuracy"]
    assert [d[1] for d in acc] == ["oracle-model", "random-model"]
    assert acc[0][2] == [[1, 1], [2, 1], [3, 1]], acc
    assert [ticks for _, _, ticks in snap] == [["1", "2", "3"], ["1,024", "2,048"]], snap
    assert not [h for h in p.js(LINKS) if h and h.split("?")[0] in LIVE_ONLY]
    p.screenshot("static-model")


def test_static_heatmap_same_cells(browser, sites):  # noqa: F811
    job = sites[3]["random"]
    for run, n in ((0, 9), (1, 4)):
        ready = f"document.querySelectorAll('.heatmap td.cell[data-acc]').length === {n}"
        (live, snap), p = _both(browser, sites, f"heatmap.html?job={job}&run={run}", ready, CELLS)
        assert snap == live and len(snap) == n, (run, snap, live)
        # Live cells link to their items; the snapshot has no items page.
        assert p.js("return document.querySelectorAll('.heatmap td.cell a').length;") == 0
        assert not [h for h in p.js(LINKS) if h and h.split("?")[0] in LIVE_ONLY]
        p.screenshot(f"static-heatmap-{run}")
