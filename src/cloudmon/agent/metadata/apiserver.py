"""The API server as a metadata source: LIST this node's pods, then WATCH them into a cache."""

import logging
import os
import threading
import urllib.parse

from cloudmon.agent import paths
from cloudmon.agent.files import report_once
from cloudmon.agent.metadata.base import MetadataError, PodMeta
from cloudmon.agent.metadata.http import Client, HttpStatusError, Stream, decode_json
from cloudmon.agent.metadata.podspec import index_pods, parse_pod, pod_list_items
from cloudmon.agent.metadata.workload import Owner, controller_of

log = logging.getLogger(__name__)

_OWNER_PATHS = {
    "ReplicaSet": "/apis/apps/v1/namespaces/{}/replicasets/{}",
    "Job": "/apis/batch/v1/namespaces/{}/jobs/{}",
}


class _Expired(Exception):
    """The watch's resourceVersion is too old (410 Gone): list again."""


class _Transient(LookupError):
    """An owner lookup that failed for a reason that may pass."""


_MISSING = object()
_MAX_PARENTS = 4096


def in_cluster_url() -> str:
    """https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT; MetadataError outside a pod."""
    host = os.environ.get("KUBERNETES_SERVICE_HOST")
    port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
    if not host:
        raise MetadataError("KUBERNETES_SERVICE_HOST is not set (not running in a pod)")
    return f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"


def _resource_version(obj: object) -> str | None:
    metadata = obj.get("metadata") if isinstance(obj, dict) else None
    version = metadata.get("resourceVersion") if isinstance(metadata, dict) else None
    return version if isinstance(version, str) and version else None


