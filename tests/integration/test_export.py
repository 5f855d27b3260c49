"""`posbench export --out DIR`: a static snapshot of the leaderboard and model
pages. Runs real jobs, exports, serves DIR with python3 -m http.server and
checks the files, that each JSON file equals the API's answer, and (with
headless Chromium) that the leaderboard page shows the rows from the files.
Also the errors: coordinator unreachable, DIR not writable, no --out."""

import json
import os
import subprocess
import sys
import urllib.request

import pytest

from pbutil import binary, free_port, spec, t, wait_for

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def run_export(args, url=None, timeout=60):
    env = dict(os.environ)
    env.pop("POSBENCH_URL", None)
    argv = [binary("posbench")] + (["--url", url] if url else []) + ["export"] + list(args)
    return subprocess.run(argv, capture_output=True, text=True, timeout=t(timeout), env=env)


@pytest.fixture(scope="module")
def exported(shared_cluster, tmp_path_factory):
    """Two models on the leaderboard (oracle and random), exported once."""
    api = shared_cluster.api
    ids = [api.submit(spec(name="exp-oracle", digits=(1, 3), samples=8, shard_size=8,
                           model_name="oracle-model")),
           api.submit(spec(name="exp-random", backend="random", digits=(1, 3), samples=8,
                           shard_size=8, model_name="random-model"))]
    for i in ids:
        api.wait_job(i, t(60))
    out = tmp_path_factory.mktemp("snap") / "site"
    p = run_export(["--out", str(out)], url=shared_cluster.url)
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
    return shared_cluster, out, ids, p


@pytest.fixture(scope="module")
def static_server(exported):
    """python3 -m http.server over the snapshot: a plain static host."""
    _, out, _, _ = exported
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind",
                             "127.0.0.1", "--directory", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"

    def up():
        with urllib.request.urlopen(base + "/static.js", timeout=2) as r:
            return r.status == 200
    try:
        wait_for(up, t(10), 0.05, "python3 -m http.server")
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def fetch(url):
    with urllib.request.urlopen(url, timeout=t(10)) as r:
        return r.status, r.headers.get("Content-Type", ""), r.read()


def test_export_files_equal_api(exported, static_server):
    cluster, out, ids, p = exported
    api = cluster.api
    assert "export:" in p.stderr and p.stdout == "", p.stderr  # progress on stderr only
    lb = api.get_json("/api/v1/leaderboard")
    models = {e["model"] for e in lb["entries"]}
    assert {"oracle-model", "random-model"} <= models, lb
    # Every file the pages map API paths to, equal to the API's document.
    docs = {"data/leaderboard.json": lb, "data/suites.json": api.get_json("/api/v1/suites")}
    jobs = sorted({e["job_id"] for e in lb["entries"]})
    assert set(ids) <= set(jobs)
    for j in jobs:
        docs[f"data/jobs/{j}/results.json"] = api.get_json(f"/api/v1/jobs/{j}/results")
    for rel, want in docs.items():
        status, ctype, body = fetch(f"{static_server}/{rel}")
        assert status == 200 and "json" in ctype, (rel, ctype)
        assert json.loads(body) == want, rel
    # Exactly those JSON files, nothing stale or extra.
    written = sorted(os.path.relpath(os.path.join(d, f), out)
                     for d, _, fs in os.walk(out / "data") for f in fs)
    assert written == sorted(docs), written
    # The snapshot marker common.js reads, the pages and Chart.js.
    _, ctype, body = fetch(static_server + "/static.js")
    assert b"window.PB_STATIC = true;" in body and "javascript" in ctype
    assert not (out / "local.mk").exists() and not list(out.glob("*.tmp"))
    for page in ("index.html", "common.js", "style.css"):
        assert (out / page).is_file(), page
    chart = api.get("/vendor/chart.js")
    if chart.status == 200:
        assert (out / "vendor" / "chart.js").read_bytes() == chart.body


