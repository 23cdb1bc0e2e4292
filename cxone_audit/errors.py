"""The exceptions of cxone-audit.

Every exception the kit raises on purpose derives from :class:`AuditError`,
so a caller can catch one class::

    AuditError                 root: something the caller asked for is wrong
     +-- RegionError           a region name or code that is not a CXone region
     +-- InputFileError        an input spreadsheet that cannot be read
     +-- ResolverConfigError   a nameserver, timeout or zone file that is unusable
     +-- ReportError           the HTML report could not be rendered

Audit findings are never exceptions: a missing SPF record, a permerror or a
DNS timeout is data in the result of the domain concerned. These classes are
for problems that stop the caller before any domain is audited.
"""

from __future__ import annotations

__all__ = [
    "AuditError",
    "InputFileError",
    "RegionError",
    "ReportError",
    "ResolverConfigError",
]


class AuditError(Exception):
    """Root of every exception raised by cxone-audit."""


class RegionError(AuditError, ValueError):
    """A region that is not one of CXone's regions.

    Parameters
    ----------
    value
        The text the caller gave.
    valid
        The accepted region codes, listed in the message.
    """

    def __init__(self, value: str, valid: list[str]) -> None:
        self.value = value
        self.valid = valid
        super().__init__(
            f"unknown CXone region {value!r}; valid regions are "
            f"{', '.join(valid)} (codes or names in English or Portuguese)"
        )


class InputFileError(AuditError):
    """An input file that is missing, unreadable or lacks a domain column."""


class ResolverConfigError(AuditError, ValueError):
    """Resolver options that cannot work (bad nameserver, zone file...)."""


class ReportError(AuditError):
    """The HTML report could not be produced."""
