"""The dashboard in Debian's chromium (headless) against the real server with ingested data."""

import re
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from fixtures.servers import get_json, running_server
from livecluster import NODES, PODS, ingest_cluster, link_texts, screenshot, wait_rows


def api(base: str, path: str) -> dict:
    return get_json(f"{base}/api/{path}")


def cell_values(page, table: str, column: str) -> list[float]:
    cells = page.locator(f'table[data-name="{table}"] td[data-column="{column}"]')
    return [float(v) for v in cells.evaluate_all("cs => cs.map(c => c.dataset.value)")]


def points(series: dict, names: list[str]) -> int:
    return sum(1 for name in names for v in series[name] if v is not None)


def test_units_are_human(page, cluster):
    page.goto(cluster + "/")
    cases = {
        "cores": [[0, "0"], [0.25, "250m"], [0.0004, "0m"], [1, "1 core"], [1.5, "1.5 cores"]],
        "bytes": [[512, "512 B"], [128 * 2**20, "128 MiB"], [1.5 * 2**30, "1.5 GiB"]],
        "bytes/s": [[900, "900 B/s"], [1500, "1.5 KB/s"], [2_500_000, "2.5 MB/s"]],
        "percent": [[12.345, "12.3 %"]],
        "ratio": [[0.25, "25 %"], [0.0012, "0.1 %"]],
        "": [[3, "3"], [None, "—"]],
    }
    shown = page.evaluate(
        """async (cases) => {
            const { formatter } = await import("./assets/format.js");
            const out = {};
            for (const [unit, pairs] of Object.entries(cases))
                out[unit] = pairs.map(([value]) => formatter(unit)(value));
            return out;
        }""",
        cases,
    )
    assert shown == {unit: [text for _, text in pairs] for unit, pairs in cases.items()}


def test_overview_shows_the_cluster_as_the_api_does(page, cluster):
    page.goto(cluster + "/")
    page.wait_for_selector('[data-busiest="pods"] li')
    latest = api(cluster, "cluster")["metrics"]
    for name in ("node_count", "pod_count", "cpu_cores", "cpu_capacity_cores", "memory_used_bytes"):
        value = page.locator(f'.card[data-metric="{name}"] .value').get_attribute("data-value")
        assert float(value) == pytest.approx(latest[name]), name
    assert page.locator('.card[data-metric="node_count"] .value').inner_text() == str(NODES)
    assert page.locator('.card[data-count="namespaces"] .value').inner_text() == str(
        len(api(cluster, "namespaces")["items"])
    )
    series = api(cluster, "cluster?window=1h")["series"]
    figures = page.locator("figure.chart")
    assert figures.count() == 4
    for i in range(4):
        names = figures.nth(i).get_attribute("data-metrics").split(",")
        assert int(figures.nth(i).get_attribute("data-points")) == points(series, names) > 0
    nodes = api(cluster, "nodes")["items"]
    busiest = max(nodes, key=lambda n: n["metrics"]["cpu_cores"])["node"]
    assert page.locator('[data-busiest="nodes"] li a').first.inner_text() == busiest
    pods = api(cluster, "pods?metrics=cpu_cores")["items"]
    shown = page.locator('[data-busiest="pods"] li a').all_inner_texts()
    assert len(shown) == min(5, len(pods))
    by_name = {f"{p['namespace']}/{p['name']}": p["metrics"]["cpu_cores"] for p in pods}
    shown_cpu = [by_name[name] for name in shown]
    assert shown_cpu == sorted(shown_cpu, reverse=True)
    assert min(shown_cpu) >= sorted(by_name.values(), reverse=True)[len(shown) - 1]
    screenshot(page, "overview")


