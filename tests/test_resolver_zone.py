"""ZoneFileResolver: answers from a master file, as an authoritative server.

The unit tests read small zones from text. The last test serves the same
zone from Knot and checks that both backends give the same rcode, records
and CNAME chain for every question, so "as an authoritative server would"
is measured against one.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from cxone_audit.errors import AuditError, ResolverConfigError
from cxone_audit.resolver import Answer, LiveResolver, ZoneFileResolver

ROOT_ZONE = """\
$TTL 300
. IN SOA ns.test. hostmaster.test. 1 3600 900 604800 300
. IN NS ns.test.
ns.test. IN A 127.0.0.1
a.b.example. IN TXT "v=spf1 -all"
alias.example. IN CNAME target.example.
target.example. IN TXT "v=spf1 ip4:192.0.2.0/24 -all"
target.example. IN A 192.0.2.1
hop1.example. IN CNAME hop2.example.
hop2.example. IN CNAME target.example.
dangling.example. IN CNAME nowhere.example.
*.wild.example. IN TXT "v=spf1 include:target.example -all"
host.wild.example. IN A 192.0.2.2
split.example. IN TXT "v=spf1 ip4:192.0.2.1 " "ip4:192.0.2.2" " -all"
two.example. IN TXT "first"
two.example. IN TXT "second"
mail.example. IN MX 10 mx.example.
mail.example. IN MX 0 .
"""

QUESTIONS = [
    ("a.b.example", "TXT"),
    ("b.example", "TXT"),
    ("example", "TXT"),
    ("c.example", "TXT"),
    ("x.a.b.example", "TXT"),
    ("alias.example", "TXT"),
    ("alias.example", "A"),
    ("alias.example", "MX"),
    ("alias.example", "CNAME"),
    ("hop1.example", "TXT"),
    ("dangling.example", "TXT"),
    ("anything.wild.example", "TXT"),
    ("deep.er.wild.example", "TXT"),
    ("wild.example", "TXT"),
    ("host.wild.example", "TXT"),
    ("host.wild.example", "A"),
    ("split.example", "TXT"),
    ("two.example", "TXT"),
    ("mail.example", "MX"),
    ("ns.test", "TXT"),
    ("nothing.invalid", "TXT"),
]


def ask(resolver: ZoneFileResolver | LiveResolver, name: str,
        rtype: str = "TXT") -> Answer:
    return asyncio.run(resolver.query(name, rtype))


@pytest.fixture
def zone() -> ZoneFileResolver:
    return ZoneFileResolver.from_text(ROOT_ZONE)


def test_existing_name_answers_its_records(zone) -> None:
    answer = ask(zone, "a.b.example")

    assert answer.rcode == "NOERROR"
    assert answer.records == ("v=spf1 -all",)


def test_empty_non_terminal_is_no_data_not_nxdomain(zone) -> None:
    # RFC 8020: b.example exists (it has a child), so it is not NXDOMAIN.
    middle = ask(zone, "b.example")
    missing = ask(zone, "c.example")

    assert (middle.rcode, middle.records) == ("NOERROR", ())
    assert missing.rcode == "NXDOMAIN"
    assert middle.void and missing.void


def test_name_below_an_existing_name_can_be_nxdomain(zone) -> None:
    assert ask(zone, "x.a.b.example").rcode == "NXDOMAIN"


def test_cname_is_followed_and_recorded(zone) -> None:
    answer = ask(zone, "alias.example")

    assert answer.rcode == "NOERROR"
    assert answer.records == ("v=spf1 ip4:192.0.2.0/24 -all",)
    assert answer.cnames == ("target.example",)
    assert ask(zone, "alias.example", "A").records == ("192.0.2.1",)


def test_cname_chain_of_two_hops(zone) -> None:
    answer = ask(zone, "hop1.example")

    assert answer.cnames == ("hop2.example", "target.example")
    assert answer.records == ("v=spf1 ip4:192.0.2.0/24 -all",)


def test_cname_question_is_not_followed(zone) -> None:
    answer = ask(zone, "alias.example", "CNAME")

    assert answer.records == ("target.example",)


def test_cname_to_a_missing_name_is_nxdomain(zone) -> None:
    # RFC 6604 3: the rcode is that of the last name of the chain.
    answer = ask(zone, "dangling.example")

    assert answer.rcode == "NXDOMAIN"
    assert answer.void


def test_wildcard_answers_names_that_do_not_exist(zone) -> None:
    # RFC 4592 2.2: *.wild.example answers any missing name below it.
    one = ask(zone, "anything.wild.example")
    deeper = ask(zone, "deep.er.wild.example")

    assert one.records == ("v=spf1 include:target.example -all",)
    assert deeper.records == one.records
    assert one.name == "anything.wild.example"


def test_wildcard_does_not_cover_existing_names(zone) -> None:
    # RFC 4592 2.2: an existing name (or the wildcard's parent) is answered
    # from its own node only.
    assert ask(zone, "host.wild.example").records == ()
    assert ask(zone, "host.wild.example", "A").records == ("192.0.2.2",)
    assert ask(zone, "wild.example").records == ()
    assert ask(zone, "wild.example").rcode == "NOERROR"


def test_txt_strings_and_their_concatenation(zone) -> None:
    answer = ask(zone, "split.example")

    assert answer.strings == (("v=spf1 ip4:192.0.2.1 ", "ip4:192.0.2.2",
                               " -all"),)
    assert answer.records == ("v=spf1 ip4:192.0.2.1 ip4:192.0.2.2 -all",)


def test_mx_answers_as_preference_and_exchange(zone) -> None:
    answer = ask(zone, "mail.example", "MX")

    assert sorted(answer.records) == ["0 .", "10 mx.example"]


def test_name_outside_the_zone_is_refused_and_not_cached() -> None:
    zone = ZoneFileResolver.from_text(
        "$ORIGIN example.\n$TTL 300\n"
        "@ IN SOA ns hostmaster 1 3600 900 604800 300\n"
        "@ IN NS ns\nns IN A 192.0.2.53\n"
        "@ IN TXT \"v=spf1 -all\"\n"
    )

    inside = ask(zone, "example")
    outside = ask(zone, "example.org")
    ask(zone, "example.org")

    assert inside.records == ("v=spf1 -all",)
    assert outside.rcode == "REFUSED"
    assert outside.temporary and not outside.void
    # REFUSED is temporary: asked again, not served from the cache.
    assert zone.stats.sent == 3


def test_answers_are_cached(zone) -> None:
    for _ in range(3):
        ask(zone, "a.b.example")
        ask(zone, "c.example")

    assert zone.stats.sent == 2
    assert zone.stats.cache_hits == 4


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ResolverConfigError, match="cannot open zone file"):
        ZoneFileResolver(tmp_path / "absent.zone")


def test_directory_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ResolverConfigError):
        ZoneFileResolver(tmp_path)


def test_path_through_a_file_is_a_config_error(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.write_text("", encoding="utf-8")

    with pytest.raises(ResolverConfigError):
        ZoneFileResolver(plain / "root.zone")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "locked.zone"
    path.write_text(ROOT_ZONE, encoding="utf-8")
    path.chmod(0)

    with pytest.raises(ResolverConfigError):
        ZoneFileResolver(path)


@pytest.mark.parametrize("text", [
    ". IN TXT \"unterminated\n",
    "example. IN A 999.1.2.3\n",
    "example. IN NOSUCHTYPE x\n",
])
def test_broken_file_is_a_config_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "broken.zone"
    path.write_text(text, encoding="utf-8")

    with pytest.raises(ResolverConfigError) as caught:
        ZoneFileResolver(path)
    assert isinstance(caught.value, AuditError)
    assert "broken.zone" in str(caught.value)


def test_non_utf8_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.zone"
    path.write_bytes(b"x.example. IN TXT \"caf\xe9\"\n")

    with pytest.raises(ResolverConfigError):
        ZoneFileResolver(path)


def test_several_files_are_one_namespace(tmp_path: Path) -> None:
    first, second = tmp_path / "one.zone", tmp_path / "two.zone"
    first.write_text("$ORIGIN one.example.\n$TTL 60\n@ IN TXT \"1\"\n")
    second.write_text("$ORIGIN two.example.\n$TTL 60\n@ IN TXT \"2\"\n")
    zone = ZoneFileResolver([first, second])

    assert ask(zone, "one.example").records == ("1",)
    assert ask(zone, "two.example").records == ("2",)
    assert "one.zone" in zone.describe() and "two.zone" in zone.describe()


def _comparable(answer: Answer) -> tuple:
    # RRset order is not significant (RFC 2181 5), and message sizes differ
    # by what a server adds (SOA for negative answers, glue).
    return answer.rcode, sorted(answer.records), sorted(answer.strings)


def _chain(answer: Answer, rtype: str) -> tuple[str, ...]:
    # dnspython drops the chain when it ends in NXDOMAIN, and a CNAME asked
    # for is the answer itself, not a chain: compare the other cases.
    if answer.rcode != "NOERROR" or rtype == "CNAME":
        return ()
    return answer.cnames


@pytest.mark.knot
def test_zone_file_answers_like_knot(knot_for, tmp_path: Path) -> None:
    path = tmp_path / "root.zone"
    path.write_text(ROOT_ZONE, encoding="utf-8")
    host, port = knot_for(path)
    live = LiveResolver([f"{host}:{port}"])
    offline = ZoneFileResolver(path)

    differences = []
    for name, rtype in QUESTIONS:
        served, read = ask(live, name, rtype), ask(offline, name, rtype)
        if _comparable(served) != _comparable(read):
            differences.append((name, rtype, served, read))
        elif _chain(served, rtype) != _chain(read, rtype):
            differences.append((name, rtype, served, read))

    assert differences == [], "\n".join(map(str, differences))
