"""The right-sizing pages in Debian's chromium against the real server (its own upkeep) holding
two hours of the right-sizing workloads (`fixtures.rightsizing`): the findings and their sums,
a row per container with its bars of usage against request and limit, a workload's page with
its patch and pods, and a store that keeps no usage."""

import pytest
from fixtures.prometheus import store_url
from fixtures.rightsizing import MEMORY_LIMIT, MiB, rightsizing_server
from fixtures.servers import get_json, running_server
from fixtures.victoriametrics import VictoriaMetricsProcess
from livecluster import link_texts, screenshot, wait_rows

# The dashboard's 24 h range asks for window=24h: the UTC days of the data, two hours that
# ended an hour ago at least.
RANGE = "range=24h"
WINDOW = "window=24h"
TABLE = 'table[data-name="containers"]'


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with rightsizing_server(tmp_path_factory.mktemp("rightsize-page")) as base:
        yield base


def api(base: str, query: str = "") -> dict:
    return get_json(f"{base}/api/rightsize?{WINDOW}{query}")


def containers(answer: dict) -> dict[tuple[str, str], dict]:
    """The answer's containers by the table's workload (kind/name) and container."""
    return {
        (f"{item['workload_kind']}/{item['workload']}", container["name"]): container
        for item in answer["items"]
        for container in item["containers"]
    }


def open_list(page, server: str, query: str = "") -> dict:
    """The right-sizing page over the 24 h range, once its rows are in; the API's answer."""
    answer = api(server, f"&{query}" if query else "")
    with page.expect_request(lambda r: "/api/rightsize?" in r.url and WINDOW in r.url):
        page.goto(f"{server}/#/rightsize?{RANGE}{f'&{query}' if query else ''}")
    wait_rows(page, "containers", len(containers(answer)))
    return answer


def row(page, workload: str):
    link = page.locator(f'td[data-column="workload"] a:text-is("{workload}")')
    return page.locator(f"{TABLE} tr[data-index]", has=link)


def cell_values(page, column: str) -> list[float]:
    cells = page.locator(f'{TABLE} td[data-column="{column}"]')
    return [float(v) for v in cells.evaluate_all("cs => cs.map(c => c.dataset.value)")]


def test_the_findings_are_the_apis_sums(page, server):
    summary = open_list(page, server)["summary"]["cluster"]
    for key in ("released_cpu_cores", "released_memory_bytes", "missing_cpu_cores"):
        value = page.locator(f'.card[data-sum="{key}"] .value')
        assert float(value.get_attribute("data-value")) == pytest.approx(summary[key]), key
    missing = page.locator('.card[data-sum="missing_memory_bytes"] .value')
    assert float(missing.get_attribute("data-value")) == summary["missing_memory_bytes"]
    assert missing.inner_text() == f"{round(summary['missing_memory_bytes'] / MiB)} MiB"
    assert page.locator('.card[data-sum="released_cpu_cores"] .value').inner_text() == (
        f"{round(summary['released_cpu_cores'] * 1000)}m"
    )
    assert summary["findings"]
    for name, count in summary["findings"].items():
        assert page.locator(f'.card[data-finding="{name}"] .value').inner_text() == str(count)
    shown = page.locator(".card[data-finding]").evaluate_all(
        "cs => cs.map(c => [c.dataset.finding, Number(c.querySelector('.value').textContent)])"
    )
    assert {name: count for name, count in shown if count} == summary["findings"]
    assert page.locator('.card[data-count="not_enough_data"] .value').inner_text() == "1"
    assert "refreshing every 60 s" in page.inner_text("#updated")
    screenshot(page, "rightsize")


def test_each_row_is_a_container_with_its_recommendation(page, server):
    listed = containers(open_list(page, server))
    shown = page.locator(f"{TABLE} tr[data-index]").evaluate_all(
        """trs => trs.map(tr => {
            const cell = (c) => tr.querySelector(`td[data-column="${c}"]`);
            return [cell("workload").innerText, cell("container").innerText,
                    cell("cpu_request").dataset.value ?? null,
                    cell("cpu_request").querySelector(".change").dataset.recommended ?? null,
                    cell("memory_request").querySelector(".change").dataset.recommended ?? null];
        })"""
    )
    assert sorted((w, c) for w, c, *_ in shown) == sorted(listed)
    for workload, name, request, cpu, memory in shown:
        container = listed[workload, name]
        assert (request and float(request)) == container["cpu"]["request"], workload
        recommendation = container["recommendation"]
        if recommendation is None:
            assert (cpu, memory) == (None, None), workload
        else:
            assert float(cpu) == recommendation["cpu_request_cores"], workload
            assert int(memory) == recommendation["memory_request_bytes"], workload
    steady = row(page, "Deployment/steady")
    recommended = listed["Deployment/steady", "main"]["recommendation"]["cpu_request_cores"]
    assert steady.locator('td[data-column="cpu_request"]').inner_text() == (
        f"1000m → {round(recommended * 1000)}m"
    )
    assert "CPU over" in steady.locator('td[data-column="findings"]').inner_text()
    risks = steady.locator('td[data-column="findings"]').get_attribute("title")
    assert "reserved and unused" in risks


