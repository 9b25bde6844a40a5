"""Right-sizing: each workload's usage against its requests and limits, with recommendations
and findings, from the usage sketches the store keeps of each pod and container by day
(`storage.usage`).

The strategy (`Strategy`, every knob a query parameter of GET /api/rightsize), per container
of a workload (its pods over the window: one workload across a rollout):

- CPU request: the `cpu_percentile` of each pod's 1 min averages, the largest over the pods
  that ran at least `POD_MINUTES` (so that the busiest replica gets what it uses; a pod
  that lived minutes in a rollout does not decide alone), at least `cpu_min`. CPU limit:
  none, as throttling a container that has spare cores costs latency and saves nothing
  (`cpu_limit_factor` sets one at that multiple of the request instead);
- memory request and limit alike: the largest 1 min maximum of working set of any pod, plus
  `memory_buffer`, at least `memory_min`;
- fewer than `min_points` minutes of a container's data in the window: no recommendation,
  "not enough data" (never a guess). Recommendations are rounded up to whole millicores and
  mebibytes.

Findings (each with its threshold a knob): over-provisioned (the recommended request is
below `over_share` of the request: the difference times the running replicas could be
released), under-provisioned (the recommended request is above the request: the difference
is missing), near the memory limit (the peak at `near_limit` of it or more), throttled (at
least `throttled_share` of its CFS periods), OOM-killed, and no CPU or memory request or no
memory limit set.
"""

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields

CPU_QUANTILES = (0.5, 0.95, 0.99)
MEMORY_QUANTILES = (0.5, 0.95)
POD_MINUTES = 10  # minutes a pod ran at least to count in a workload's CPU percentile
_MI = 1 << 20


KNOB_HELP = {
    "cpu_percentile": "the percentile of each pod's 1 min CPU averages the CPU request is",
    "cpu_limit_factor": "a CPU limit at this multiple of the request; none by default",
    "cpu_min": "the smallest CPU request recommended, cores",
    "memory_buffer": "the share added to the peak working set for the memory request and limit",
    "memory_min": "the smallest memory request recommended, bytes",
    "min_points": "the minutes of data below which nothing is recommended",
    "over_share": "over-provisioned: the recommended request below this share of the request",
    "near_limit": "near the memory limit: the peak at this share of the limit or more",
    "throttled_share": "throttled: at least this share of the CFS periods throttled",
}


@dataclass(frozen=True)
class Strategy:
    """The knobs of the strategy and of the findings (see the module's docstring)."""

    cpu_percentile: float = 95.0
    cpu_limit_factor: float | None = None  # None: no CPU limit
    cpu_min: float = 0.01  # cores
    memory_buffer: float = 0.15
    memory_min: int = 100 * _MI  # bytes
    min_points: int = 100  # minutes of data
    over_share: float = 0.5
    near_limit: float = 0.9
    throttled_share: float = 0.1

    @classmethod
    def of(cls, args: Mapping[str, str]) -> "Strategy":
        """A strategy from query arguments (the defaults where absent); ValueError names a
        knob given a value it cannot take."""
        found = {}
        for knob in fields(cls):
            if knob.name not in args:
                continue
            text = args[knob.name]
            try:
                value = int(text) if knob.type is int else float(text)
            except ValueError:
                what = "a whole number" if knob.type is int else "a number"
                raise ValueError(f"{knob.name}: {text!r} is not {what}") from None
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{knob.name}: {text!r} is not a number of 0 or more")
            if knob.name == "cpu_percentile" and not 0 < value <= 100:
                raise ValueError(f"cpu_percentile: {text!r} is not a percentile (0-100]")
            found[knob.name] = value
        return cls(**found)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class Usage:
    """One container's (or pod's) figures over the window."""

    minutes: tuple[int, int]  # of CPU, of memory
    cpu: tuple  # p50, p95, p99, max (cores)
    memory: tuple  # p50, p95, max (bytes)
    periods: float | None  # CFS periods, and those throttled
    throttled: float | None
    oom_kills: float | None
    restarts: float | None


def pod_figures(usage: Usage) -> dict:
    """The figures of one pod's (or container's) usage, as the API answers them."""
    throttled = None
    if usage.periods and usage.throttled is not None:
        throttled = usage.throttled / usage.periods
    return {
        "minutes": {"cpu": usage.minutes[0], "memory": usage.minutes[1]},
        "cpu": dict(zip(("p50", "p95", "p99", "max"), usage.cpu, strict=True))
        | {"throttled_share": throttled},
        "memory": dict(zip(("p50", "p95", "max"), usage.memory, strict=True)),
        "oom_kills": usage.oom_kills,
        "restarts": usage.restarts,
    }


