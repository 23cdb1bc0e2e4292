"""MX hosts, null MX (RFC 7505) and the mail service behind them."""

from __future__ import annotations

import json

import pytest

from cxone_audit.mx import SERVICES, lookup_mx, parse_mx, recognise_service
from cxone_audit.resolver import LiveResolver, ZoneFileResolver

from .contextdns import CONTEXT_ZONE, FailingResolver, run, silent_server
from .zones import zone


@pytest.fixture(scope="module")
def context() -> ZoneFileResolver:
    return ZoneFileResolver(CONTEXT_ZONE)


# ---------------------------------------------------------------------------
# Recognising services from host names


@pytest.mark.parametrize(
    ("host", "key"),
    [
        ("contoso-com.mail.protection.outlook.com", "microsoft365"),
        ("contoso-com.r-v1.mx.microsoft.", "microsoft365"),
        ("contoso.mail.protection.office365.us", "microsoft365"),
        ("ASPMX.L.GOOGLE.COM", "google"),
        ("smtp.google.com", "google"),
        ("aspmx2.googlemail.com", "google"),
        ("eu-smtp-inbound-1.mimecast.com", "mimecast"),
        ("za-smtp-inbound-1.mimecast.co.za", "mimecast"),
        ("mx0a-001b2d01.pphosted.com", "proofpoint"),
        ("mx1-us1.ppe-hosted.com", "proofpoint"),
        ("d123456a.ess.barracudanetworks.com", "barracuda"),
        ("mx1.hc1234-56.iphmx.com", "cisco"),
        ("in.tmes.trendmicro.eu", "trendmicro"),
        ("mx-01-eu-west-1.prod.hydra.sophos.com", "sophos"),
        ("route1.mx.cloudflare.net", "cloudflare"),
        ("mx.zoho.eu", "zoho"),
        ("inbound-smtp.eu-west-1.amazonaws.com", "amazon"),
        ("feedback-smtp.us-east-1.amazonses.com", "amazon-ses-mail-from"),
    ],
)
def test_known_services(host: str, key: str) -> None:
    service = recognise_service(host)

    assert service is not None and service.key == key


@pytest.mark.parametrize(
    "host",
    [
        "mail.example.test",
        "notgoogle.com",                                   # not a label
        "mail.protection.outlook.com.attacker.test",       # suffix only
        "ec2-192-0-2-1.eu-west-1.compute.amazonaws.com",   # not SES inbound
        "mimecast.com.example.test",
    ],
)
def test_unknown_hosts(host: str) -> None:
    assert recognise_service(host) is None


def test_every_service_has_a_hint() -> None:
    keys = [s.key for s in SERVICES]
    assert len(keys) == len(set(keys))
    for service in SERVICES:
        assert service.allowlist_hint.endswith(".")
        assert 40 < len(service.allowlist_hint) < 400


def test_parse_mx_sorts_by_preference_then_name() -> None:
    assert parse_mx(["20 b.test", "10 Z.test.", "10 a.test", "0 ."]) == [
        (0, "."), (10, "a.test"), (10, "z.test"), (20, "b.test"),
    ]


# ---------------------------------------------------------------------------
# Lookups


def test_microsoft_365(context: ZoneFileResolver) -> None:
    result = run(lookup_mx("contoso.test", context))

    assert result.status == "found"
    assert result.hosts == ((10, "contoso-test.mail.protection.outlook.com"),)
    assert result.service_key == "microsoft365"
    assert "connection filter policy" in result.allowlist_hint
    assert result.problems == ()


def test_hosts_sorted_and_several_services(context: ZoneFileResolver) -> None:
    result = run(lookup_mx("fabrikam.test", context))

    assert [p for p, _ in result.hosts] == [10, 20, 30]
    assert result.hosts[0][1] == "eu-smtp-inbound-1.mimecast.com"
    # The most preferred host decides; the backup is reported.
    assert result.service_key == "mimecast"
    assert "Permitted Senders" in result.allowlist_hint
    assert result.services == ("Mimecast", "Google Workspace (Gmail)")
    assert any("several services" in p for p in result.problems)


