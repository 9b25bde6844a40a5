"""What a new user ran into on the dashboard: lists that ignore the range, columns mixing units,
pods without names, chart words and colours, names cut at small widths, clocks that drift."""

import re
import time

import pytest
from fixtures.servers import get_json, running_server
from livecluster import GIB, node_payload, post, screenshot

MIB = 1 << 20
NAMELESS_UID = "1b6f3c2e-9d1a-4c4e-8a7b-5f0e2d3c4b5a"
LONG_NAME = "kube-state-metrics-696c5d7b8-x2x4z"
LONGER_NAME = "prometheus-operator-admission-webhook-patch-7f9c8d6b5-qwxyz"


def odd_payload(t: float) -> dict:
    """node-000 with pods of varied sizes: one of 1.51 cores and 11.1 GiB beside small ones,
    long names, and one the agent had no metadata for."""
    payload = node_payload(0, t, 4)
    big, small, long_name, nameless = payload["pods"]
    big.update(name=LONG_NAME, cpu_cores=1.51, memory_working_set_bytes=int(11.1 * GIB))
    small.update(cpu_cores=0.684, memory_working_set_bytes=684 * MIB)
    long_name.update(name=LONGER_NAME, cpu_cores=0.004, memory_working_set_bytes=40 * MIB)
    nameless.update(uid=NAMELESS_UID, name=None, namespace=None, cpu_cores=0.25)
    nameless.update(deployment=None, workload=None, workload_kind=None)
    return payload


@pytest.fixture
def odd_cluster(tmp_path):
    """A server holding 5 minutes up to now of odd_payload's node."""
    with running_server(tmp_path, workers=1) as base:
        now = time.time()
        post(base, [odd_payload(now - 290 + 10 * k) for k in range(30)])
        yield base


def test_pod_list_follows_the_range(page, tmp_path):
    with running_server(tmp_path, workers=1) as base:
        # Pods that reported from 30 to 20 minutes ago, none since.
        now = time.time()
        post(base, [node_payload(0, now - 1800 + 10 * k, 5) for k in range(60)])
        assert len(get_json(f"{base}/api/pods?window=1h")["items"]) == 5
        page.goto(base + "/#/pods?range=1h")
        page.wait_for_selector("text=5 of 5")
        page.goto(base + "/#/nodes/node-000?range=1h")
        page.wait_for_selector("text=5 of 5")
        page.wait_for_selector('tr[data-index="0"] svg:not([data-points="0"])')
        page.goto(base + "/#/pods?range=15m")
        page.wait_for_selector("text=No pods in this range.")
        page.goto("about:blank")


def column_texts(page, table: str, column: str) -> list[str]:
    cells = page.locator(f'table[data-name="{table}"] td[data-column="{column}"]')
    return cells.all_inner_texts()


def test_one_unit_per_column(page, odd_cluster):
    page.goto(odd_cluster + "/#/pods")
    page.wait_for_selector("text=4 of 4")
    cpu = column_texts(page, "pods", "cpu_cores")
    memory = column_texts(page, "pods", "memory_working_set_bytes")
    assert "1510m" in cpu and "684m" in cpu and "4m" in cpu
    assert {re.sub(r"[\d.]+", "", text) for text in cpu} == {"m"}
    assert {re.sub(r"[\d.]+ ", "", text) for text in memory} == {"MiB"}
    assert "11366 MiB" in memory
    page.goto("about:blank")


def test_a_column_unit_is_chosen_from_its_values(page, cluster):
    page.goto(cluster + "/")
    cases = [
        ["cores", [1.51, 0.684, 0.004], ["1510m", "684m", "4m"]],
        ["cores", [12.5, 1.5], ["12.5 cores", "1.5 cores"]],
        ["bytes", [11.1 * GIB, 40 * MIB, None], ["11366 MiB", "40 MiB", "—"]],
        ["bytes", [64 * GIB, 900 * MIB], ["65536 MiB", "900 MiB"]],
        ["bytes", [3 * GIB, 1.5 * GIB], ["3 GiB", "1.5 GiB"]],
        ["bytes/s", [321_000, 23, 0], ["321 KB/s", "0.02 KB/s", "0"]],
        ["bytes/s", [30_000, 500], ["30000 B/s", "500 B/s"]],
        ["percent", [12.345, 3], ["12.3 %", "3 %"]],
    ]
    shown = page.evaluate(
        """async (cases) => {
            const { columnFormatter } = await import("./assets/format.js");
            return cases.map(([unit, values]) => values.map(columnFormatter(unit, values)));
        }""",
        cases,
    )
    assert shown == [texts for _, _, texts in cases]