def workload_usage(pods: list[Usage]) -> Usage:
    """A workload container's usage from its pods': each CPU figure the largest of the pods
    that ran at least POD_MINUTES (all, where none did), each memory figure the largest, the
    minutes and counters' increases added up."""
    counted = [pods[at] for at in _counted(pods)]
    return Usage(
        (sum(pod.minutes[0] for pod in pods), sum(pod.minutes[1] for pod in pods)),
        _largest(pod.cpu for pod in counted),
        _largest(pod.memory for pod in pods),
        _total(pod.periods for pod in pods),
        _total(pod.throttled for pod in pods),
        _total(pod.oom_kills for pod in pods),
        _total(pod.restarts for pod in pods),
    )


def recommend(
    pods: list[Usage], at_percentile: list[float], current: dict, replicas: int, strategy
) -> dict:
    """A workload container's figures, recommendation and findings, from its pods' usage
    (`at_percentile`: each pod's CPU at the strategy's percentile) and its current requests
    and limits (`current`: cpu_request_cores, cpu_limit_cores, memory_request_bytes,
    memory_limit_bytes; None where unset)."""
    usage = workload_usage(pods)
    figures = pod_figures(usage)
    limit, peak = current.get("memory_limit_bytes"), usage.memory[2]
    figures["cpu"] |= {"request": current.get("cpu_request_cores")}
    figures["cpu"] |= {"limit": current.get("cpu_limit_cores")}
    figures["memory"] |= {
        "request": current.get("memory_request_bytes"),
        "limit": limit,
        "limit_share": peak / limit if peak is not None and limit else None,
    }
    wanted = max(_present(at_percentile[at] for at in _counted(pods)), default=None)
    minutes = min(usage.minutes)
    if minutes < strategy.min_points or wanted is None or peak is None:
        figures["recommendation"] = None
        figures["reason"] = (
            f"not enough data: {minutes} minutes of the {strategy.min_points} needed"
        )
    else:
        cpu = max(strategy.cpu_min, math.ceil(wanted * 1000 - 1e-9) / 1000)
        memory = max(strategy.memory_min, _mebibytes(peak * (1 + strategy.memory_buffer)))
        cpu_limit = None
        if strategy.cpu_limit_factor is not None:
            cpu_limit = math.ceil(cpu * strategy.cpu_limit_factor * 1000 - 1e-9) / 1000
        figures["recommendation"] = {
            "cpu_request_cores": cpu,
            "cpu_limit_cores": cpu_limit,
            "memory_request_bytes": memory,
            "memory_limit_bytes": memory,
        }
    figures["findings"] = findings(figures, replicas, strategy)
    return figures


def autoscaling(autoscaler: dict, container: str | None, figures: dict) -> list[str]:
    """What a HorizontalPodAutoscaler of the workload (`autoscalers.parse_autoscalers`) does
    with a container's recommended requests: for each resource it scales on that concerns the
    container (its own, or its pod's), a sentence."""
    said = []
    recommended = figures["recommendation"] or {}
    for metric in autoscaler["resources"]:
        resource, scope = metric["resource"], metric["container"]
        if resource not in ("cpu", "memory") or scope not in (None, container):
            continue
        whose = f"container {scope}'s" if scope else "the pods'"
        name = autoscaler["name"]
        if metric["type"] != "Utilization":
            said.append(
                f"{name} scales on {whose} {resource} at {metric['value']} a pod: the"
                f" {resource} request does not change when it adds replicas"
            )
            continue
        unit = "cpu_request_cores" if resource == "cpu" else "memory_request_bytes"
        show = _quantity_cores if resource == "cpu" else _quantity_bytes
        now, then = figures[resource]["request"], recommended.get(unit)
        share = metric["value"] / 100
        sentence = f"{name} adds replicas when {whose} {resource} passes {metric['value']} % of"
        sentence += " the request"
        if now is not None:
            sentence += f": at {show(now * share)} a pod now"
        if then is not None and now is not None and then != now:
            sooner = "sooner, at less load" if then < now else "later, at more load"
            sentence += f", at {show(then * share)} with the recommended request ({sooner})"
        said.append(sentence)
    return said


