"""HttpMediaFetcher and ServiceMediaFetcher against real listeners on 127.0.0.1, 127.0.0.2 and ::1."""

from __future__ import annotations

import asyncio
import hashlib
import socket
import ssl
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.media.address_guard import Resolver
from adapters.media.service_fetcher import ServiceMediaFetcher, validate_source_url
from adapters.media.synthetic import Scene, write_video
from adapters.media.url_fetcher import FetchLimits, HttpMediaFetcher, create_fetch_client
from domain.errors import MediaError, MediaTooLarge, SourceRejected, SourceUnreachable, UnsupportedMedia
from tests.integration import url_fetcher_servers as fake
from tests.integration.url_fetcher_servers import CountingServer

LOCAL = ("127.0.0.1/32",)  # the tests' own listener; everything else stays refused
HTML = b"<!doctype html><html><head><title>Watch</title></head><body>" + b"x" * 4000


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("fetch-media") / "tiny.mp4"
    write_video(path, [Scene(1.0, (40, 60, 120))], size=(160, 96), audio=False)
    return path.read_bytes()


def _pair_on_one_port(main_routes: dict[str, fake.Route], other_routes: dict[str, fake.Route]) -> Any:
    """Listeners on 127.0.0.1 and 127.0.0.2 sharing a port, so a name answering either reaches one."""
    for _ in range(20):
        main = CountingServer("127.0.0.1", 0, main_routes)
        try:
            return main, CountingServer("127.0.0.2", main.port, other_routes)
        except OSError:
            main.server_close()
    raise RuntimeError("no port free on both 127.0.0.1 and 127.0.0.2")


@pytest.fixture(scope="module")
def servers(media: bytes) -> Iterator[tuple[CountingServer, CountingServer, CountingServer | None]]:
    routes: dict[str, fake.Route] = {
        "/video": fake.serve(media),
        "/missing": fake.status(404),
        "/busy": fake.status(503),
        "/slow-down": fake.status(429),
        "/huge": fake.declare_then_stall(10**9),
        "/endless": fake.chunked_forever(media[:1024]),
        "/trickle": fake.chunked_forever(media[:1024], interval=0.1, size=1),
        "/html": fake.prefix_then_stall(HTML, 500_000, "text/html"),  # under the cap
        "/hop/0": fake.redirect("/video"),
    }
    routes |= {f"/hop/{n}": fake.redirect(f"/hop/{n - 1}") for n in range(1, 8)}
    main, other = _pair_on_one_port(routes, {"/video": fake.serve(media)})
    routes["/to-other"] = fake.redirect(f"http://127.0.0.2:{main.port}/video")
    try:
        v6: CountingServer | None = CountingServer("::1", 0, routes)
    except OSError:
        v6 = None  # no IPv6 loopback here
    with fake.running(main), fake.running(other):
        if v6 is None:
            yield main, other, None
        else:
            with fake.running(v6):
                yield main, other, v6


@pytest.fixture
def main(servers: tuple[CountingServer, CountingServer, CountingServer | None]) -> CountingServer:
    return servers[0]


@pytest.fixture
def other(servers: tuple[CountingServer, CountingServer, CountingServer | None]) -> CountingServer:
    return servers[1]


@pytest.fixture(scope="module")
def tls(
    media: bytes, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[CountingServer, ssl.SSLContext]]:
    """An https listener on 127.0.0.1 whose certificate names media.test, and a client context trusting it."""
    server_context, client_context = fake.tls_contexts(tmp_path_factory.mktemp("tls"), "media.test")
    server = CountingServer("127.0.0.1", 0, {"/video": fake.serve(media)})
    server.serve_tls(server_context)
    with fake.running(server):
        yield server, client_context


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with create_fetch_client(timeout=5.0) as opened:
        yield opened


def _fetcher(
    client: httpx.AsyncClient,
    downloads: Path,
    *,
    allowed: tuple[str, ...] = (),
    max_bytes: int = 1 << 20,
    deadline: float = 5.0,
    resolver: Resolver | None = None,
) -> HttpMediaFetcher:
    limits = FetchLimits(max_bytes=max_bytes, deadline_seconds=deadline, allowed_networks=allowed)
    return HttpMediaFetcher(lambda: client, downloads, limits, resolver)


