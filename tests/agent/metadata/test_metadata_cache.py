import logging

from cloudmon.agent.metadata.base import MetadataError, PodMeta
from cloudmon.agent.metadata.cache import MetadataCache


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


class Source:
    name = "test"

    def __init__(self, pods):
        self.pods = pods
        self.calls = 0
        self.error: Exception | None = None

    def list_pods(self):
        self.calls += 1
        if self.error is not None:
            raise self.error
        return dict(self.pods)

    def close(self):
        pass


def meta(uid):
    return PodMeta(uid=uid, name=f"pod-{uid}", namespace="ns")


def test_lists_on_first_use_then_answers_from_memory():
    source, clock = Source({"a": meta("a")}), Clock()
    cache = MetadataCache(source, clock=clock, min_refresh_seconds=30)
    assert cache.lookup(["a"]) == {"a": meta("a")}
    clock.now += 100
    assert cache.lookup(["a"]) == {"a": meta("a")}
    assert source.calls == 1


def test_new_pod_triggers_a_list_but_not_more_often_than_allowed():
    source, clock = Source({"a": meta("a")}), Clock()
    cache = MetadataCache(source, clock=clock, min_refresh_seconds=30)
    cache.lookup(["a"])
    clock.now += 10
    source.pods["b"] = meta("b")
    assert cache.lookup(["a", "b"]) == {"a": meta("a")}  # too soon after the last list
    assert source.calls == 1
    clock.now += 20
    assert set(cache.lookup(["a", "b"])) == {"a", "b"}
    assert source.calls == 2
    # A pod the source never knows (made outside Kubernetes) lists once per interval, no more.
    for _ in range(10):
        clock.now += 5
        assert set(cache.lookup(["a", "b", "stranger"])) == {"a", "b"}
    assert source.calls == 3


def test_refresh_requested_for_an_unknown_container():
    source, clock = Source({"a": meta("a")}), Clock()
    cache = MetadataCache(source, clock=clock, min_refresh_seconds=30)
    cache.lookup(["a"])
    cache.request_refresh()
    clock.now += 1
    cache.lookup(["a"])
    assert source.calls == 1
    clock.now += 30
    cache.lookup(["a"])
    assert source.calls == 2
    clock.now += 30
    cache.lookup(["a"])
    assert source.calls == 2  # the request was served


def test_old_answers_are_listed_again():
    source, clock = Source({"a": meta("a")}), Clock()
    cache = MetadataCache(source, clock=clock, min_refresh_seconds=30, max_age_seconds=300)
    cache.lookup(["a"])
    source.pods["a"] = PodMeta(uid="a", name="renamed", namespace="ns")
    clock.now += 300
    assert cache.lookup(["a"])["a"].name == "renamed"


def test_failures_keep_the_last_answer_and_log_once_per_error(caplog):
    source, clock = Source({"a": meta("a")}), Clock()
    cache = MetadataCache(source, clock=clock, min_refresh_seconds=1)
    cache.lookup(["a"])
    source.error = MetadataError("connection refused")
    with caplog.at_level(logging.INFO, logger="cloudmon.agent.metadata.cache"):
        for _ in range(3):
            clock.now += 1
            assert cache.lookup(["a", "new"]) == {"a": meta("a")}
        source.error = RuntimeError("bug")
        clock.now += 1
        assert cache.lookup(["a", "new"]) == {"a": meta("a")}
        source.error = None
        source.pods["new"] = meta("new")
        clock.now += 1
        assert set(cache.lookup(["a", "new"])) == {"a", "new"}
    messages = [record.getMessage() for record in caplog.records]
    assert sum("connection refused" in m for m in messages) == 1
    assert sum("RuntimeError: bug" in m for m in messages) == 1
    assert sum("answers again" in m for m in messages) == 1
    assert source.calls == 6


def test_a_source_that_never_answered_gives_nothing():
    source, clock = Source({}), Clock()
    source.error = MetadataError("down")
    cache = MetadataCache(source, clock=clock, min_refresh_seconds=30)
    assert cache.lookup(["a"]) == {}
    assert cache.lookup(["a"]) == {}
    assert source.calls == 1
