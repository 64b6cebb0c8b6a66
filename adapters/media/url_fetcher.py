"""MediaFetcher for http(s) URLs: public addresses only, a byte cap, a deadline, early signature checks.

Every connection the fetch client opens goes through ``_VettingBackend``: it resolves the host once, checks
every answer with the fetch's ``AddressGuard`` and connects to a checked address itself, so no second lookup
(DNS rebinding) and no redirect can reach an address that was not checked. TLS still verifies, and the Host
header and SNI still name, the URL's host: httpcore does those above the backend, from the URL.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from pathlib import Path

import attrs
import httpcore
import httpx

from adapters.media.address_guard import AddressGuard, Resolver
from adapters.media.sink import MediaSink
from domain.errors import MediaTooLarge, SourceRejected, SourceUnreachable
from domain.ports import FetchedMedia

MAX_URL_LENGTH = 2048
_SCHEMES = ("http", "https")
# Compressed bodies would dodge the byte cap and the signature check; ask for the bytes as stored.
_HEADERS = {"Accept-Encoding": "identity"}

# The guard of the fetch in progress: connect_tcp cannot be handed arguments, but runs in the fetch's task.
# Outside a fetch the client still refuses every non-public address.
_current_guard: ContextVar[AddressGuard | None] = ContextVar("media_fetch_guard", default=None)
_PUBLIC_ONLY = AddressGuard()


@attrs.frozen
class FetchLimits:
    max_bytes: int
    deadline_seconds: float  # the whole fetch, redirects included
    max_redirects: int = 5
    allowed_networks: tuple[str, ...] = ()  # CIDRs an operator opens beyond the public internet


class _VettingBackend(httpcore.AsyncNetworkBackend):
    def __init__(self) -> None:
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface: the connect timeout)
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = await (_current_guard.get() or _PUBLIC_ONLY).vetted_addresses(host, port)
        except OSError as error:
            raise httpcore.ConnectError(f"{host} could not be resolved ({error})") from error
        failure: Exception | None = None
        for ip in addresses:
            try:  # a literal IP: anyio connects to it without any lookup
                return await self._inner.connect_tcp(str(ip), port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as error:
                failure = error
        assert failure is not None  # vetted_addresses never answers an empty tuple
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("media is never fetched over a unix socket")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _VettingTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport over a pool that connects through ``_VettingBackend``. httpx 0.28 cannot be
    given a network backend, so the pool it built (unused, nothing opened yet) is replaced by one that is."""

    def __init__(self, limits: httpx.Limits, ssl_context: ssl.SSLContext) -> None:
        super().__init__(verify=ssl_context, limits=limits, trust_env=False)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=_VettingBackend(),
        )


def create_fetch_client(timeout: float, *, verify: ssl.SSLContext | None = None) -> httpx.AsyncClient:
    """The client the lifecycle opens for HttpMediaFetcher. No redirects (the fetcher vets each hop), no
    proxy or certificates from the environment, and no keep-alive: a pooled connection would skip the
    vetting of the fetch that reuses it, and media fetches are one long request per host anyway.

    ``verify`` replaces the public CAs (certifi's), for a private CA."""
    limits = httpx.Limits(max_connections=32, max_keepalive_connections=0)
    ssl_context = verify or httpx.create_ssl_context(trust_env=False)
    return httpx.AsyncClient(
        transport=_VettingTransport(limits, ssl_context),
        timeout=timeout,
        follow_redirects=False,
        trust_env=False,
        headers={"User-Agent": "video-opusclip-fetcher"},
    )


def checked_url(source: str) -> httpx.URL:
    """``source`` as a URL the fetcher may request (syntax only, no lookup), or SourceRejected."""
    if len(source) > MAX_URL_LENGTH:
        raise SourceRejected(f"the URL is longer than {MAX_URL_LENGTH} characters")
    try:
        url = httpx.URL(source)
    except httpx.InvalidURL as error:
        raise SourceRejected(f"not a valid URL ({error})") from None
    if url.scheme not in _SCHEMES:
        raise SourceRejected(f"only http and https URLs are fetched, not {url.scheme or 'a bare path'!r}")
    if not url.host:
        raise SourceRejected("the URL names no host")
    if url.userinfo:
        # Refused rather than stripped: credentials in a URL end up in job records and logs.
        raise SourceRejected("URLs with a user name or password are not fetched")
    return url


def shown(url: httpx.URL) -> str:
    """The URL for messages: queries often carry tokens."""
    return str(url.copy_with(query=None, fragment=None))


def _check_status(source: str, response: httpx.Response) -> None:
    status = response.status_code
    if status == 429 or status >= 500:
        raise SourceUnreachable(f"{source} answered {status} {response.reason_phrase}")
    if not 200 <= status < 300:
        raise SourceRejected(f"{source} answered {status} {response.reason_phrase}")


@attrs.frozen
class HttpMediaFetcher:
    """Downloads http(s) media into ``downloads`` under a random name; see the module docstring for why the
    connection can only reach addresses the guard accepted."""

    client: Callable[[], httpx.AsyncClient]  # the lifecycle opens the client after this is built
    downloads: Path
    limits: FetchLimits
    resolver: Resolver | None = None  # the event loop's getaddrinfo when None
    _guard: AddressGuard = attrs.field(
        init=False,
        default=attrs.Factory(
            lambda self: AddressGuard.allowing(self.limits.allowed_networks, self.resolver), takes_self=True
        ),
    )

    async def fetch(self, source: str) -> FetchedMedia:
        url = checked_url(source)
        token = _current_guard.set(self._guard)
        try:
            async with asyncio.timeout(self.limits.deadline_seconds):
                return await self._follow(url)
        except TimeoutError:
            seconds = f"{self.limits.deadline_seconds:g}"
            raise SourceUnreachable(f"{shown(url)} did not finish within {seconds} s") from None
        finally:
            _current_guard.reset(token)

    async def _follow(self, url: httpx.URL) -> FetchedMedia:
        client = self.client()
        for _ in range(self.limits.max_redirects + 1):
            try:
                async with client.stream("GET", url, headers=_HEADERS) as response:
                    if not response.is_redirect:
                        return await self._save(url, response)
                    url = self._next(url, response.headers["Location"])
            except httpx.TimeoutException as error:
                raise SourceUnreachable(f"{shown(url)} timed out ({type(error).__name__})") from error
            except httpx.TransportError as error:
                raise SourceUnreachable(f"{shown(url)} failed: {error or type(error).__name__}") from error
        raise SourceRejected(f"{shown(url)}: more than {self.limits.max_redirects} redirects")

    @staticmethod
    def _next(url: httpx.URL, location: str) -> httpx.URL:
        try:
            target = url.join(location)
        except httpx.InvalidURL:
            raise SourceRejected(f"{shown(url)} redirects to an invalid URL") from None
        return checked_url(str(target))  # its addresses are vetted when it is connected to

    async def _save(self, url: httpx.URL, response: httpx.Response) -> FetchedMedia:
        source = shown(url)
        _check_status(source, response)
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > self.limits.max_bytes:
            raise MediaTooLarge(f"{source} is {declared} bytes, over the {self.limits.max_bytes} byte limit")
        download = MediaSink(self.downloads, self.limits.max_bytes, source)
        try:
            async for chunk in response.aiter_raw():
                download.feed(chunk)
            return download.finish()
        except BaseException:
            download.discard()
            raise
