"""Small zones written inline for unit tests."""

from __future__ import annotations

from cxone_audit.resolver import ZoneFileResolver

HEAD = """$ORIGIN .
$TTL 300
. IN SOA ns.test. hostmaster.test. 1 3600 600 86400 300
. IN NS ns.test.
ns.test. IN A 127.0.0.1
"""


def zone(body: str) -> ZoneFileResolver:
    """A resolver answering from a root zone holding ``body``."""
    return ZoneFileResolver.from_text(HEAD + body)
