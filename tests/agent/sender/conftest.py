"""Fixtures: a running ingest server and a hand-moved clock."""

import pytest
from sender_support import FakeClock, IngestServer


@pytest.fixture
def server():
    with IngestServer() as running:
        yield running


@pytest.fixture
def clock():
    return FakeClock()
