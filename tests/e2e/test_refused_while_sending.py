"""A request refused before its body is read is still answered, not cut off while the client
is sending: the server reads what is left of the body (up to its limit) before it closes."""

import socket
import urllib.parse

from fixtures.servers import running_server

BODY = b"[" + b" " * (4 << 20) + b"]"  # 4 MiB, as an agent's largest batch
CHUNK = 64 << 10


def post_in_chunks(url: str, body: bytes) -> bytes:
    """POST a body in chunks over a raw socket, then read the answer; raises if the server
    closes the connection while the body is still being sent."""
    address = urllib.parse.urlsplit(url)
    with socket.create_connection((address.hostname, address.port), timeout=20) as sock:
        head = (
            f"POST /api/ingest HTTP/1.1\r\nHost: {address.netloc}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        sock.sendall(head.encode())
        for start in range(0, len(body), CHUNK):
            sock.sendall(body[start : start + CHUNK])
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def test_a_request_without_its_token_is_answered_after_its_body(tmp_path):
    token = tmp_path / "token"
    token.write_text("secret")
    with running_server(tmp_path, "--token-file", str(token)) as url:
        for _ in range(3):
            answer = post_in_chunks(url, BODY)
            assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
            assert b"bearer token" in answer