class ApiServerSource:
    """This node's pods from the API server, kept current by a watch in a daemon thread."""

    name = "apiserver"

    def __init__(
        self,
        node_name: str,
        *,
        service_account_dir: str = paths.SERVICE_ACCOUNT_DIR,
        apiserver_url: str | None = None,
        timeout: float = 5.0,
        watch_seconds: int = 300,
        backoff_seconds: tuple[float, float] = (1.0, 30.0),
    ):
        self._client = Client(
            apiserver_url or in_cluster_url(),
            token_file=os.path.join(service_account_dir, "token"),
            ca_file=os.path.join(service_account_dir, "ca.crt"),
            timeout=timeout,
        )
        self._selector = urllib.parse.quote(f"spec.nodeName={node_name}", safe="")
        self._timeout = timeout
        self._watch_seconds = watch_seconds
        self._backoff = backoff_seconds
        self._lock = threading.Lock()
        self._first_list = threading.Lock()
        self._pods: dict[str, PodMeta] = {}  # by metadata.uid
        self._snapshot: dict[str, PodMeta] | None = None
        self._version: str | None = None
        self._parents: dict[str, object] = {}  # owner uid -> Owner, None or LookupError
        self._stop = threading.Event()
        self._stream: Stream | None = None
        self._thread: threading.Thread | None = None

    def list_pods(self) -> dict[str, PodMeta]:
        """The cached pods; the first call lists them (MetadataError if it cannot)."""
        with self._first_list:
            if self._snapshot is None:
                self._relist()
                self._thread = threading.Thread(
                    target=self._run, name="cloudmon-pod-watch", daemon=True
                )
                self._thread.start()
        with self._lock:
            return self._snapshot

    def close(self) -> None:
        """Stop the watch thread."""
        self._stop.set()
        if (stream := self._stream) is not None:
            stream.abort()
        if self._thread is not None:
            self._thread.join(timeout=self._timeout)

    def _relist(self) -> None:
        document = self._client.get_json(f"/api/v1/pods?fieldSelector={self._selector}")
        items = pod_list_items(document)
        pods = {}
        for item in items:
            if (parsed := parse_pod(item, self._parent)) is not None:
                pods[parsed[0]] = parsed[1]
        with self._lock:
            self._pods = pods
            self._version = _resource_version(document)
            self._publish()

    def _publish(self) -> None:
        self._snapshot = index_pods(self._pods.items())

    def _run(self) -> None:
        delay = self._backoff[0]
        relist = False
        while not self._stop.is_set():
            try:
                if relist or self._version is None:
                    self._relist()
                    relist = False
                if self._watch():
                    delay = self._backoff[0]
                    continue
            except _Expired:
                log.info("pod watch expired; listing again")
                relist = True
                continue
            except MetadataError as error:
                if self._stop.is_set():
                    return
                report_once("metadata.apiserver.watch", "pod watch failed: %s", str(error))
            if self._stop.wait(delay):
                return
            delay = min(delay * 2, self._backoff[1])

    def _watch(self) -> int:
        path = (
            f"/api/v1/pods?fieldSelector={self._selector}&watch=true"
            f"&resourceVersion={urllib.parse.quote(self._version or '', safe='')}"
            f"&allowWatchBookmarks=true&timeoutSeconds={self._watch_seconds}"
        )
        try:
            stream = self._client.open(path, timeout=self._watch_seconds + self._timeout)
        except HttpStatusError as error:
            if error.status == 410:
                raise _Expired() from None
            raise
        self._stream = stream
        events = 0
        try:
            if self._stop.is_set():
                return events
            for line in stream.lines():
                self._apply(decode_json(line, "a watch event"))
                events += 1
            return events
        except OSError as error:
            if not self._stop.is_set():
                raise MetadataError(f"pod watch broke: {error}") from None
        finally:
            self._stream = None
            stream.close()

    def _apply(self, event: object) -> None:
        kind = event.get("type") if isinstance(event, dict) else None
        obj = event.get("object") if isinstance(event, dict) else None
        if kind == "ERROR":
            code = obj.get("code") if isinstance(obj, dict) else None
            if code == 410:
                raise _Expired()
            message = obj.get("message") if isinstance(obj, dict) else None
            raise MetadataError(f"pod watch error {code}: {message}")
        if kind not in ("ADDED", "MODIFIED", "DELETED", "BOOKMARK"):
            raise MetadataError(f"unexpected watch event: {str(event)[:100]!r}")
        parsed = None if kind == "BOOKMARK" else parse_pod(obj, self._parent)
        with self._lock:
            if parsed is not None:
                api_uid, meta = parsed
                if kind == "DELETED":
                    self._pods.pop(api_uid, None)
                else:
                    self._pods[api_uid] = meta
                self._publish()
            self._version = _resource_version(obj) or self._version

    def _parent(self, namespace: str, owner: Owner) -> Owner | None:
        # A ReplicaSet's or Job's owner never changes, so one GET per owner uid is enough.
        found = self._parents.get(owner.uid, _MISSING) if owner.uid else _MISSING
        if found is _MISSING:
            found = self._fetch_parent(namespace, owner)
            if owner.uid and not isinstance(found, _Transient):
                if len(self._parents) >= _MAX_PARENTS:
                    self._parents.clear()
                self._parents[owner.uid] = found
        if isinstance(found, LookupError):
            raise LookupError(str(found))
        return found

    def _fetch_parent(self, namespace: str, owner: Owner) -> Owner | LookupError | None:
        path = _OWNER_PATHS.get(owner.kind)
        if path is None:
            return LookupError(owner.kind)
        quote = urllib.parse.quote
        try:
            document = self._client.get_json(path.format(quote(namespace), quote(owner.name)))
        except MetadataError as error:
            report_once(
                f"metadata.apiserver.{owner.kind}",
                "cannot read %s owners, using names instead: %s",
                owner.kind,
                str(error),
            )
            # Denied or gone stays so; anything else may pass, so it is asked again next time.
            if isinstance(error, HttpStatusError) and error.status in (403, 404):
                return LookupError(str(error))
            return _Transient(str(error))
        metadata = document.get("metadata") if isinstance(document, dict) else None
        if not isinstance(metadata, dict) or (owner.uid and metadata.get("uid") != owner.uid):
            return LookupError(f"{owner.kind} {namespace}/{owner.name} is another object now")
        return controller_of(metadata.get("ownerReferences"))
