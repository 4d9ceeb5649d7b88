"""Recipient addresses: what the outbox accepts, and the form each is delivered in.

Internationalized addresses (RFC 6531) are accepted. A non-ASCII domain is delivered in
its ASCII form (IDNA, `xn--`), which every relay understands; a non-ASCII local part
(`jürgen@…`) cannot be written in ASCII, so such a message goes out with SMTPUTF8 and
fails for good, with a reason that says so, where the provider lacks it.

Error messages never repeat the address: they may end up in logs and tracebacks.
"""

from __future__ import annotations

from email.errors import HeaderParseError
from email.headerregistry import Address

import idna

from townsquare.email.models import ADDRESS_MAX

# An addr-spec with anything more than one address in it, or a header break.
_FORBIDDEN = frozenset("\r\n,;<>")


class InvalidEmailAddress(ValueError):
    """The recipient is not a single plain address (`user@example.org`)."""


def _ascii_probe(text: str) -> str:
    # RFC 6531 allows a non-ASCII character wherever RFC 5322 allows an atext one, so
    # replacing each by `x` keeps a valid address valid and an invalid one invalid.
    return "".join(c if c.isascii() else "x" for c in text)


def _ascii_domain(domain: str) -> str:
    if domain.isascii():
        return domain
    try:
        return idna.encode(domain, uts46=True).decode("ascii")
    except idna.IDNAError:
        raise InvalidEmailAddress("the domain is not a valid internationalized name") from None


def normalize_address(value: str) -> str:
    """A single addr-spec, trimmed; refuses display names, lists and header injection."""
    address = value.strip()
    if not address or len(address) > ADDRESS_MAX or any(c in _FORBIDDEN for c in address):
        raise InvalidEmailAddress("not a plain email address")
    if any(ord(c) < 32 or ord(c) == 127 or c.isspace() for c in address):
        raise InvalidEmailAddress("not a plain email address")
    try:
        parsed = Address(addr_spec=_ascii_probe(address))
    except (ValueError, IndexError, HeaderParseError):
        # `from None`: the parser's message quotes the address.
        raise InvalidEmailAddress("not a plain email address") from None
    if not parsed.username or not parsed.domain:
        raise InvalidEmailAddress("not a plain email address")
    _ascii_domain(address.rpartition("@")[2])
    return address


def delivery_address(address: str) -> str:
    """`address` as it goes on the wire: the domain in ASCII (IDNA), the local part as is."""
    if address.isascii():
        return address
    local, _, domain = address.rpartition("@")
    return f"{local}@{_ascii_domain(domain)}"


def needs_smtputf8(address: str) -> bool:
    """Whether delivering to `address` takes SMTPUTF8 (a non-ASCII local part)."""
    return not delivery_address(address).isascii()
