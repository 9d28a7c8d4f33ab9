"""Strict address and header parsing: what an agent may put in an email's headers."""

from __future__ import annotations

import pytest

from workflows.mail.addresses import AddressError, check_header_text, matches, parse_address, parse_addresses


@pytest.mark.parametrize(
    ("raw", "name", "address"),
    [
        ("bob@example.com", "", "bob@example.com"),
        ("  bob@Example.COM ", "", "bob@example.com"),
        ("Bob Smith <bob@example.com>", "Bob Smith", "bob@example.com"),
        ('"Bob Smith" <bob@example.com>', "Bob Smith", "bob@example.com"),
        ("Zoë Müller <zoe@example.de>", "Zoë Müller", "zoe@example.de"),
        ("first.last+tag@sub.example.co.uk", "", "first.last+tag@sub.example.co.uk"),
        ("user@bücher.example", "", "user@xn--bcher-kva.example"),
    ],
)
def test_plain_forms_parse(raw: str, name: str, address: str) -> None:
    parsed = parse_address(raw)
    assert (parsed.name, parsed.address) == (name, address)


HOSTILE = [
    "bob@example.com\r\nBcc: eve@evil.com",
    "bob@example.com\nBcc: eve@evil.com",
    "Bob\r\n <bob@example.com>",
    "=?UTF-8?Q?=0A?=Bcc: eve@evil.com <bob@example.com>",
    "=?utf-8?b?Qm9i?= <bob@example.com>",
    "alice@example.org)<bob@example.com>",  # CVE-2023-27043: read as two different addresses
    "alice@example.org, bob@example.com",
    "alice@example.org;bob@example.com",
    '"alice@bank.com" <eve@evil.com>',  # a display name posing as an address
    "alice@bank.com <eve@evil.com>",
    "<bob@example.com",
    "bob@example.com>",
    "bob",
    "@example.com",
    "bob@",
    "bob@localhost",
    "bob@[127.0.0.1]",
    "bob@-example.com",
    "bo b@example.com",
    '"bo b"@example.com',
    "bob@@example.com",
    "bob@example.com\x00",
    "bob@exa\u2028mple.com",
    "a" * 65 + "@example.com",
    "",
]


@pytest.mark.parametrize("raw", HOSTILE)
def test_hostile_or_ambiguous_addresses_are_refused(raw: str) -> None:
    with pytest.raises(AddressError):
        parse_address(raw)


@pytest.mark.parametrize(
    "subject",
    ["Hi\r\nBcc: eve@evil.com", "Hi\nthere", "=?UTF-8?Q?=0A?=Bcc: eve@evil.com", "tab\tin", "x" * 501],
)
def test_header_text_with_line_breaks_or_encoded_words_is_refused(subject: str) -> None:
    with pytest.raises(AddressError):
        check_header_text(subject, "subject", 500)


def test_unicode_subjects_are_fine() -> None:
    assert check_header_text("Réunion: 日本語 ✓", "subject", 500) == "Réunion: 日本語 ✓"


def test_duplicates_collapse_and_errors_name_the_field() -> None:
    parsed = parse_addresses(["a@example.com", "A@EXAMPLE.com", "b@example.com"], "to")
    assert [p.address for p in parsed] == ["a@example.com", "b@example.com"]
    with pytest.raises(AddressError, match=r"^cc: "):
        parse_addresses(["nope"], "cc")


@pytest.mark.parametrize(
    ("address", "entry", "expected"),
    [
        ("bob@example.com", "example.com", True),
        ("bob@evil-example.com", "example.com", False),
        ("bob@example.com.evil.org", "example.com", False),
        ("bob@sub.example.com", "example.com", False),
        ("bob@sub.example.com", "*.example.com", True),
        ("bob@example.com", "*.example.com", False),
        ("bob@example.com", "bob@example.com", True),
        ("Bob@Example.com", "bob@example.com", True),
        ("bobby@example.com", "bob@example.com", False),
        ("bob@example.com", "@example.com", True),
    ],
)
def test_list_entries_match_parsed_addresses_never_substrings(address: str, entry: str, expected: bool) -> None:
    assert matches(address, entry) is expected
