"""The dashboard's regression pages in headless Chromium against a real
coordinator and worker, with a regression raised the real way (regressdata):
the schedules page lists it with its values, links and triage buttons, and
acknowledging it there changes its state in the API; the schedule's card
lists its series and its webhook delivery; the series page plots every point
(with error bars, the gate band and the regression marked) and tables them.
Screenshots go under $PB_BUILDDIR/test-screenshots/."""

import pytest

from regressdata import cluster, data  # noqa: F401 (fixtures)
from browser import Page, browser, chart_served  # noqa: F401 (browser is a fixture)
from pbutil import t, wait_for

ALLOW = ("static.js", "favicon.ico", "chart.js")




def _row(p, rid):
    return p.js("const r = document.querySelector(arguments[0]); return r ? "
                "[r.dataset.state, r.textContent] : null;",
                f".regressions-table tr[data-id='{rid}']")


def test_schedules_page_lists_and_acknowledges(cluster, data, browser):  # noqa: F811
    api = cluster.api
    reg = data.first
    rid = reg["id"]
    assert reg["state"] == "detected", reg
    p = Page(browser, cluster.url).open(
        "schedules.html", ready=f"document.querySelector(\".regressions-table tr[data-id='{rid}']\")")
    state, text = _row(p, rid)
    assert state == "detected", text
    s = reg["series"]
    assert f"{s['suite']} / {s['task']}" in text and data.name in text, text
    assert f"#{reg['job_after']}" in text, text
    # the values, as the page formats a proportion: before -> after in percent
    assert f"{100 * reg['value_before']:.1f}% \u2192 {100 * reg['value_after']:.1f}%" in text, text
    # open = detected or acknowledged; the heading counts the unacknowledged
    n_open = len(api.get_json("/api/v1/regressions?state=open")["regressions"])
    assert p.js("return document.querySelectorAll('.regressions-table tbody tr').length") == n_open
    unack = api.get_json("/api/v1/regressions")["unacknowledged"]
    assert unack >= 1
    assert p.js("return Number(document.getElementById('regress-title').dataset.unacknowledged)") == unack
    href = p.js(f"return document.querySelector(\".regressions-table tr[data-id='{rid}'] "
                "a[href^='series.html']\").getAttribute('href')")
    assert href == f"series.html?id={data.series_id}", href
    p.screenshot("regressions-detected")

    # Acknowledge from the page: the API has it, and the row follows.
    p.js(f"document.querySelector(\".regressions-table tr[data-id='{rid}'] "
         "button[data-state='acknowledged']\").click();")
    wait_for(lambda: api.get_json(f"/api/v1/regressions/{rid}")["state"] == "acknowledged",
             t(10), 0.1, "the API to show the regression acknowledged")
    p.wait(f"document.querySelector(\".regressions-table tr[data-id='{rid}']\").dataset.state"
           " === 'acknowledged'", what="the row to show acknowledged")
    assert "acknowledged" in p.text("#pb-banner")
    # Still open, so still listed; gone from the detected filter.
    p.js("const s = document.getElementById('f-rstate'); s.value = 'detected';"
         "s.dispatchEvent(new Event('change'));")
    p.wait("location.search.includes('rstate=detected')")
    p.wait(f"!document.querySelector(\".regressions-table tr[data-id='{rid}']\") && "
           "document.getElementById('regressions').textContent.length > 0")
    p.open("schedules.html?rstate=acknowledged",
           ready=f"document.querySelector(\".regressions-table tr[data-id='{rid}']\")")
    # Back to detected for the other tests (Reopen is offered once triaged).
    p.js(f"document.querySelector(\".regressions-table tr[data-id='{rid}'] "
         "button[data-state='detected']\").click();")
    wait_for(lambda: api.get_json(f"/api/v1/regressions/{rid}")["state"] == "detected",
             t(10), 0.1, "the API to show the regression reopened")
    p.assert_no_js_errors(allow=ALLOW)


