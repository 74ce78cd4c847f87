"""SSRF validation of webhook URLs, with an injected resolver (no network)."""

import pytest

from risk.core.ssrf import (
    UnsafeURLError,
    address_problem,
    validate_redirect,
    validate_webhook_url,
)

PUBLIC = "93.184.215.14"


def fake_dns(table):
    def resolve(host, port):
        if host not in table:
            raise OSError(f"unknown host {host}")
        return table[host]

    return resolve


DNS = fake_dns(
    {
        "hooks.example.com": [PUBLIC, "2606:2800:21f:cb07:6820:80da:af6b:8b2c"],
        "internal.example.com": ["10.0.0.12"],
        "mixed.example.com": [PUBLIC, "192.168.1.10"],
        "localhost": ["127.0.0.1", "::1"],
    }
)


def refused(url: str) -> str:
    with pytest.raises(UnsafeURLError) as err:
        validate_webhook_url(url, resolver=DNS)
    return str(err.value)


def test_a_public_https_url_is_accepted_with_its_addresses_pinned():
    ok = validate_webhook_url("https://hooks.example.com/T000/B000?x=1", resolver=DNS)
    assert (ok.scheme, ok.host, ok.port) == ("https", "hooks.example.com", 443)
    assert ok.addresses == (PUBLIC, "2606:2800:21f:cb07:6820:80da:af6b:8b2c")
    assert validate_webhook_url(f"http://{PUBLIC}:8080/x", resolver=DNS).port == 8080


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://127.0.0.1/", "refused: 127.0.0.1 is a loopback address"),
        ("http://[::1]/", "refused: ::1 is a loopback address"),
        ("https://10.1.2.3/hook", "refused: 10.1.2.3 is a private address"),
        (
            "http://169.254.169.254/latest/meta-data/",
            "refused: 169.254.169.254 is a link-local address",
        ),
        (
            "http://[::ffff:127.0.0.1]/",
            "refused: ::ffff:7f00:1 is an IPv4-mapped form of a refused address "
            "(127.0.0.1 is a loopback address)",
        ),
        ("http://0.0.0.0/", "refused: 0.0.0.0 is unspecified"),
        ("http://[::]/", "refused: :: is unspecified"),
        ("http://224.0.0.1/", "refused: 224.0.0.1 is a multicast address"),
        ("http://240.0.0.1/", "refused: 240.0.0.1 is a reserved address"),
        ("http://100.64.0.1/", "refused: 100.64.0.1 is not a public address"),
        ("http://[fd00::1]/", "refused: fd00::1 is a private address"),
        ("http://[fe80::1]/", "refused: fe80::1 is a link-local address"),
        (
            "http://[2002:a00:1::]/",
            "refused: 2002:a00:1:: is a 6to4 form of a refused address "
            "(10.0.0.1 is a private address)",
        ),
        (
            "http://[64:ff9b::a9fe:a9fe]/",
            "refused: 64:ff9b::a9fe:a9fe is a NAT64 form of a refused address "
            "(169.254.169.254 is a link-local address)",
        ),
    ],
)
def test_non_public_addresses_are_refused(url, message):
    assert refused(url) == message


def test_a_hostname_resolving_to_a_private_address_is_refused():
    assert refused("https://internal.example.com/hook") == (
        "refused: internal.example.com resolves to 10.0.0.12 is a private address"
    )
    assert refused("http://localhost:8000/") == (
        "refused: localhost resolves to 127.0.0.1 is a loopback address"
    )


def test_one_private_record_among_public_ones_is_enough_to_refuse():
    assert "192.168.1.10 is a private address" in refused("https://mixed.example.com/")


def test_schemes_credentials_and_unresolvable_hosts_are_refused():
    assert refused("file:///etc/passwd") == "the URL scheme must be https or http, not 'file'"
    assert refused("gopher://hooks.example.com/") == (
        "the URL scheme must be https or http, not 'gopher'"
    )
    assert refused("https://user:pw@hooks.example.com/") == "the URL must not contain credentials"
    assert refused("https:///nohost") == "the URL has no host"
    assert refused("https://nowhere.example.com/").startswith(
        "the host nowhere.example.com could not be resolved"
    )
    with pytest.raises(UnsafeURLError, match="must be https, not 'http'"):
        validate_webhook_url("http://hooks.example.com/", resolver=DNS, allow_http=False)


def test_ipv4_mapped_form_of_a_public_address_is_refused_too():
    assert address_problem("::ffff:93.184.215.14") == (
        "::ffff:5db8:d70e is an IPv4-mapped address, which is refused"
    )
    assert address_problem(PUBLIC) == ""


def test_each_redirect_hop_is_validated():
    start = validate_webhook_url("https://hooks.example.com/a", resolver=DNS)
    nxt = validate_redirect(start, "/b", hops=0, resolver=DNS)
    assert nxt.url == "https://hooks.example.com/b"
    with pytest.raises(UnsafeURLError, match="169.254.169.254 is a link-local address"):
        validate_redirect(nxt, "https://169.254.169.254/", hops=1, resolver=DNS)
    with pytest.raises(UnsafeURLError, match="a redirect from https to http"):
        validate_redirect(nxt, "http://hooks.example.com/c", hops=1, resolver=DNS)
    with pytest.raises(UnsafeURLError, match="too many redirects"):
        validate_redirect(nxt, "/c", hops=5, resolver=DNS)