def test_export_leaderboard_in_browser(exported, static_server):
    """The exported leaderboard page, from a plain static server, shows the
    snapshot's rows (no coordinator involved)."""
    cluster, out, _, _ = exported
    if not (out / "leaderboard.html").is_file():
        pytest.skip("web/leaderboard.html not written yet")
    try:
        from browser import Page, start_browser
    except ImportError:
        pytest.skip("tests/integration/browser.py not present")
    drv = start_browser()
    try:
        lb = cluster.api.get_json("/api/v1/leaderboard")
        # Relative URLs only: from the static host's origin the coordinator
        # cannot be reached, so every row comes from the snapshot's files.
        page = Page(drv, static_server).open("leaderboard.html")
        want = len(lb["entries"])
        rows = page.wait(f"document.querySelectorAll('table tbody tr').length >= {want} && "
                         "document.querySelectorAll('table tbody tr').length", t(15),
                         f"{want} leaderboard rows")
        assert rows == want
        text = page.js("return document.body.innerText;")
        assert "oracle-model" in text and "random-model" in text
        page.screenshot("export-leaderboard")
        page.assert_no_js_errors()
        if (out / "model.html").is_file() and (out / "vendor" / "chart.js").is_file():
            # The model page draws from the snapshot too: one point per digit length (1..3).
            page.open("model.html?model=oracle-model")
            npts = page.wait("window.Chart && Object.values(window.Chart.instances).length && "
                             "Math.max(...Object.values(window.Chart.instances).flatMap("
                             "(c) => c.data.datasets.map((d) => d.data.length)))", t(15),
                             "a chart on the exported model page")
            assert npts == 3, npts
            page.screenshot("export-model")
            page.assert_no_js_errors()
    finally:
        drv.quit()


def test_export_unreachable_writes_nothing(tmp_path):
    out = tmp_path / "site"
    p = run_export(["--out", str(out)], url=f"http://127.0.0.1:{free_port()}")
    assert p.returncode == 3, (p.returncode, p.stderr)
    assert "cannot reach the coordinator" in p.stderr
    assert not out.exists()


def test_export_not_writable_and_usage(shared_cluster, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    p = run_export(["--out", str(blocker / "site")], url=shared_cluster.url)
    assert p.returncode == 1 and "cannot write to" in p.stderr, (p.returncode, p.stderr)
    p = run_export([], url=shared_cluster.url)
    assert p.returncode == 2 and "--out DIR is required" in p.stderr
    p = run_export(["--out", str(tmp_path / "x"), "--web", str(tmp_path)], url=shared_cluster.url)
    assert p.returncode == 2 and "no dashboard" in p.stderr
    p = run_export(["--help"])
    assert p.returncode == 0 and "--out DIR" in p.stdout


def test_export_url_option_and_custom_web(shared_cluster, tmp_path):
    """--url after the command; --web and --chartjs pick the files copied."""
    web = tmp_path / "web"
    (web / "img").mkdir(parents=True)
    (web / "index.html").write_text("<html>mine</html>")
    (web / "img" / "a.svg").write_text("<svg/>")
    (web / "local.mk").write_text("not for a web host")
    (web / "static.js").write_text("window.PB_STATIC = false;")
    chart = tmp_path / "c.js"
    chart.write_text("/* Chart stub */")
    out = tmp_path / "site"
    p = run_export(["--out", str(out), "--url", shared_cluster.url, "--web", str(web),
                    "--chartjs", str(chart)], url="http://127.0.0.1:1")
    assert p.returncode == 0, p.stderr
    assert (out / "index.html").read_text() == "<html>mine</html>"
    assert (out / "img" / "a.svg").is_file() and not (out / "local.mk").exists()
    assert "PB_STATIC = true" in (out / "static.js").read_text()
    assert (out / "vendor" / "chart.js").read_text() == "/* Chart stub */"
    p = run_export(["--out", str(out), "--url", shared_cluster.url, "--web", str(web),
                    "--chartjs", str(tmp_path / "none.js")])
    assert p.returncode == 0 and "Chart.js not found" in p.stderr, p.stderr