def findings(figures: dict, replicas: int, strategy: Strategy) -> list[dict]:
    """What is wrong with a container's requests and limits, each with what it costs or
    risks: `cpu_cores` and `memory_bytes` that could be released (over-provisioned: as
    positive numbers) or are missing (under-provisioned), over its running replicas."""
    found = []
    cpu, memory = figures["cpu"], figures["memory"]
    recommended = figures["recommendation"] or {}
    for resource, unit, request_name in (
        ("cpu", "cpu_cores", "cpu_request_cores"),
        ("memory", "memory_bytes", "memory_request_bytes"),
    ):
        request, wanted = figures[resource]["request"], recommended.get(request_name)
        if request is None:
            found.append(
                {
                    "finding": f"no_{resource}_request",
                    "risk": f"the scheduler counts no {resource} for it: nodes overcommit, and"
                    " it is among the first evicted under pressure",
                }
            )
        elif wanted is not None and wanted < strategy.over_share * request:
            found.append(
                {"finding": "over_provisioned", "resource": resource}
                | {unit: (request - wanted) * replicas, "risk": "reserved and unused"}
            )
        elif wanted is not None and wanted > request:
            found.append(
                {"finding": "under_provisioned", "resource": resource}
                | {unit: (request - wanted) * replicas}
                | {"risk": "it uses more than the scheduler reserved for it: contention"}
            )
    if memory["limit"] is None:
        found.append(
            {
                "finding": "no_memory_limit",
                "risk": "it may take the node's memory until the kernel kills something",
            }
        )
    elif memory["limit_share"] is not None and memory["limit_share"] >= strategy.near_limit:
        found.append(
            {
                "finding": "near_memory_limit",
                "share": memory["limit_share"],
                "risk": "an OOM kill at its next peak",
            }
        )
    if cpu["throttled_share"] is not None and cpu["throttled_share"] >= strategy.throttled_share:
        found.append(
            {
                "finding": "throttled",
                "share": cpu["throttled_share"],
                "risk": "latency: its CPU limit stops it while it has work",
            }
        )
    if figures["oom_kills"]:
        found.append(
            {
                "finding": "oom_killed",
                "count": figures["oom_kills"],
                "risk": "restarts and lost work: its memory limit is below what it uses",
            }
        )
    return found


def totals(items: list[dict]) -> dict:
    """Cores and bytes that could be released (`released_*`) or are missing (`missing_*`),
    and the findings counted, over workload items (`recommend`'s, in `containers`)."""
    found = {
        "released_cpu_cores": 0.0,
        "released_memory_bytes": 0.0,
        "missing_cpu_cores": 0.0,
        "missing_memory_bytes": 0.0,
        "findings": {},
    }
    for item in items:
        for container in item["containers"]:
            for finding in container["findings"]:
                name = finding["finding"]
                found["findings"][name] = found["findings"].get(name, 0) + 1
                for unit in ("cpu_cores", "memory_bytes"):
                    if unit in finding:
                        kind = "released" if finding[unit] > 0 else "missing"
                        found[f"{kind}_{unit}"] += abs(finding[unit])
    return found


def patch(item: dict) -> dict | None:
    """For a Deployment, StatefulSet or DaemonSet with recommendations, the strategic merge
    patch that sets them (`kubectl patch`) and the command; None for other workloads, whose
    pods' specs cannot be changed in place."""
    kind = item["workload_kind"]
    if kind not in ("Deployment", "StatefulSet", "DaemonSet"):
        return None
    containers = []
    for container in item["containers"]:
        recommended = container["recommendation"]
        if recommended is None or container["name"] is None:
            continue
        limits = {"memory": _quantity_bytes(recommended["memory_limit_bytes"])}
        # null deletes a key in a strategic merge patch: no CPU limit where none is advised
        limits["cpu"] = _quantity_cores(recommended["cpu_limit_cores"])
        resources = {
            "requests": {
                "cpu": _quantity_cores(recommended["cpu_request_cores"]),
                "memory": _quantity_bytes(recommended["memory_request_bytes"]),
            },
            "limits": limits,
        }
        containers.append({"name": container["name"], "resources": resources})
    if not containers:
        return None
    body = {"spec": {"template": {"spec": {"containers": containers}}}}
    text = json.dumps(body, separators=(",", ":"))
    return {
        "patch": body,
        "command": f"kubectl -n {item['namespace']} patch {kind.lower()} {item['workload']}"
        f" --type strategic --patch '{text}'",
        "note": f"applying it rolls the {kind}: its pods are replaced",
    }


def _quantity_cores(cores: float | None) -> str | None:
    return None if cores is None else f"{round(cores * 1000)}m"


def _quantity_bytes(value: float) -> str:
    return f"{round(value / _MI)}Mi"


def _mebibytes(value: float) -> int:
    return math.ceil(value / _MI - 1e-9) * _MI


def _counted(pods: list[Usage]) -> list[int]:
    """Which pods' CPU counts: those that ran at least POD_MINUTES (all, where none did)."""
    return [at for at, pod in enumerate(pods) if pod.minutes[0] >= POD_MINUTES] or list(
        range(len(pods))
    )


def _present(values):
    return (value for value in values if value is not None and value == value)


def _largest(rows) -> tuple:
    """The largest of each figure of rows of figures (None where none has one)."""
    return tuple(max(_present(figures), default=None) for figures in zip(*rows, strict=True))


def _total(values) -> float | None:
    found = list(_present(values))
    return sum(found) if found else None