def test_pods_without_metadata_show_their_uid(page, odd_cluster):
    page.goto(odd_cluster + "/#/nodes/node-000")
    page.wait_for_selector("text=4 of 4")
    cell = page.locator(f'table[data-name="pods"] td[data-column="name"][title="{NAMELESS_UID}"]')
    assert cell.inner_text() == f"uid {NAMELESS_UID[:8]}"
    cell.locator("a").click()
    page.wait_for_selector(f"h1:text-is('uid {NAMELESS_UID[:8]}')")
    assert NAMELESS_UID in page.locator(".info").inner_text()
    # The heading is there before the pod's figures have come.
    page.wait_for_selector('.card[data-metric="cpu_cores"] .value[data-value]')
    card = page.locator('.card[data-metric="cpu_cores"] .value')
    assert card.get_attribute("data-value") == "0.25"
    page.wait_for_selector("figure.chart[data-points]")
    assert int(page.locator("figure.chart").first.get_attribute("data-points")) > 0
    screenshot(page, "pod-without-metadata")
    page.goto(odd_cluster + "/#/pods")
    page.wait_for_selector(f'td[data-column="name"][title="{NAMELESS_UID}"] a')
    assert "null" not in page.locator('table[data-name="pods"]').inner_text()
    page.goto("about:blank")


def legends(page) -> dict[str, str]:
    """Each legend entry of the page's charts: its label and its line's colour."""
    page.wait_for_selector("figure.chart[data-points]")
    return page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll('.u-legend .u-series')]
            .filter(s => s.querySelector('.u-marker'))
            .map(s => [s.querySelector('.u-label').textContent,
                       getComputedStyle(s.querySelector('.u-marker')).borderColor]))"""
    )


def test_chart_words_and_colours_mean_the_same_everywhere(page, cluster):
    catalogue = get_json(f"{cluster}/assets/catalogue.json")
    pod = get_json(f"{cluster}/api/pods")["items"][0]
    pages = [
        "/#/",
        f"/#/nodes/{pod['node']}",
        f"/#/namespaces/{pod['namespace']}",
        f"/#/deployments/{pod['namespace']}/{pod['deployment']}",
        f"/#/pods/{pod['namespace']}/{pod['name']}",
    ]
    colours: dict[str, set[str]] = {}
    for path in pages:
        page.goto(cluster + path)
        for label, colour in legends(page).items():
            colours.setdefault(label, set()).add(colour)
    helps = {entry["help"] for entry in catalogue.values()}
    for label in colours:
        assert len(label) <= 22 and label not in helps, label
    assert {"CPU used (cores)", "Working set", "Memory request", "Memory limit"} <= set(colours)
    assert all(len(c) == 1 for c in colours.values()), colours
    meanings = ["CPU used (cores)", "CPU request (cores)", "CPU limit (cores)"]
    assert len(set.union(*(colours[m] for m in meanings))) == 3
    for kind in ("request", "limit"):
        assert colours[f"CPU {kind} (cores)"] == colours[f"Memory {kind}"]
    assert colours["CPU used (cores)"] == colours["Working set"]
    page.goto(cluster + "/#/")
    title = page.locator('.card[data-metric="cpu_percent"] .title').inner_text()
    assert title == "CPU %"


def unreadable_names(page, table: str, column: str) -> list[str]:
    """The names in a column that are cut, or wrapped onto more lines than a row holds."""
    return page.locator(f'table[data-name="{table}"] td[data-column="{column}"]').evaluate_all(
        """cells => cells.filter(c => c.offsetParent !== null)
            .filter(c => c.scrollWidth > c.clientWidth || c.offsetHeight > 37)
            .map(c => c.textContent)"""
    )


@pytest.mark.parametrize("width", [1366, 800])
def test_names_stay_readable(browser, odd_cluster, width):
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    for path, table, column in [
        ("/#/pods", "pods", "name"),
        ("/#/nodes/node-000", "pods", "name"),
        ("/#/namespaces", "namespaces", "namespace"),
        ("/#/deployments", "deployments", "name"),
    ]:
        page.goto(odd_cluster + path)
        page.wait_for_selector(f'table[data-name="{table}"] tr[data-index]')
        assert unreadable_names(page, table, column) == [], path
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        screenshot(page, f"{table}-{path.count('/')}-{width}")
    # A node's pods are all on that node: no column says so.
    page.goto(odd_cluster + "/#/nodes/node-000")
    page.wait_for_selector('table[data-name="pods"] tr[data-index]')
    assert page.locator('table[data-name="pods"] th[data-column="node"]').count() == 0
    page.goto("about:blank")
    context.close()


def test_a_node_whose_clock_is_off_is_flagged(page, tmp_path):
    with running_server(tmp_path, workers=1) as base:
        for node, skew in [(0, 63), (1, -125), (2, 0.5)]:
            payload = node_payload(node, time.time(), 1)
            payload["sent_at"] = time.time() + skew
            post(base, [payload])
        page.goto(base + "/#/nodes/node-000")
        page.wait_for_selector(".card[data-metric='cpu_cores'] .value[data-value]")
        assert re.fullmatch(r"Clock 6[23] s ahead of the server", page.inner_text(".warning"))
        screenshot(page, "node-clock-ahead")
        page.goto(base + "/#/nodes/node-001")
        page.wait_for_selector(".warning")
        assert page.inner_text(".warning") == "Clock 2 min behind the server"
        page.goto(base + "/#/nodes/node-002")
        page.wait_for_selector(".card[data-metric='cpu_cores'] .value[data-value]")
        assert page.locator(".warning").is_hidden()
        page.goto("about:blank")