def test_schedule_card_series_and_deliveries(cluster, data, browser):  # noqa: F811
    api = cluster.api
    sid = data.sid
    series = api.get_json(f"/api/v1/series?schedule={sid}")["series"]
    assert any(s["id"] == data.series_id for s in series), series
    wait_for(lambda: api.get_json(f"/api/v1/deliveries?schedule={sid}")["deliveries"],
             t(30), 0.2, "a webhook delivery")
    p = Page(browser, cluster.url).open(
        f"schedules.html?schedule={sid}",
        ready=f"document.querySelector('#schedule-{sid} .series-table') && "
              f"document.querySelector('#schedule-{sid} .deliveries-table')")
    assert p.js(f"return document.querySelectorAll('#schedule-{sid} .series-table tbody tr').length") \
        == len(series)
    assert p.js(f"return !!document.querySelector(\"#schedule-{sid} .series-table "
                f"a[href='series.html?id={data.series_id}']\")")
    assert data.receiver.url in p.text(f"#schedule-{sid} .job-meta")
    dels = api.get_json(f"/api/v1/deliveries?schedule={sid}")["deliveries"]
    states = p.js(f"return [...document.querySelectorAll('#schedule-{sid} .deliveries-table tbody tr')]"
                  ".map(r => r.dataset.state)")
    assert states == [d["state"] for d in dels][:20], (states, dels)
    # only this schedule's regressions when one schedule is shown
    ids = p.js("return [...document.querySelectorAll('.regressions-table tbody tr')].map(r => +r.dataset.id)")
    assert set(ids) == {r["id"] for r in data.regressions}, ids
    p.screenshot("schedule-series-deliveries")
    p.assert_no_js_errors(allow=ALLOW)


def test_series_page_plots_points(cluster, data, browser):  # noqa: F811
    api = cluster.api
    one = api.get_json(f"/api/v1/series/{data.series_id}")
    points = one["points"]
    assert len(points) == len(data.good_jobs) + len(data.bad_jobs), (points, data.good_jobs)
    p = Page(browser, cluster.url).open(f"series.html?id={data.series_id}",
                                        ready="document.querySelector('.points-table')")
    assert p.js("return document.querySelectorAll('.points-table tbody tr').length") == len(points)
    regressed = p.js("return [...document.querySelectorAll('.points-table tr.regressed')]"
                     ".map(r => +r.dataset.job)")
    assert data.first["job_after"] in regressed, regressed
    assert p.js("return [...document.querySelectorAll('.regressions-table tbody tr')].map(r => +r.dataset.id)") \
        == [r["id"] for r in one["regressions"]]
    if not chart_served(api):
        assert "Chart.js is not available" in p.text("#chart")
        return
    p.wait("window.Chart && document.querySelector('#chart canvas') && "
           "!!Chart.getChart(document.querySelector('#chart canvas'))", what="the series chart")
    got = p.js("""
        const ch = Chart.getChart(document.querySelector('#chart canvas'));
        const v = ch.data.datasets.find(d => d.pbRole === 'value');
        const i = ch.data.datasets.indexOf(v);
        // copies: Chart.js hangs its listeners on the arrays (circular for JSON)
        return {labels: [...ch.data.labels], values: [...v.data], lower: [...v.pbLower],
                upper: [...v.pbUpper], styles: [...v.pointStyle],
                roles: ch.data.datasets.map(d => d.pbRole), drawn: ch.getDatasetMeta(i).data.length};""")
    assert got["drawn"] == len(points) and len(got["values"]) == len(points), got
    assert got["values"] == pytest.approx([pt["value"] for pt in points])
    assert got["labels"] == [f"#{pt['job_id']}" for pt in points], got["labels"]
    assert got["lower"] == [pt["lower"] for pt in points] and got["upper"] == [pt["upper"] for pt in points]
    k = [pt["job_id"] for pt in points].index(data.first["job_after"])
    assert got["styles"][k] == "triangle" and got["styles"].count("triangle") == \
        len({r["job_after"] for r in one["regressions"]}), got["styles"]
    assert {"limit_lo", "limit_hi", "value"} <= set(got["roles"]), got["roles"]
    painted = p.js("const c = document.querySelector('#chart canvas');"
                   "const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
                   "let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i]) n++; return n")
    assert painted > 1000, painted
    p.screenshot("series")
    # a phone's width: the page does not scroll sideways (wide tables scroll in their box)
    p.resize(400, 800)
    try:
        for path in (f"series.html?id={data.series_id}", f"schedules.html?schedule={data.sid}"):
            p.open(path, ready="document.querySelector('.regressions-table')")
            assert p.js("return document.documentElement.scrollWidth") <= 400 + 2, path
    finally:
        p.resize(1280, 900)
    # the index of series without ?id=, and a series that does not exist
    p.open("series.html", ready="document.querySelector('.series-table')")
    assert p.js(f"return !!document.querySelector(\".series-table a[href='series.html?id={data.series_id}']\")")
    p.open("series.html?id=999999", ready="!document.getElementById('pb-banner').hidden")
    assert "404" in p.text("#pb-banner")
    p.assert_no_js_errors(allow=ALLOW + ("/api/v1/series/999999",))
