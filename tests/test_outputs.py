import asyncio
import codecs
import json
import re
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from cxone_audit.batch import audit_rows
from cxone_audit.errors import AuditError
from cxone_audit.inputs import rows_from_frame
from cxone_audit.outputs import (
    ResultStream,
    RunInfo,
    finish_outputs,
    neutralise_formula,
    read_results,
    replacing,
    write_outputs,
)
from cxone_audit.resolver import ZoneFileResolver

from .zones import HEAD, zone

BODY = """
a.example. IN TXT "v=spf1 ip4:52.56.74.209 ip4:18.132.96.228 -all"
b.example. IN TXT "=HYPERLINK(\\"http://evil.example\\",\\"x\\") v=spf1 -all"
c.example. IN TXT "v=spf1 include:c.example -all"
bell.example. IN TXT "v=spf1 ip4:52.56.74.209 \\007 -all"
"""

FRAME = pd.DataFrame({
    "domain": ["a.example", "b.example", "", "c.example", "=1+2",
               "d.example", "A.EXAMPLE"],
    "owner": ["@SUM(1)", "+x", "-y", "ok", "\tz", "plain", "dup"],
})


def audit(frame: pd.DataFrame, **options):
    rows = rows_from_frame(frame, "UK1")
    return rows, asyncio.run(audit_rows(rows, zone(BODY), progress=False,
                                        **options))


@pytest.mark.parametrize(("value", "safe"), [
    ("=1+2", "'=1+2"), ("+1", "'+1"), ("-1", "'-1"), ("@x", "'@x"),
    ("\tx", "'\tx"), ("ok", "ok"), (3, 3), ("", ""),
])
def test_neutralise_formula(value: object, safe: object) -> None:
    assert neutralise_formula(value) == safe


def test_rows_in_equal_rows_out_everywhere(tmp_path: Path) -> None:
    rows, results = audit(FRAME)

    paths = write_outputs(results, RunInfo("zone"), tmp_path)

    document = read_results(tmp_path)
    csv = pd.read_csv(paths["csv"], dtype=str, keep_default_na=False)
    xlsx = pd.read_excel(paths["xlsx"], dtype=str, keep_default_na=False)
    assert [d["row"] for d in document["domains"]] == list(range(1, 8))
    assert list(csv["row"]) == [str(n) for n in range(1, 8)]
    assert len(xlsx) == 7
    assert document["run"]["rows"] == 7
    statuses = [d["status"] for d in document["domains"]]
    assert statuses == ["authorised", "no-spf", "input-error", "spf-error",
                        "input-error", "no-spf", "input-error"]
    assert "duplicate" in document["domains"][6]["reason"]


def test_no_cell_starts_a_formula(tmp_path: Path) -> None:
    _, results = audit(FRAME)

    paths = write_outputs(results, RunInfo("zone"), tmp_path)

    sheet = openpyxl.load_workbook(paths["xlsx"]).active
    cells = [c for row in sheet.iter_rows() for c in row]
    assert all(c.data_type != "f" for c in cells)
    text = paths["csv"].read_text()
    assert "'@SUM(1)" in text and "'=1+2" in text
    for line in pd.read_csv(paths["csv"], dtype=str).fillna("").values:
        assert not any(str(v).startswith(("=", "+", "-", "@")) for v in line)


def test_workbook_is_ready_to_filter(tmp_path: Path) -> None:
    _, results = audit(FRAME)

    paths = write_outputs(results, RunInfo("zone"), tmp_path)

    sheet = openpyxl.load_workbook(paths["xlsx"]).active
    headings = [c.value for c in next(sheet.iter_rows())]
    assert sheet.freeze_panes == "A2"
    last = openpyxl.utils.get_column_letter(len(headings))
    assert sheet.auto_filter.ref == f"A1:{last}{len(FRAME) + 1}"
    domain = openpyxl.utils.get_column_letter(headings.index("domain") + 1)
    assert sheet.column_dimensions[domain].width > 20


def test_stream_resume_skips_finished_rows(tmp_path: Path) -> None:
    stream = ResultStream(tmp_path, "input-1")
    rows, first = audit(FRAME.iloc[:3], on_result=stream.append)
    with stream.path.open("a") as handle:
        handle.write('{"row": 5, "cut sh')  # a crash mid-line

    again = ResultStream(tmp_path, "input-1", resume=True)
    all_rows = rows_from_frame(FRAME, "UK1")
    resolver = zone(BODY)
    asyncio.run(audit_rows(all_rows, resolver, progress=False,
                           on_result=again.append, skip=set(again.done)))
    paths = finish_outputs(again, RunInfo("zone"))

    asked = {name for name, _ in resolver.stats.distinct}
    assert "a.example" not in asked and "b.example" not in asked
    assert "c.example" in asked
    document = json.loads(paths["json"].read_text())
    assert [d["row"] for d in document["domains"]] == list(range(1, 8))
    csv = pd.read_csv(paths["csv"], dtype=str, keep_default_na=False)
    assert list(csv.columns[-2:]) == ["proposed_record", "owner"]
    assert list(csv["owner"]) == ["'@SUM(1)", "'+x", "'-y", "ok", "'\tz",
                                  "plain", "dup"]