def test_needs_attention_lists_the_pods_in_trouble_and_why(page, cluster):
    page.goto(cluster + "/")
    page.wait_for_selector("[data-attention] li")
    pods = api(cluster, "pods")["items"]
    troubled = {f"{p['namespace']}/{p['name']}" for p in pods if p["metrics"]["restarts_total"]}
    assert troubled and len(troubled) < len(pods)
    items = page.locator("[data-attention] li")
    assert set(items.locator("a").all_inner_texts()) == troubled
    for text in items.all_inner_texts():
        for reason in (
            "restarted 3×",
            "2 OOM kills",
            "throttled in 40 % of periods",
            "stalled on CPU 25 % of the time",
            "stalled on memory 5 % of the time",
        ):
            assert reason in text
    screenshot(page, "needs-attention")


def test_a_pod_in_trouble_shows_it(page, cluster):
    pod = next(p for p in api(cluster, "pods")["items"] if p["metrics"]["restarts_total"])
    page.goto(f"{cluster}/#/pods/{pod['namespace']}/{pod['name']}")
    for name, text in (
        ("cpu_throttled_percent", "40 %"),
        ("cpu_pressure_some_ratio", "25 %"),
        ("memory_oom_kills_total", "2"),
        ("restarts_total", "3"),
        ("last_termination_oom_killed", "1"),
    ):
        page.wait_for_selector(f".card[data-metric='{name}'] .value[data-value]")
        assert page.locator(f".card[data-metric='{name}'] .value").inner_text() == text
    stalls = page.locator("figure.chart[data-metrics^='cpu_pressure_some_ratio']")
    assert int(stalls.get_attribute("data-points")) > 0


def test_nodes_drill_down_to_a_pod_and_back(page, cluster):
    page.goto(cluster + "/#/nodes")
    wait_rows(page, "nodes", NODES)
    by_name = {n["node"]: n["metrics"] for n in api(cluster, "nodes")["items"]}
    names = link_texts(page, "nodes", "node")
    assert cell_values(page, "nodes", "cpu_cores") == pytest.approx(
        [by_name[n]["cpu_cores"] for n in names]
    )
    assert cell_values(page, "nodes", "cpu_cores") == sorted(
        cell_values(page, "nodes", "cpu_cores"), reverse=True
    )
    sparks = page.locator('table[data-name="nodes"] td[data-column="cpu_cores-trend"] svg')
    assert all(int(p) > 1 for p in sparks.evaluate_all("s => s.map(e => e.dataset.points)"))
    page.get_by_role("button", name="Node", exact=True).click()
    assert link_texts(page, "nodes", "node") == sorted(by_name)
    assert "sort=node" in page.evaluate("location.hash")
    screenshot(page, "nodes")

    page.get_by_role("link", name="node-001", exact=True).click()
    page.wait_for_selector("h1:text-is('node-001')")
    wait_rows(page, "pods", PODS)
    pods = api(cluster, "nodes/node-001/pods")["items"]
    assert sorted(link_texts(page, "pods", "name")) == sorted(p["name"] for p in pods)
    page.wait_for_selector("figure.chart[data-points]")
    page.wait_for_selector('tr[data-index="0"] svg:not([data-points="0"])')
    screenshot(page, "node")

    pod = link_texts(page, "pods", "name")[0]
    page.locator(f'table[data-name="pods"] a:text-is("{pod}")').click()
    page.wait_for_selector(f"h1:text-is('{pod}')")
    page.wait_for_selector(".card[data-metric='cpu_cores'] .value[data-value]")
    namespace = urlparse(page.url).fragment.split("?")[0].split("/")[2]
    expected = api(cluster, f"pods/{namespace}/{pod}")["metrics"]["cpu_cores"]
    shown = page.locator(".card[data-metric='cpu_cores'] .value").get_attribute("data-value")
    assert float(shown) == pytest.approx(expected)
    page.wait_for_selector("figure.chart[data-points]")
    assert all(
        int(p) > 0
        for p in page.locator("figure.chart").evaluate_all("fs => fs.map(f => f.dataset.points)")
    )
    screenshot(page, "pod")

    page.go_back()
    page.wait_for_selector("h1:text-is('node-001')")
    page.go_back()
    page.wait_for_selector("h1:text-is('Nodes')")