def _at(server: CountingServer, path: str) -> str:
    return f"http://127.0.0.1:{server.port}{path}"


def _leftovers(folder: Path) -> list[Path]:
    return list(folder.iterdir())


async def _untouched(server: CountingServer, before: int) -> None:
    await asyncio.sleep(0.1)  # a connection that did get through is accepted well within this
    assert server.connections == before


def _answers(*addresses: str) -> Resolver:
    """A resolver giving the next answer on each call (the last one from then on), counting calls."""
    calls: list[str] = []

    async def resolve(host: str, port: int, **_: object) -> list[tuple[Any, ...]]:
        answer = addresses[min(len(calls), len(addresses) - 1)]
        calls.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port)) for ip in answer.split(",")]

    resolve.calls = calls  # type: ignore[attr-defined]  # the tests read how often it was asked
    return resolve


async def test_download_is_hashed_under_a_random_name(
    client: httpx.AsyncClient, main: CountingServer, media: bytes, tmp_path: Path
) -> None:
    before = main.connections
    fetched = await _fetcher(client, tmp_path, allowed=LOCAL).fetch(_at(main, "/video?name=clip.mp4"))
    assert fetched.sha256 == hashlib.sha256(media).hexdigest()
    assert fetched.size_bytes == len(media)
    assert fetched.temporary
    assert fetched.path.parent == tmp_path
    assert len(fetched.path.name) == 32 and "clip" not in fetched.path.name
    assert fetched.path.read_bytes() == media
    assert main.connections == before + 1


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:{port}/video",
        "http://localhost:{port}/video",
        "http://[::ffff:127.0.0.1]:{port}/video",
        "http://2130706433:{port}/video",
        "http://0x7f.0.0.1:{port}/video",
        "http://127.1:{port}/video",
        "http://[::1]:{v6}/video",
    ],
)
async def test_loopback_in_any_spelling_is_never_connected_to(
    client: httpx.AsyncClient,
    servers: tuple[CountingServer, CountingServer, CountingServer | None],
    tmp_path: Path,
    url: str,
) -> None:
    main, _, v6 = servers
    if "{v6}" in url and v6 is None:
        pytest.skip("this machine has no IPv6 loopback")
    before, before_v6 = main.connections, v6.connections if v6 else 0
    with pytest.raises(SourceRejected, match="loopback"):
        await _fetcher(client, tmp_path).fetch(url.format(port=main.port, v6=v6.port if v6 else 0))
    await _untouched(main, before)
    if v6 is not None:
        await _untouched(v6, before_v6)


async def test_redirect_to_an_address_not_allowed_never_connects(
    client: httpx.AsyncClient, main: CountingServer, other: CountingServer, tmp_path: Path
) -> None:
    before = other.connections
    with pytest.raises(SourceRejected, match=r"127\.0\.0\.2"):
        await _fetcher(client, tmp_path, allowed=LOCAL).fetch(_at(main, "/to-other"))
    await _untouched(other, before)


async def test_five_redirects_are_followed_and_six_refused(
    client: httpx.AsyncClient, main: CountingServer, media: bytes, tmp_path: Path
) -> None:
    fetcher = _fetcher(client, tmp_path, allowed=LOCAL)
    fetched = await fetcher.fetch(_at(main, "/hop/4"))  # 5 redirects
    assert fetched.size_bytes == len(media)
    with pytest.raises(SourceRejected, match="more than 5 redirects"):
        await fetcher.fetch(_at(main, "/hop/5"))


async def test_declared_oversize_is_refused_before_the_body(
    client: httpx.AsyncClient, main: CountingServer, tmp_path: Path
) -> None:
    # The server sends no body at all: reading it would run into the deadline instead.
    started = time.monotonic()
    with pytest.raises(MediaTooLarge, match="1000000000 bytes"):
        await _fetcher(client, tmp_path, allowed=LOCAL, deadline=3).fetch(_at(main, "/huge"))
    assert time.monotonic() - started < 2.5  # the server never finishes: only the deadline (3 s) would end it
    assert _leftovers(tmp_path) == []