def test_control_characters_from_dns_do_not_break_the_files(
    tmp_path: Path,
) -> None:
    _, results = audit(pd.DataFrame({"domain": ["bell.example"]}))

    paths = write_outputs(results, RunInfo("zone"), tmp_path)

    record = "v=spf1 ip4:52.56.74.209 \\x07 -all"
    sheet = openpyxl.load_workbook(paths["xlsx"]).active
    headings = [c.value for c in next(sheet.iter_rows())]
    cells = [c.value for c in list(sheet.iter_rows())[1]]
    assert cells[headings.index("spf_record")] == record
    csv = pd.read_csv(paths["csv"], dtype=str, keep_default_na=False)
    assert list(csv["spf_record"]) == [record]
    assert read_results(tmp_path)["domains"][0]["spf"]["record"] == (
        "v=spf1 ip4:52.56.74.209 \x07 -all")


def test_resume_refuses_another_input(tmp_path: Path) -> None:
    ResultStream(tmp_path, "input-1")

    with pytest.raises(AuditError, match="another input"):
        ResultStream(tmp_path, "input-2", resume=True)


def test_results_keep_input_order_with_concurrency() -> None:
    frame = pd.DataFrame({"domain": [f"n{i}.example" for i in range(40)]})

    _, results = audit(frame, concurrency=7)

    assert [r.row for r in results] == list(range(1, 41))


class _Stubborn(ZoneFileResolver):
    """Slow answers that, like a DNS reply landing as Ctrl-C arrives, finish
    the question even when the audit is cancelled (asyncio.wait_for on
    Python 3.11 can swallow a cancellation that way)."""

    def __init__(self, text: str) -> None:
        super().__init__([])
        self._set_zones(ZoneFileResolver.from_text(text)._zones)
        self.domains: set[str] = set()

    async def _ask(self, name: str, rtype: str):
        self.domains.update(re.findall(r"\bn\d+(?=\.example)", name))
        try:
            await asyncio.sleep(0.01)
        except asyncio.CancelledError:
            pass
        return await super()._ask(name, rtype)


def test_cancel_takes_no_new_row() -> None:
    frame = pd.DataFrame({"domain": [f"n{i}.example" for i in range(200)]})
    rows = rows_from_frame(frame, "UK1")
    resolver = _Stubborn(HEAD + BODY)
    finished: list[int] = []

    async def main() -> None:
        task = asyncio.create_task(audit_rows(
            rows, resolver, progress=False, concurrency=4,
            on_result=lambda r: finished.append(r.row)))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())

    started = resolver.domains
    assert 4 <= len(started) < 40
    assert len(finished) <= len(started)


def test_an_interrupted_write_leaves_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    path.write_text("the earlier run", encoding="utf-8")

    with pytest.raises(KeyboardInterrupt), replacing(path) as temporary:
        temporary.write_text("half of the new", encoding="utf-8")
        raise KeyboardInterrupt

    assert path.read_text(encoding="utf-8") == "the earlier run"
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]


def test_summary_csv_starts_with_a_byte_order_mark(tmp_path: Path) -> None:
    # Excel takes a CSV file without one for the local 8-bit code page.
    _, results = audit(FRAME)

    paths = write_outputs(results, RunInfo("zone"), tmp_path)

    assert paths["csv"].read_bytes().startswith(codecs.BOM_UTF8)
    text = paths["csv"].read_text(encoding="utf-8-sig")
    assert text.startswith("row,input,domain,")


def test_every_domain_object_has_the_same_keys(tmp_path: Path) -> None:
    _, results = audit(FRAME)

    paths = write_outputs(results, RunInfo("zone"), tmp_path)

    domains = json.loads(paths["json"].read_text())["domains"]
    assert {d["status"] for d in domains} >= {"input-error", "authorised"}
    keys = {frozenset(d) for d in domains}
    assert len(keys) == 1
    skipped = [d for d in domains if d["status"] == "input-error"]
    assert all(d["findings"] == [] and d["proposal"] is None
               for d in skipped)


def test_rows_never_audited_count_no_lookups(tmp_path: Path) -> None:
    _, results = audit(FRAME)

    paths = write_outputs(results, RunInfo("zone"), tmp_path)

    summary = pd.read_csv(paths["csv"], dtype=str, keep_default_na=False)
    skipped = summary[summary["status"] == "input-error"]
    audited = summary[summary["status"] != "input-error"]
    assert len(skipped) and len(audited)
    assert set(skipped["dns_lookups"]) == set(skipped["void_lookups"]) == {""}
    assert all(v.isdigit() for v in audited["dns_lookups"])