def test_sorting_by_cpu_p95_orders_the_rows(page, server):
    listed = containers(open_list(page, server))
    header = page.locator(f'{TABLE} th[data-column="cpu_p95"]')
    header.get_by_role("button").click()
    values = cell_values(page, "cpu_p95")
    assert values == sorted(values, reverse=True)
    assert sorted(values) == pytest.approx(sorted(c["cpu"]["p95"] for c in listed.values()))
    assert "sort=-cpu_p95" in page.evaluate("location.hash")
    assert header.get_attribute("aria-sort") == "descending"
    header.get_by_role("button").click()
    assert cell_values(page, "cpu_p95") == sorted(values)
    assert header.get_attribute("aria-sort") == "ascending"


def test_a_young_workload_has_not_enough_data(page, server):
    listed = containers(open_list(page, server))
    findings = row(page, "Deployment/young").locator('td[data-column="findings"]')
    assert findings.inner_text() == "not enough data"
    reason = listed["Deployment/young", "main"]["reason"]
    assert reason.startswith("not enough data: 30 minutes")
    assert findings.get_attribute("title") == reason


def test_each_row_charts_usage_against_request_and_limit(page, server):
    listed = containers(open_list(page, server))
    marks = """g => ({
        data: {...g.dataset},
        request: g.querySelector("line.request")?.getAttribute("x1") ?? null,
        triangle: g.querySelector("path.request") !== null,
        limit: g.querySelector("line.limit")?.getAttribute("x1") ?? null,
        max: g.querySelector("line.max")?.getAttribute("x1") ?? null,
        title: g.querySelector("title").textContent,
    })"""

    def bar(workload: str, resource: str) -> dict:
        chart = row(page, workload).locator(
            f'td[data-column="usage"] g[data-resource="{resource}"]'
        )
        return chart.evaluate(marks)

    # steady: CPU asks 1 core with no limit; memory asks 128 MiB, held to 256 MiB, peaks at 300
    steady = listed["Deployment/steady", "main"]
    cpu = bar("Deployment/steady", "cpu")
    assert float(cpu["data"]["request"]) == steady["cpu"]["request"] == 1.0
    assert cpu["triangle"] and cpu["request"] is not None
    assert cpu["limit"] is None and "limit" not in cpu["data"]
    assert "request 1 core; limit none" in cpu["title"]
    memory = bar("Deployment/steady", "memory")
    assert int(memory["data"]["request"]) == steady["memory"]["request"] == 128 * MiB
    assert int(memory["data"]["limit"]) == steady["memory"]["limit"] == MEMORY_LIMIT
    assert float(memory["request"]) < float(memory["limit"]) < float(memory["max"])
    assert "max 300 MiB; request 128 MiB; limit 256 MiB" in memory["title"]
    # bursty: asks 100m, held to 500m
    cpu = bar("StatefulSet/bursty", "cpu")
    assert (float(cpu["data"]["request"]), float(cpu["data"]["limit"])) == (0.1, 0.5)
    assert float(cpu["request"]) < float(cpu["limit"])
    # The request and the limit are drawn apart: a green line under a triangle, a red wall.
    colours = (
        row(page, "StatefulSet/bursty")
        .locator('g[data-resource="cpu"]')
        .evaluate(
            """g => ["line.request", "line.limit"].map(s => {
            const style = getComputedStyle(g.querySelector(s));
            return [style.stroke, style.strokeWidth];
        })"""
        )
    )
    assert colours[0][0] != colours[1][0]
    assert float(colours[0][1].rstrip("px")) < float(colours[1][1].rstrip("px"))


