"""cxone-audit: audit the e-mail DNS of NICE CXone customers.

For each domain and its CXone region the kit answers: does the domain's SPF
record authorise every CXone sending IP of the region (RFC 7208
``check_host()``), and if not, why not.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("cxone-audit")
except PackageNotFoundError:  # imported from a source tree, not installed
    __version__ = "0.0.0+source"
