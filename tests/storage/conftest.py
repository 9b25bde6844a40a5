import pytest

from cloudmon.storage import open_storage
from cloudmon.storage.base import _BACKENDS


@pytest.fixture(params=sorted(_BACKENDS))
def backend(request, tmp_path):
    url = {"sqlite": f"sqlite:///{tmp_path}/store.db"}[request.param]
    store = open_storage(url)
    yield store
    store.close()