def test_a_workload_shows_its_patch_or_why_none(page, server):
    open_list(page, server)
    row(page, "Deployment/steady").locator('td[data-column="workload"] a').click()
    page.wait_for_selector("h1:text-is('Deployment/steady')")
    answer = get_json(f"{server}/api/rightsize/shop/Deployment/steady?{WINDOW}")
    command = page.locator("pre[data-patch]")
    command.wait_for()
    assert command.inner_text() == answer["patch"]["command"]
    # The raw samples cover the day's window: the figures are exact, and the page says so.
    assert answer["percentiles"] == "exact"
    assert "percentiles exact (the raw samples cover the window)" in page.inner_text("main")
    assert command.inner_text().startswith("kubectl -n shop patch deployment steady")
    note = answer["patch"]["note"]
    assert page.locator("p.note").inner_text() == f"{note[0].upper()}{note[1:]}."
    container = answer["containers"][0]
    section = page.locator('section[data-container="main"]')
    figures = section.locator('tr[data-resource="cpu"] td[data-figure="p95"]')
    assert float(figures.get_attribute("data-value")) == container["cpu"]["p95"]
    items = section.locator("ul.findings li")
    assert items.count() == len(container["findings"])
    for at, finding in enumerate(container["findings"]):
        assert items.nth(at).get_attribute("data-finding") == finding["finding"]
        assert finding["risk"] in items.nth(at).inner_text()
    recommended = container["recommendation"]["cpu_request_cores"]
    assert f"CPU request {round(recommended * 1000)}m" in section.inner_text()
    assert section.locator('g[data-resource="cpu"] path.recommended').count() == 1
    pods = answer["pods_usage"]
    wait_rows(page, "pods", len(pods))
    assert link_texts(page, "pods", "name") == sorted(p["name"] for p in pods)
    shown = page.locator('table[data-name="pods"] td[data-column="cpu_p95"]')
    assert float(shown.get_attribute("data-value")) == pods[0]["cpu"]["p95"]
    screenshot(page, "rightsize-workload")

    page.goto(f"{server}/#/rightsize/jobs/Job/batch?{RANGE}")
    page.wait_for_selector("h1:text-is('Job/batch')")
    why = page.locator("[data-nopatch]")
    why.wait_for()
    assert why.inner_text() == "No patch for a Job: its pods' specs cannot be changed in place."
    assert page.locator("pre[data-patch]").count() == 0
    assert get_json(f"{server}/api/rightsize/jobs/Job/batch?{WINDOW}")["patch"] is None
    wait_rows(page, "pods", 1)
    assert link_texts(page, "pods", "name") == ["batch-x"]
    screenshot(page, "rightsize-job")


def test_the_namespace_filter_narrows_the_rows(page, server):
    everything = open_list(page, server)
    assert {item["namespace"] for item in everything["items"]} == {"jobs", "shop"}
    jobs = api(server, "&namespace=jobs")
    with page.expect_request(lambda r: "/api/rightsize?" in r.url and "namespace=jobs" in r.url):
        page.select_option('select[data-filter="namespace"]', "jobs")
    wait_rows(page, "containers", len(containers(jobs)))
    assert set(link_texts(page, "containers", "namespace")) == {"jobs"}
    assert link_texts(page, "containers", "workload") == ["Job/batch"]
    assert "namespace=jobs" in page.evaluate("location.hash")
    missing = page.locator('.card[data-sum="missing_cpu_cores"] .value')
    assert float(missing.get_attribute("data-value")) == pytest.approx(
        jobs["summary"]["cluster"]["missing_cpu_cores"]
    )
    # Every namespace stays on offer, and the filter survives a reload.
    options = page.locator('select[data-filter="namespace"] option').all_inner_texts()
    assert options == ["every namespace", "jobs", "shop"]
    page.reload()
    wait_rows(page, "containers", len(containers(jobs)))
    assert page.input_value('select[data-filter="namespace"]') == "jobs"
    page.select_option('select[data-filter="namespace"]', "")
    wait_rows(page, "containers", len(containers(everything)))


def test_right_sizing_refreshes_once_a_minute(page, server):
    page.clock.install()
    open_list(page, server)
    asked = []
    page.on("request", lambda r: "/api/rightsize?" in r.url and asked.append(r.url))
    page.clock.run_for(50_500)
    page.wait_for_timeout(300)
    assert asked == []
    with page.expect_request(lambda r: "/api/rightsize?" in r.url):
        page.clock.run_for(10_000)


def test_a_store_without_usage_says_so(page, tmp_path):
    engine = VictoriaMetricsProcess(tmp_path).start()
    try:
        with running_server(tmp_path, "--storage", store_url(engine), workers=1) as base:
            page.goto(f"{base}/#/rightsize?{RANGE}")
            page.wait_for_selector(
                "#status.error >> text=right-sizing needs the embedded store (sqlite://):"
                " this store keeps no usage"
            )
            assert page.locator("h1").inner_text() == "Right-sizing"
            options = page.locator('select[data-filter="namespace"] option')
            assert options.all_inner_texts() == ["every namespace"]
            screenshot(page, "rightsize-no-usage")
            page.goto("about:blank")
    finally:
        engine.stop()
    # The browser reports the 501 itself; the page says what it means.
    page.console.errors = [e for e in page.console.errors if "status of 501" not in e]