def test_namespace_to_deployment_to_pod(page, cluster):
    page.goto(cluster + "/#/namespaces")
    wait_rows(page, "namespaces", len(api(cluster, "namespaces")["items"]))
    names = link_texts(page, "namespaces", "namespace")
    shown = dict(zip(names, cell_values(page, "namespaces", "pod_count"), strict=True))
    items = api(cluster, "namespaces")["items"]
    assert shown == {n["namespace"]: n["metrics"]["pod_count"] for n in items}
    screenshot(page, "namespaces")
    page.get_by_role("link", name="shop", exact=True).first.click()
    page.wait_for_selector("h1:text-is('shop')")
    deployments = api(cluster, "namespaces/shop/deployments")["items"]
    wait_rows(page, "deployments", len(deployments))
    screenshot(page, "namespace")
    first = link_texts(page, "deployments", "name")[0]
    page.locator(f'table[data-name="deployments"] a:text-is("{first}")').click()
    page.wait_for_selector(f"h1:text-is('{first}')")
    pods = api(cluster, f"deployments/shop/{first}/pods")["items"]
    wait_rows(page, "pods", len(pods))
    assert sorted(link_texts(page, "pods", "name")) == sorted(p["name"] for p in pods)
    screenshot(page, "deployment")
    page.locator('table[data-name="pods"] td[data-column="name"] a').first.click()
    page.wait_for_selector("text=on node")
    page.go_back()
    page.wait_for_selector(f"h1:text-is('{first}')")


def test_range_picker_changes_the_query(page, cluster):
    page.goto(cluster + "/#/nodes")
    wait_rows(page, "nodes", NODES)
    with page.expect_request(lambda r: "/api/nodes?" in r.url and "window=6h" in r.url) as req:
        page.select_option("#range", "6h")
    assert "range=6h" in page.url
    assert parse_qs(urlparse(req.value.url).query)["step"] == ["720s"]
    page.select_option("#range", "custom")
    page.fill("#from", "2026-01-01T10:00")
    page.fill("#to", "2026-01-01T11:00")
    with page.expect_request(lambda r: "/api/nodes?" in r.url and "start=" in r.url) as req:
        page.click("#apply")
    query = parse_qs(urlparse(req.value.url).query)
    assert int(query["end"][0]) - int(query["start"][0]) == 3600
    assert "range=custom" in page.url
    page.wait_for_selector("text=No nodes in this range.")


def test_a_shared_url_restores_the_view(page, cluster):
    page.goto(cluster + "/#/pods?range=6h&q=shop&sort=-memory_working_set_bytes")
    expected = [p for p in api(cluster, "pods")["items"] if p["namespace"] == "shop"]
    wait_rows(page, "pods", len(expected))
    assert page.input_value("#range") == "6h"
    assert page.input_value("input[type=search]") == "shop"
    memory = cell_values(page, "pods", "memory_working_set_bytes")
    assert memory == sorted(memory, reverse=True)
    header = page.locator('th[data-column="memory_working_set_bytes"]')
    assert header.get_attribute("aria-sort") == "descending"
    page.fill("input[type=search]", "payments")
    assert "q=payments" in page.evaluate("location.hash")


def test_keyboard_moves_through_rows_and_opens_one(page, cluster):
    page.goto(cluster + "/#/pods?sort=name")
    wait_rows(page, "pods", NODES * PODS)
    hash_before = page.evaluate("location.hash")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "view"
    assert page.evaluate("location.hash") == hash_before
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Cluster"
    names = link_texts(page, "pods", "name")
    page.locator('table[data-name="pods"] td[data-column="name"] a').first.focus()
    # The rows' series arrive after the focus and leave it where it is.
    page.wait_for_selector('tr[data-index="0"] td[data-column="cpu_cores-trend"] svg[data-points]')
    page.wait_for_selector('tr[data-index="0"] svg:not([data-points="0"])')
    assert page.evaluate("document.activeElement.textContent") == names[0]
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    assert page.evaluate("document.activeElement.textContent") == names[2]
    page.keyboard.press("Enter")
    page.wait_for_selector(f"h1:text-is('{names[2]}')")


