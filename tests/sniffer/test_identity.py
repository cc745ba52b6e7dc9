import hashlib

import pytest

from sniffer.identity import DEFAULT_SALT, ClientIdentity

PROXIES = ["10.0.0.0/8", "192.168.1.1", "2001:db8:ffff::/48", "fd00::1"]


@pytest.fixture
def identity() -> ClientIdentity:
    return ClientIdentity(trusted_proxies=PROXIES)


def test_untrusted_source_is_the_client_and_its_headers_are_ignored(identity):
    client = identity.client_id("203.0.113.9", x_forwarded_for="198.51.100.1", forwarded="for=198.51.100.2")
    assert client == "203.0.113.9"


def test_without_trusted_proxies_headers_are_never_believed():
    assert ClientIdentity().client_id("10.0.0.5", x_forwarded_for="198.51.100.1") == "10.0.0.5"


@pytest.mark.parametrize("proxy", ["10.0.0.1", "10.255.255.254", "192.168.1.1"])
def test_ipv4_cidr_and_single_address_proxies_are_trusted(identity, proxy):
    assert identity.client_id(proxy, x_forwarded_for="198.51.100.1") == "198.51.100.1"


@pytest.mark.parametrize("proxy", ["11.0.0.1", "192.168.1.2"])
def test_addresses_outside_trusted_networks_are_not_proxies(identity, proxy):
    assert identity.client_id(proxy, x_forwarded_for="198.51.100.1") == proxy


@pytest.mark.parametrize("proxy", ["2001:db8:ffff::1", "2001:DB8:FFFF:0:0:0:0:abcd", "fd00::1"])
def test_ipv6_cidr_and_single_address_proxies_are_trusted(identity, proxy):
    assert identity.client_id(proxy, x_forwarded_for="198.51.100.1") == "198.51.100.1"


def test_ipv6_source_outside_trusted_networks_is_normalised(identity):
    assert identity.client_id("2001:DB8:0000::0001", x_forwarded_for="198.51.100.1") == "2001:db8::1"


def test_ipv4_mapped_source_is_reported_and_matched_as_ipv4(identity):
    assert identity.client_id("::ffff:203.0.113.9") == "203.0.113.9"
    assert identity.client_id("::ffff:10.0.0.1", x_forwarded_for="198.51.100.1") == "198.51.100.1"


def test_invalid_source_is_returned_unchanged(identity):
    assert identity.client_id("not-an-ip", x_forwarded_for="198.51.100.1") == "not-an-ip"


def test_forwarded_spec_example_uses_left_most_hop(identity):
    forwarded = 'for=192.0.2.60;proto=http;by=203.0.113.43, for="[2001:db8::1]:4711"'
    assert identity.client_id("10.0.0.1", forwarded=forwarded) == "192.0.2.60"


@pytest.mark.parametrize(
    ("forwarded", "client"),
    [
        ('for="[2001:DB8:cafe::17]:4711"', "2001:db8:cafe::17"),
        ('for="[2001:db8:cafe::17]"', "2001:db8:cafe::17"),
        ('For="192.0.2.43:47011"', "192.0.2.43"),
        ('for="192.0.2.43:_obfport"', "192.0.2.43"),
        ("proto=https;for=192.0.2.43", "192.0.2.43"),
        ("  for = 192.0.2.43 ; proto=https", "192.0.2.43"),
        ('for="\\1\\9\\2.0.2.43"', "192.0.2.43"),
        ('for="[::ffff:192.0.2.43]:80"', "192.0.2.43"),
    ],
)
def test_forwarded_quoted_bracketed_and_ported_values_are_parsed(identity, forwarded, client):
    assert identity.client_id("10.0.0.1", forwarded=forwarded) == client


def test_forwarded_is_preferred_over_x_forwarded_for(identity):
    client = identity.client_id("10.0.0.1", x_forwarded_for="198.51.100.1", forwarded="for=192.0.2.60")
    assert client == "192.0.2.60"


@pytest.mark.parametrize(
    "forwarded",
    [
        "for=_hidden",
        'for="_gazonk"',
        "for=unknown",
        "for=",
        "proto=https, for=192.0.2.60",
        "for=192.0.2.60 garbage",
        'for="[2001:db8::1',
        'for="[2001:db8::1]x"',
        "for=192.0.2.60:port",
        "for=999.0.2.60",
        "=192.0.2.60",
        ";;;",
    ],
)
def test_obfuscated_or_malformed_forwarded_falls_back_to_x_forwarded_for(identity, forwarded):
    client = identity.client_id("10.0.0.1", x_forwarded_for="198.51.100.1", forwarded=forwarded)
    assert client == "198.51.100.1"


def test_obfuscated_forwarded_without_x_forwarded_for_falls_back_to_source(identity):
    assert identity.client_id("10.0.0.1", forwarded="for=unknown") == "10.0.0.1"


def test_forwarded_first_hop_obfuscated_does_not_use_a_later_hop(identity):
    assert identity.client_id("10.0.0.1", forwarded="for=_hidden, for=192.0.2.60") == "10.0.0.1"


