"""Real HTTP listeners for the URL fetcher's tests: each counts the connections it accepts, so a test can
prove that a refused fetch never reached it (not merely that the fetch failed)."""

from __future__ import annotations

import datetime
import socket
import socketserver
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

Route = Callable[["Handler"], None]
_STALL_SECONDS = 10.0  # longer than any test waits; teardown releases stalled handlers earlier


class CountingServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, host: str, port: int, routes: dict[str, Route]) -> None:
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.routes = routes
        self.connections = 0
        self.hosts_seen: list[str] = []
        self.release = threading.Event()
        self._lock = threading.Lock()
        super().__init__((host, port), Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks up the host's FQDN, which can wait on DNS for 127.0.0.2.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), int(self.server_address[1])

    def get_request(self) -> tuple[socket.socket, object]:
        request = super().get_request()
        with self._lock:
            self.connections += 1
        return request

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def serve_tls(self, context: ssl.SSLContext) -> None:
        """Speak TLS from now on, recording the name each client asks for (SNI)."""
        self.sni_names: list[str | None] = []
        context.sni_callback = lambda _socket, name, _context: self.sni_names.append(name)
        self.socket = context.wrap_socket(self.socket, server_side=True)

    def handle_error(self, request: object, client_address: object) -> None:
        return None  # refused handshakes and hung-up clients are what the tests provoke


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: CountingServer

    def do_GET(self) -> None:
        self.server.hosts_seen.append(self.headers.get("Host", ""))
        route = self.server.routes.get(self.path.partition("?")[0])
        if route is None:
            self.send(404, b"not here", "text/plain")
        else:
            route(self)

    def log_message(self, format: str, *args: object) -> None:
        return None

    def head(self, status: int, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()

    def send(self, status: int, body: bytes = b"", content_type: str = "application/octet-stream") -> None:
        self.head(status, {"Content-Type": content_type, "Content-Length": str(len(body))})
        self.wfile.write(body)

    def chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def stall(self) -> None:
        self.server.release.wait(_STALL_SECONDS)
        self.close_connection = True


def serve(body: bytes, content_type: str = "video/mp4") -> Route:
    return lambda handler: handler.send(200, body, content_type)


def status(code: int) -> Route:
    return lambda handler: handler.send(code, b"no", "text/plain")


def redirect(location: str) -> Route:
    def route(handler: Handler) -> None:
        handler.head(302, {"Location": location, "Content-Length": "0"})

    return route


def declare_then_stall(length: int) -> Route:
    """Headers announcing ``length`` bytes, then no body at all: a client that reads it waits."""

    def route(handler: Handler) -> None:
        handler.head(200, {"Content-Type": "video/mp4", "Content-Length": str(length)})
        handler.wfile.flush()
        handler.stall()

    return route


def prefix_then_stall(prefix: bytes, length: int, content_type: str) -> Route:
    """The first bytes of a ``length``-byte body, then nothing more."""

    def route(handler: Handler) -> None:
        handler.head(200, {"Content-Type": content_type, "Content-Length": str(length)})
        handler.wfile.write(prefix)
        handler.wfile.flush()
        handler.stall()

    return route


def chunked_forever(head: bytes, *, interval: float = 0.0, size: int = 1 << 16) -> Route:
    """A chunked body (no length): ``head``, then ``size``-byte chunks every ``interval`` s until the client
    hangs up or the test ends."""

    def route(handler: Handler) -> None:
        handler.head(200, {"Content-Type": "video/mp4", "Transfer-Encoding": "chunked"})
        handler.close_connection = True
        try:
            handler.chunk(head)
            deadline = time.monotonic() + _STALL_SECONDS
            while not handler.server.release.is_set() and time.monotonic() < deadline:
                handler.chunk(b"\0" * size)
                if interval:
                    time.sleep(interval)
        except OSError:  # the client hung up: what the tests want
            return

    return route


@contextmanager
def running(server: CountingServer) -> Iterator[CountingServer]:
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.release.set()
        server.shutdown()
        server.server_close()


def _certificate(
    subject: str, key: ec.EllipticCurvePrivateKey, issuer: tuple[str, ec.EllipticCurvePrivateKey] | None
):
    now = datetime.datetime.now(datetime.UTC)
    issuer_name, signer = issuer or (subject, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_name)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
    )
    if issuer is None:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
    else:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(subject)]), critical=False)
    return builder.sign(signer, hashes.SHA256())


def tls_contexts(folder: Path, host_name: str) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server, client) contexts: the server holds a certificate for ``host_name`` only (no IP address in
    it) from a throwaway CA that the client trusts."""
    ca_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = _certificate("url-fetcher test CA", ca_key, None)
    leaf = _certificate(host_name, leaf_key, ("url-fetcher test CA", ca_key))
    (folder / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (folder / "leaf.pem").write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    (folder / "leaf.key").write_bytes(
        leaf_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(folder / "leaf.pem", folder / "leaf.key")
    return server, ssl.create_default_context(cafile=str(folder / "ca.pem"))