def test_auto_refresh_every_10_s_can_be_paused(page, cluster):
    page.clock.install()
    page.goto(cluster + "/#/nodes")
    wait_rows(page, "nodes", NODES)
    with page.expect_request(lambda r: "/api/nodes?" in r.url):
        page.clock.run_for(10_500)
    page.click("#pause")
    assert page.get_attribute("#pause", "aria-pressed") == "true"
    asked = []
    page.on("request", lambda r: "/api/" in r.url and asked.append(r.url))
    page.clock.run_for(30_000)
    page.wait_for_timeout(300)
    assert asked == []


def test_phone_width_dark_mode(browser, cluster):
    context = browser.new_context(viewport={"width": 390, "height": 844}, color_scheme="dark")
    page = context.new_page()
    errors = []
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.goto(cluster + "/#/pods")
    wait_rows(page, "pods", NODES * PODS)
    page.wait_for_selector('tr[data-index="0"] svg:not([data-points="0"])')
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert not page.locator('td[data-column="node"]').first.is_visible()
    background = page.evaluate("getComputedStyle(document.documentElement).backgroundColor")
    assert sum(int(c) for c in re.findall(r"\d+", background)[:3]) < 150
    screenshot(page, "pods-phone-dark")
    page.goto(cluster + "/")
    page.wait_for_selector("figure.chart[data-points]")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(page, "overview-phone-dark")
    pod = api(cluster, "pods")["items"][0]
    page.goto(f"{cluster}/#/pods/{pod['namespace']}/{pod['name']}")
    page.wait_for_selector('section[data-container="app"] figure.chart[data-points]')
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(page, "pod-phone-dark")
    context.close()
    assert errors == []


def test_no_data_yet(page, empty_server):
    page.goto(empty_server + "/")
    page.wait_for_selector("text=No data yet")
    screenshot(page, "empty")
    page.goto(empty_server + "/#/pods")
    page.wait_for_selector("text=No pods in this range.")


def test_server_unreachable(page, tmp_path):
    with running_server(tmp_path, workers=1) as base:
        page.goto(base + "/")
        page.wait_for_selector("text=No data yet")
        # The whole refresh done (the overview asks for more after the cluster), so that no
        # request is cut off when the server goes.
        page.wait_for_selector("#updated:has-text('Updated')")
    page.click("#refresh")
    page.wait_for_selector("#status.error >> text=Cannot reach the cloudmon server")
    screenshot(page, "unreachable")
    page.console.errors = [e for e in page.console.errors if "ERR_CONNECTION_REFUSED" not in e]


def test_a_long_list_renders_only_the_rows_in_view(page, tmp_path):
    with running_server(Path(tmp_path), workers=1) as base:
        ingest_cluster(base, 2, 400, 30)
        page.goto(base + "/#/pods?sort=-cpu_cores")
        page.wait_for_selector("text=800 of 800")
        rendered = page.locator('table[data-name="pods"] tr[data-index]').count()
        assert 10 < rendered < 100
        # Enough for the view and the 10 rows of overscan below it, from the first render on.
        assert rendered * 36 >= page.locator(".scroller").evaluate("s => s.clientHeight") + 360
        page.wait_for_selector(
            'tr[data-index="0"] td[data-column="cpu_cores-trend"] svg:not([data-points="0"])'
        )
        trends = page.locator(
            'td[data-column="cpu_cores-trend"] svg:not([data-points="0"])'
        ).count()
        assert trends == rendered
        # Scrolling 15 rows down keeps the row elements still in view and drops those above
        # the 10 rows of overscan.
        kept = page.evaluate(
            """async () => {
                const scroller = document.querySelector('.scroller');
                const [top, middle] = ['0', '20'].map(
                    i => document.querySelector(`tr[data-index="${i}"]`));
                scroller.scrollTop = 15 * 36;
                await new Promise(requestAnimationFrame);
                await new Promise(requestAnimationFrame);
                const first = document.querySelector('tr[data-index]').dataset.index;
                return [top.isConnected, middle.isConnected, Number(first)];
            }"""
        )
        assert kept == [False, True, 5]
        page.locator(".scroller").evaluate("s => s.scrollTop = s.scrollHeight")
        page.wait_for_selector('tr[data-index="799"]')
        last = page.locator('tr[data-index="799"] td[data-column="cpu_cores"]')
        lowest = min(p["metrics"]["cpu_cores"] for p in api(base, "pods")["items"])
        assert float(last.get_attribute("data-value")) == pytest.approx(lowest)
        screenshot(page, "pods-long")
        page.goto("about:blank")  # no request in flight when the server stops