async def test_endless_chunked_body_is_cut_at_the_cap(
    client: httpx.AsyncClient, main: CountingServer, tmp_path: Path
) -> None:
    with pytest.raises(MediaTooLarge, match="larger than the 1048576 byte limit"):
        await _fetcher(client, tmp_path, allowed=LOCAL).fetch(_at(main, "/endless"))
    assert _leftovers(tmp_path) == []


async def test_deadline_covers_a_trickling_body(
    client: httpx.AsyncClient, main: CountingServer, tmp_path: Path
) -> None:
    started = time.monotonic()
    with pytest.raises(SourceUnreachable, match="did not finish within 1 s"):
        await _fetcher(client, tmp_path, allowed=LOCAL, deadline=1).fetch(_at(main, "/trickle"))
    assert time.monotonic() - started < 4  # the server trickles for 10 s
    assert _leftovers(tmp_path) == []


async def test_html_is_refused_from_its_first_bytes(
    client: httpx.AsyncClient, main: CountingServer, tmp_path: Path
) -> None:
    # The rest of the page never comes: waiting for it would hit the deadline.
    started = time.monotonic()
    with pytest.raises(UnsupportedMedia, match="HTML"):
        await _fetcher(client, tmp_path, allowed=LOCAL, deadline=3).fetch(_at(main, "/html"))
    assert time.monotonic() - started < 2.5  # the server never finishes: only the deadline (3 s) would end it
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize(
    ("path", "error"),
    [("/missing", SourceRejected), ("/busy", SourceUnreachable), ("/slow-down", SourceUnreachable)],
)
async def test_status_codes(
    client: httpx.AsyncClient, main: CountingServer, tmp_path: Path, path: str, error: type[Exception]
) -> None:
    with pytest.raises(error) as raised:
        await _fetcher(client, tmp_path, allowed=LOCAL).fetch(_at(main, f"{path}?sig=s3cret"))
    assert str(main.port) in str(raised.value) and "s3cret" not in str(raised.value)


async def test_one_private_answer_refuses_the_host(
    client: httpx.AsyncClient, main: CountingServer, tmp_path: Path
) -> None:
    before = main.connections
    fetcher = _fetcher(client, tmp_path, allowed=LOCAL, resolver=_answers("127.0.0.1,10.0.0.7"))
    with pytest.raises(SourceRejected, match=r"media\.test resolves to 10\.0\.0\.7, which is a private"):
        await fetcher.fetch(f"http://media.test:{main.port}/video")
    await _untouched(main, before)


async def test_a_changing_dns_answer_cannot_redirect_the_connection(
    client: httpx.AsyncClient, main: CountingServer, other: CountingServer, media: bytes, tmp_path: Path
) -> None:
    resolver = _answers("127.0.0.1", "127.0.0.2")
    before = other.connections
    fetched = await _fetcher(client, tmp_path, allowed=LOCAL, resolver=resolver).fetch(
        f"http://media.test:{main.port}/video"
    )
    await _untouched(other, before)
    assert fetched.size_bytes == len(media)
    assert main.hosts_seen[-1:] == [f"media.test:{main.port}"]  # the Host header still names the URL's host
    assert resolver.calls == ["media.test"]  # type: ignore[attr-defined]


async def test_credentials_in_the_url_are_refused(
    client: httpx.AsyncClient, main: CountingServer, tmp_path: Path
) -> None:
    before = main.connections
    with pytest.raises(SourceRejected, match="user name or password") as raised:
        await _fetcher(client, tmp_path, allowed=LOCAL).fetch(
            f"http://me:hunter2@127.0.0.1:{main.port}/video"
        )
    assert "hunter2" not in str(raised.value)
    await _untouched(main, before)


