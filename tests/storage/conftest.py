import pytest
from store_payloads import T0, Clock

from cloudmon.storage import open_storage
from cloudmon.storage.base import _BACKENDS


@pytest.fixture
def clock():
    return Clock(T0 + 25)


@pytest.fixture(params=sorted(_BACKENDS))
def backend(request, tmp_path, clock):
    url = {"sqlite": f"sqlite:///{tmp_path}/store.db"}[request.param]
    store = open_storage(url, clock=clock)
    yield store
    store.close()