@pytest.mark.parametrize(
    ("x_forwarded_for", "client"),
    [
        ("198.51.100.1", "198.51.100.1"),
        ("198.51.100.1, 10.0.0.2, 10.0.0.3", "198.51.100.1"),
        ("  198.51.100.1  ,10.0.0.2", "198.51.100.1"),
        ("198.51.100.1:5678, 10.0.0.2", "198.51.100.1"),
        ("[2001:db8::7]:443, 10.0.0.2", "2001:db8::7"),
        ("[2001:db8::7]", "2001:db8::7"),
        ("2001:0DB8:0:0::7", "2001:db8::7"),
        ('"198.51.100.1"', "198.51.100.1"),
    ],
)
def test_x_forwarded_for_left_most_entry_is_the_client(identity, x_forwarded_for, client):
    assert identity.client_id("10.0.0.1", x_forwarded_for=x_forwarded_for) == client


@pytest.mark.parametrize(
    "x_forwarded_for",
    [
        "unknown",
        ", 198.51.100.1",
        "198.51.100",
        "198.51.100.1:",
        "198.51.100.1:99999999",
        "[2001:db8::7",
        "a, b",
    ],
)
def test_malformed_x_forwarded_for_falls_back_to_source(identity, x_forwarded_for):
    assert identity.client_id("10.0.0.1", x_forwarded_for=x_forwarded_for) == "10.0.0.1"


def test_trusted_source_without_headers_is_the_client(identity):
    assert identity.client_id("10.0.0.1") == "10.0.0.1"


@pytest.mark.parametrize("entry", ["10.0.0.0/33", "not-a-network", "2001:db8::/129", ""])
def test_invalid_trusted_proxy_is_rejected_with_its_value(entry):
    with pytest.raises(ValueError, match="trusted_proxies"):
        ClientIdentity(trusted_proxies=[entry])


def test_trusted_proxies_as_one_string_is_rejected():
    with pytest.raises(TypeError, match="sequence"):
        ClientIdentity(trusted_proxies="10.0.0.0/8")


def test_trusted_proxy_network_with_host_bits_is_accepted():
    identity = ClientIdentity(["10.1.2.3/8"])
    assert identity.client_id("10.9.9.9", x_forwarded_for="198.51.100.1") == "198.51.100.1"


def expected_hash(token: bytes, salt: bytes = DEFAULT_SALT) -> str:
    return hashlib.blake2b(token, key=salt, digest_size=8).hexdigest()


@pytest.mark.parametrize(
    ("credential", "token"),
    [
        (b"Bearer xyz", b"xyz"),
        (b"bearer xyz", b"xyz"),
        (b"Basic dXNlcjpwYXNz", b"dXNlcjpwYXNz"),
        (b"Bearer   xyz  ", b"xyz"),
        (b"Token\txyz", b"xyz"),
        (b"xyz", b"xyz"),
        (b"  sk_live_abc123  ", b"sk_live_abc123"),
    ],
)
def test_api_key_hash_strips_the_scheme_and_hashes_the_credential(credential, token):
    assert ClientIdentity().api_key_hash(credential) == expected_hash(token)


def test_digest_auth_is_identified_by_username_not_per_request_nonce():
    identity = ClientIdentity()
    first = b'Digest username="Mufasa", realm="x", nonce="abc", response="6629fae49393a05397450978507c4ef1"'
    second = b'Digest username="Mufasa", realm="x", nonce="def", response="e966c932a9242554e42c8ee200cec7f6"'
    assert identity.api_key_hash(first) == identity.api_key_hash(second) == expected_hash(b"Mufasa")


def test_aws_sigv4_is_identified_by_access_key_id_not_signature():
    credential = (
        b"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, "
        b"SignedHeaders=content-type;host;x-amz-date, "
        b"Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
    )
    assert ClientIdentity().api_key_hash(credential) == expected_hash(b"AKIDEXAMPLE")


@pytest.mark.parametrize("credential", [b"", b"   ", b"\t\r\n"])
def test_api_key_hash_of_empty_credential_is_none(credential):
    assert ClientIdentity().api_key_hash(credential) is None


def test_api_key_hash_is_stable_for_the_same_salt():
    first, second = ClientIdentity(salt=b"s1"), ClientIdentity(salt=b"s1")
    assert first.api_key_hash(b"Bearer xyz") == second.api_key_hash(b"Bearer xyz")
    assert first.api_key_hash(b"Bearer xyz") == expected_hash(b"xyz", b"s1")


def test_api_key_hash_differs_between_salts():
    hashes = {ClientIdentity(salt=salt).api_key_hash(b"Bearer xyz") for salt in [b"", b"s1", b"s2"]}
    assert len(hashes) == 3


def test_api_key_hash_differs_between_credentials():
    identity = ClientIdentity(salt=b"s1")
    assert identity.api_key_hash(b"Bearer key-one") != identity.api_key_hash(b"Bearer key-two")


def test_empty_salt_uses_the_documented_default():
    assert ClientIdentity().api_key_hash(b"xyz") == ClientIdentity(salt=DEFAULT_SALT).api_key_hash(b"xyz")


def test_salt_longer_than_a_blake2b_key_is_accepted_and_distinct():
    long_salts = [b"a" * 65, b"a" * 64 + b"b"]
    hashes = {ClientIdentity(salt=salt).api_key_hash(b"xyz") for salt in long_salts}
    assert len(hashes) == 2


def test_api_key_hash_is_16_hex_digits_and_contains_no_part_of_the_secret():
    secret = "0123456789abcdef"
    digest = ClientIdentity(salt=b"prod-secret").api_key_hash(b"Bearer " + secret.encode())
    assert len(digest) == 16
    assert set(digest) <= set("0123456789abcdef")
    assert [secret[i : i + 4] for i in range(len(secret) - 3) if secret[i : i + 4] in digest] == []
