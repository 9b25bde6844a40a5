import ssl

import pytest
import trustme
from kubeserver import KubeServer, SilentServer


@pytest.fixture(scope="session")
def ca():
    return trustme.CA()


@pytest.fixture(scope="session")
def server_tls(ca):
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return context


@pytest.fixture
def service_account(tmp_path, ca):
    """A service-account directory: token, ca.crt and namespace, as a pod sees it."""
    directory = tmp_path / "serviceaccount"
    directory.mkdir()
    (directory / "token").write_text("token-1")
    ca.cert_pem.write_to_path(str(directory / "ca.crt"))
    (directory / "namespace").write_text("monitoring")
    return directory


@pytest.fixture
def kube(server_tls):
    server = KubeServer(server_tls).start()
    yield server
    server.stop()


@pytest.fixture
def silent():
    server = SilentServer()
    yield server
    server.close()