def test_a_pod_shows_its_containers(page, cluster):
    pod = next(p for p in api(cluster, "pods")["items"] if p["name"].endswith("-000"))
    base = f"pods/{pod['namespace']}/{pod['name']}"
    listed = {c["name"]: c for c in api(cluster, f"{base}/containers?window=1h")["items"]}
    assert sorted(listed) == ["app", "proxy"]
    page.goto(f"{cluster}/#/{base}")
    wait_rows(page, "containers", 2)
    names = link_texts(page, "containers", "name")
    for column in ("cpu_cores", "memory_working_set_bytes", "memory_usage_bytes"):
        shown = dict(zip(names, cell_values(page, "containers", column), strict=True))
        assert shown == pytest.approx({n: c["metrics"][column] for n, c in listed.items()})
    limits = dict(zip(names, cell_values(page, "containers", "cpu_limit_cores"), strict=True))
    assert limits == {"app": 1.5, "proxy": 0.5}
    for column in ("cpu_cores", "memory_working_set_bytes"):
        sparks = page.locator(f'table[data-name="containers"] td[data-column="{column}-trend"] svg')
        shown = [int(p) for p in sparks.evaluate_all("s => s.map(e => e.dataset.points)")]
        expected = [points(listed[n]["series"], [column]) for n in names]
        assert shown == expected
        assert min(expected) > 1
    for name, container in listed.items():
        figures = page.locator(f'section[data-container="{name}"] figure.chart')
        assert figures.count() == 3
        for i in range(3):
            metrics = figures.nth(i).get_attribute("data-metrics").split(",")
            shown = int(figures.nth(i).get_attribute("data-points"))
            assert shown == points(container["series"], metrics) > 0
    screenshot(page, "pod-containers")

    page.locator('section[data-container="proxy"] h3 a').click()
    page.wait_for_selector("h1:text-is('proxy')")
    page.wait_for_selector(".card[data-metric='memory_limit_bytes'] .value[data-value]")
    one = api(cluster, f"{base}/containers/proxy")["metrics"]
    for name in ("cpu_cores", "memory_working_set_bytes", "memory_limit_bytes"):
        value = page.locator(f'.card[data-metric="{name}"] .value').get_attribute("data-value")
        assert float(value) == pytest.approx(one[name]), name
    page.wait_for_selector("figure.chart[data-points]")
    figures = page.locator("figure.chart")
    assert figures.count() == 5  # CPU, memory, disk, memory by kind, throttled periods
    series = api(cluster, f"{base}/containers/proxy?window=1h")["series"]
    for i in range(5):
        metrics = figures.nth(i).get_attribute("data-metrics").split(",")
        figures.nth(i).locator("xpath=self::*[@data-points]").wait_for()
        assert int(figures.nth(i).get_attribute("data-points")) == points(series, metrics) > 0
    screenshot(page, "container")
    page.go_back()
    wait_rows(page, "containers", 2)
