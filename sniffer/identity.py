"""Client identity: who sent a request, as an IP address and as a salted hash of its credential.

Detectors count per client (request rates, enumeration, credential stuffing), so the client must be the
originating host, not the load balancer in front of the service. The address a proxy claims for its client is
believed only when the packet comes from a configured trusted proxy: anyone else can write any header.

Credentials are identities too (one API key used from many addresses is one client), but they are secrets.
Only a keyed BLAKE2b digest of them ever leaves this module. The key is the configured salt: it must be a
secret in production, or anyone holding the transaction log could confirm a guessed token by hashing it.
When no salt is configured, `DEFAULT_SALT` (public, fixed) keeps hashes stable across runs so that a replay
gives the same result; it protects nothing against a guess.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Sequence

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_SALT = b"apispy-default-salt: configure a secret salt in production"
API_KEY_HASH_BYTES = 8
_BLAKE2B_MAX_KEY_BYTES = 64
_SOURCE_CACHE_SIZE = 4096

# RFC 7239 forwarded-pair: token "=" ( token / quoted-string ), pairs joined by ";", elements by ",".
_FORWARDED_PAIR = re.compile(r"""\s*([!#$%&'*+.^_`|~0-9A-Za-z-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;,\s"]*)\s*([;,]|$)""")
_QUOTED_PAIR = re.compile(r"\\(.)")
_PORT = re.compile(r"\d{1,5}|_[A-Za-z0-9._-]+")
# RFC 7235 auth-scheme (a token) followed by whitespace and the credentials.
_AUTH_SCHEME = re.compile(rb"([!#$%&'*+.^_`|~0-9A-Za-z-]+)[ \t]+(.+)", re.DOTALL)
_AUTH_PARAM = re.compile(rb"""([!#$%&'*+.^_`|~0-9A-Za-z-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^,\s]*)""")


def _parse_ip(text: str) -> IPAddress | None:
    """The address in `text`, IPv4-mapped IPv6 unwrapped to IPv4, or None if it is not one."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _parse_node(node: str) -> IPAddress | None:
    """The address in one hop: `1.2.3.4`, `1.2.3.4:80`, `[2001:db8::1]`, `[2001:db8::1]:80`, `2001:db8::1`.

    Obfuscated identifiers (`_hidden`), `unknown` and anything else that is not an address give None.
    """
    node = node.strip().strip('"').strip()
    if node.startswith("["):
        host, bracket, port = node[1:].partition("]")
        if not bracket or (port and not (port.startswith(":") and _PORT.fullmatch(port[1:]))):
            return None
        return _parse_ip(host)
    if node.count(":") == 1:
        host, _, port = node.partition(":")
        return _parse_ip(host) if _PORT.fullmatch(port) else None
    return _parse_ip(node)


def _first_forwarded_for(forwarded: str) -> str | None:
    """The `for` value of the first (left-most) element of an RFC 7239 `Forwarded` header, unquoted.

    Parsing stops at the end of the first element; a malformed element gives None rather than a guess.
    """
    position = 0
    while position < len(forwarded):
        match = _FORWARDED_PAIR.match(forwarded, position)
        if match is None:
            return None
        name, value, separator = match.groups()
        if name.lower() == "for":
            return _QUOTED_PAIR.sub(r"\1", value[1:-1]) if value.startswith('"') else value
        if separator != ";":
            return None
        position = match.end()
    return None


def _first_x_forwarded_for(x_forwarded_for: str) -> str:
    """The left-most entry of `X-Forwarded-For` (several headers arrive joined by ", ")."""
    return x_forwarded_for.partition(",")[0]


def _hash_key(salt: bytes) -> bytes:
    """A BLAKE2b key for `salt`: the salt itself, or its digest when it is longer than a key may be."""
    salt = salt or DEFAULT_SALT
    if len(salt) > _BLAKE2B_MAX_KEY_BYTES:
        return hashlib.blake2b(salt, digest_size=_BLAKE2B_MAX_KEY_BYTES).digest()
    return salt


def _auth_param(params: bytes, wanted: bytes) -> bytes | None:
    """The value of auth-param `wanted` (case-insensitive) in a `k=v, k="v"` list, unquoted."""
    for name, value in _AUTH_PARAM.findall(params):
        if name.lower() == wanted:
            return value[1:-1] if value.startswith(b'"') else value
    return None


def _stable_credential(value: bytes) -> bytes:
    """The part of a credential header that identifies the client from one request to the next.

    `Bearer xyz` -> `xyz`, `Basic abc` -> `abc`, a bare API key -> itself. Digest and AWS Signature V4
    carry a per-request nonce or signature, so hashing all of it would give every request a new identity:
    for them the user name and the access key id are what identify the client.
    """
    match = _AUTH_SCHEME.fullmatch(value)
    if match is None:
        return value
    scheme, credentials = match.group(1).lower(), match.group(2).strip()
    if scheme == b"digest":
        return _auth_param(credentials, b"username") or credentials
    if scheme.startswith(b"aws4-"):
        access_key = _auth_param(credentials, b"credential")
        return access_key.partition(b"/")[0] if access_key else credentials
    return credentials


def _parse_network(entry: str) -> IPNetwork:
    try:
        return ipaddress.ip_network(entry.strip(), strict=False)
    except ValueError as error:
        raise ValueError(f"trusted_proxies: {entry!r} is not an IP address or CIDR network") from error


class ClientIdentity:
    """Resolves the client address behind trusted proxies and hashes credentials with a secret salt.

    `trusted_proxies` are CIDR networks or single addresses, IPv4 or IPv6; a bad entry raises ValueError
    naming it. The proxy headers are believed only for packets from those networks. Of them, the left-most hop
    (the client as the first proxy saw it) is used, `Forwarded` before `X-Forwarded-For`: that is only as
    honest as the first proxy, which must overwrite, not append to, what the client sent. A hop that is
    obfuscated, `unknown` or malformed is skipped in favour of the next source, and finally of the packet's
    source address.
    """

    __slots__ = ("_hash_key", "_sources", "_trusted_networks")

    def __init__(self, trusted_proxies: Sequence[str] = (), salt: bytes = b"") -> None:
        if isinstance(trusted_proxies, str):
            raise TypeError("trusted_proxies must be a sequence of strings, not one string")
        self._trusted_networks = tuple(_parse_network(entry) for entry in trusted_proxies)
        self._hash_key = _hash_key(salt)
        # src_ip -> (normalised address, is a trusted proxy): sources are few, parsing them is not free.
        self._sources: dict[str, tuple[str, bool]] = {}

    def client_id(self, src_ip: str, x_forwarded_for: str = "", forwarded: str = "") -> str:
        """The client's address in canonical form (`ipaddress` text; IPv4-mapped IPv6 as IPv4).

        A `src_ip` that is not an address is returned unchanged: it is still the best identity there is.
        """
        source, trusted = self._source(src_ip)
        if not trusted:
            return source
        forwarded_hop = _first_forwarded_for(forwarded) if forwarded else None
        for header_hop in (forwarded_hop, _first_x_forwarded_for(x_forwarded_for)):
            address = _parse_node(header_hop) if header_hop else None
            if address is not None:
                return str(address)
        return source

    def api_key_hash(self, credential: bytes) -> str | None:
        """A salted 16-hex-digit digest of the credential in an Authorization or API-key header value.

        None when there is no credential. The same credential and salt always give the same digest; the
        credential cannot be recovered from it.
        """
        stable = _stable_credential(credential.strip())
        if not stable:
            return None
        return hashlib.blake2b(stable, key=self._hash_key, digest_size=API_KEY_HASH_BYTES).hexdigest()

    def _source(self, src_ip: str) -> tuple[str, bool]:
        known = self._sources.get(src_ip)
        if known is not None:
            return known
        address = _parse_ip(src_ip)
        if address is None:
            known = (src_ip, False)
        else:
            known = (str(address), _in_any(address, self._trusted_networks))
        if len(self._sources) >= _SOURCE_CACHE_SIZE:
            del self._sources[next(iter(self._sources))]
        self._sources[src_ip] = known
        return known


def _in_any(address: IPAddress, networks: Sequence[IPNetwork]) -> bool:
    """Whether `address` lies in one of `networks`. A function of its own: Cython does not compile a generator
    expression inside a method it makes a C function (ClientIdentity._source, sniffer/identity.pxd)."""
    return any(address in network for network in networks)