def test_unknown_service_names_the_host(context: ZoneFileResolver) -> None:
    result = run(lookup_mx("tailspin.test", context))

    assert result.service == "unknown"
    assert result.service_key is None
    assert result.hosts == ((5, "mx0.tailspin.test"), (5, "mx1.tailspin.test"))
    assert "mx0.tailspin.test" in result.allowlist_hint


def test_ses_mail_from_domain(context: ZoneFileResolver) -> None:
    result = run(lookup_mx("bounce.contoso.test", context))

    assert result.service_key == "amazon-ses-mail-from"
    assert "nothing to allowlist" in result.allowlist_hint


def test_forgotten_final_dot(context: ZoneFileResolver) -> None:
    result = run(lookup_mx("wingtip.test", context))

    assert result.service == "unknown"
    assert len(result.problems) == 2
    assert "looks like aspmx.l.google.com with wingtip.test appended" in (
        result.problems[0])


def test_own_hosts_are_not_a_forgotten_dot(context: ZoneFileResolver) -> None:
    assert run(lookup_mx("tailspin.test", context)).problems == ()


def test_null_mx(context: ZoneFileResolver) -> None:
    result = run(lookup_mx("noreply.test", context))

    assert result.status == "null-mx"
    assert result.hosts == ((0, "."),)
    assert result.service is None
    assert "RFC 7505" in result.allowlist_hint
    assert result.problems == ()


def test_null_mx_with_other_hosts() -> None:
    resolver = zone("example.test. MX 0 .\nexample.test. MX 10 mx.example.test.\n")

    result = run(lookup_mx("example.test", resolver))

    assert result.status == "null-mx"
    assert any("must be the only MX" in p for p in result.problems)


def test_name_without_mx(context: ZoneFileResolver) -> None:
    result = run(lookup_mx("plain.test", context))

    assert result.status == "none"
    assert result.problems == ("no MX records",)
    assert "RFC 5321" in result.allowlist_hint


def test_domain_that_does_not_exist(context: ZoneFileResolver) -> None:
    result = run(lookup_mx("nowhere.test", context))

    assert result.status == "none"
    assert "NXDOMAIN" in result.problems[0]
    assert "does not exist" in result.allowlist_hint


def test_timeout_is_not_none(context: ZoneFileResolver) -> None:
    resolver = FailingResolver(context, ["contoso.test"])

    result = run(lookup_mx("contoso.test", resolver))

    assert result.status == "dns-error"
    assert result.hosts == ()
    assert "TIMEOUT" in result.problems[0]


def test_real_timeout_through_live_resolver() -> None:
    with silent_server() as server:
        resolver = LiveResolver([server], timeout=0.2, retries=0)
        result = run(lookup_mx("example.test", resolver))

    assert result.status == "dns-error"


def test_result_is_json_ready(context: ZoneFileResolver) -> None:
    data = run(lookup_mx("fabrikam.test", context)).to_dict()

    assert json.loads(json.dumps(data)) == data
    assert data["hosts"][0] == [10, "eu-smtp-inbound-1.mimecast.com"]


# ---------------------------------------------------------------------------
# Real DNS


def test_knot_gives_the_same_results(knot_for, context) -> None:
    host, port = knot_for(CONTEXT_ZONE)
    live = LiveResolver([f"{host}:{port}"], timeout=2.0)
    domains = ["contoso.test", "fabrikam.test", "tailspin.test",
               "noreply.test", "mail.example.co.uk", "plain.test",
               "nowhere.test", "bounce.contoso.test", "wingtip.test"]

    for domain in domains:
        over_dns = run(lookup_mx(domain, live)).to_dict()
        from_file = run(lookup_mx(domain, context)).to_dict()
        assert over_dns == from_file, domain

    sophos = run(lookup_mx("mail.example.co.uk", live))
    assert sophos.service_key == "sophos"