async def test_service_fetcher_reads_uploads_by_id_only(
    client: httpx.AsyncClient, tmp_path: Path, media: bytes
) -> None:
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    upload_id = "0123456789abcdef0123456789abcdef"
    (uploads / upload_id).write_bytes(media)
    (tmp_path / "secret").write_bytes(media)
    (uploads / ("f" * 32)).symlink_to(tmp_path / "secret")
    (uploads / f"{upload_id}.mp4").write_bytes(media)
    fetcher = ServiceMediaFetcher(tmp_path, _fetcher(client, tmp_path / "downloads"))

    fetched = await fetcher.fetch(f"upload:{upload_id}")
    assert fetched.sha256 == hashlib.sha256(media).hexdigest() and not fetched.temporary
    with pytest.raises(SourceRejected, match="loopback"):  # URLs go to the guarded http fetcher
        await fetcher.fetch("HTTP://127.0.0.1:9/video.mp4")
    for source in (
        str(tmp_path / "secret"),
        f"file://{tmp_path / 'secret'}",
        "ftp://example.com/video.mp4",
        f"upload:{upload_id.upper()}",
        f"upload:{upload_id}\n",
        f"upload:{upload_id}.mp4",
        "upload:../secret",
        f"upload:x/{upload_id}",
        f"upload:{'f' * 32}",  # a link out of the folder
        f"upload:{'e' * 32}",  # no such upload
    ):
        with pytest.raises(SourceRejected):
            await fetcher.fetch(source)
    (uploads / ("d" * 32)).write_bytes(b"")
    with pytest.raises(MediaError, match="empty"):
        await fetcher.fetch(f"upload:{'d' * 32}")


def test_source_urls_are_checked_on_syntax_at_submit_time() -> None:
    assert validate_source_url("HTTPS://Example.COM/a b.mp4") == "https://example.com/a%20b.mp4"
    for url in (
        "ftp://example.com/v.mp4",
        "file:///etc/passwd",
        "/var/media/v.mp4",
        "http://user:pw@example.com/v.mp4",
        "http:///v.mp4",
        "https://example.com/" + "a" * 2048,
    ):
        with pytest.raises(SourceRejected):
            validate_source_url(url)


async def test_no_connection_outlives_the_fetch_that_vetted_it(
    client: httpx.AsyncClient, main: CountingServer, tmp_path: Path
) -> None:
    # A pooled connection would carry the next fetch past its own guard without a new check.
    await _fetcher(client, tmp_path, allowed=LOCAL).fetch(_at(main, "/video"))
    before = main.connections
    with pytest.raises(SourceRejected, match="loopback"):
        await _fetcher(client, tmp_path).fetch(_at(main, "/video"))
    await _untouched(main, before)


async def test_tls_names_and_verifies_the_url_host_on_the_vetted_address(
    tls: tuple[CountingServer, ssl.SSLContext], media: bytes, tmp_path: Path
) -> None:
    server, trusted = tls

    def fetcher_for(client: httpx.AsyncClient) -> HttpMediaFetcher:
        return _fetcher(client, tmp_path, allowed=LOCAL, resolver=_answers("127.0.0.1"))

    async with create_fetch_client(timeout=5.0, verify=trusted) as client:
        # The certificate names media.test, not 127.0.0.1: this only passes if TLS checks the name.
        fetched = await fetcher_for(client).fetch(f"https://media.test:{server.port}/video")
        assert fetched.sha256 == hashlib.sha256(media).hexdigest()
        assert server.sni_names[-1] == "media.test"
        assert server.hosts_seen[-1] == f"media.test:{server.port}"
        with pytest.raises(SourceUnreachable, match="CERTIFICATE_VERIFY_FAILED"):
            await fetcher_for(client).fetch(f"https://elsewhere.test:{server.port}/video")
    async with create_fetch_client(timeout=5.0) as client:  # the public CAs do not know the test CA
        with pytest.raises(SourceUnreachable, match="CERTIFICATE_VERIFY_FAILED"):
            await fetcher_for(client).fetch(f"https://media.test:{server.port}/video")
