"""Benchmark ``cxone-audit audit`` against checkdmarc and pyspf.

``python -m benchmarks.run --n 1000 --delay-ms 0 10``

1. Generates N domains and their root zone (:mod:`benchmarks.generate`).
2. Serves the zone with Knot on 127.0.0.1, behind :mod:`benchmarks.proxy`,
   which holds every DNS message D ms each way and counts queries.
3. For each D, runs in child processes, on the same list and zone: the real
   CLI ``cxone-audit audit LIST --nameserver 127.0.0.1:PORT --no-report``,
   then ``cxone_audit.report.render_report`` on its output (timed apart),
   then pyspf and checkdmarc (:mod:`benchmarks.peers`) on a seeded sample.
4. Prints and writes a table (``benchmarks/results/n<N>-d<D>.md`` and
   ``.json``): wall time, domains per second, DNS queries sent, distinct
   (name, type) pairs, queries per domain, CPU, peak memory.

Each child's CPU time and peak resident memory come from ``wait4`` on that
child alone. Every child has a time limit, so a run always ends.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import platform
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .generate import Generated, describe, generate
from .knot import KnotServer, find_knotd, knot_server
from .proxy import DelayProxy, ProxyStats

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"

REPORT_SNIPPET = """\
import json, sys, time
started = time.perf_counter()
from cxone_audit.report import render_report
imported = time.perf_counter()
render_report(sys.argv[1])
done = time.perf_counter()
print(json.dumps({"import": imported - started, "render": done - imported}))
"""


# ---------------------------------------------------------------- children


@dataclass
class Child:
    """How one child process ran."""

    command: list[str]
    wall: float = 0.0
    cpu: float = 0.0
    max_rss_mb: float = 0.0
    returncode: int | None = None
    timed_out: bool = False
    stdout: str = ""
    stderr: str = ""

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out


def run_child(command: list[str], workdir: Path, name: str,
              timeout: float, watch: Any = None) -> Child:
    """Run ``command``; measure wall, CPU and peak RSS of that child only.

    ``watch(pid)``, if given, is called every 0.1 s while the child runs
    (to interrupt it on purpose).
    """
    out, err = workdir / f"{name}.out", workdir / f"{name}.err"
    child = Child(command)
    with out.open("wb") as stdout, err.open("wb") as stderr:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=stdout, stderr=stderr,
                                   cwd=workdir, env=_child_env(),
                                   preexec_fn=_default_sigint)
        status: dict[str, Any] = {}

        def reap() -> None:
            _, code, usage = os.wait4(process.pid, 0)
            status["wall"] = time.perf_counter() - started
            status["code"], status["usage"] = code, usage

        reaper = threading.Thread(target=reap, daemon=True)
        reaper.start()
        deadline = time.monotonic() + timeout
        peak_kb = 0
        while reaper.is_alive() and time.monotonic() < deadline:
            reaper.join(0.1)
            peak_kb = max(peak_kb, _high_water_kb(process.pid))
            if watch is not None and reaper.is_alive():
                watch(process.pid)
        if reaper.is_alive():
            child.timed_out = True
            os.kill(process.pid, signal.SIGKILL)
            reaper.join(30)

    usage = status["usage"]
    child.wall = status["wall"]
    child.cpu = usage.ru_utime + usage.ru_stime
    child.max_rss_mb = (peak_kb or usage.ru_maxrss) / 1024  # kilobytes
    child.returncode = os.waitstatus_to_exitcode(status["code"])
    process.returncode = child.returncode
    child.stdout = out.read_text(errors="replace")
    child.stderr = err.read_text(errors="replace")
    return child


def _high_water_kb(pid: int) -> int:
    """The peak resident size of ``pid`` so far (``VmHWM``), 0 if gone.

    Not ``ru_maxrss`` from ``wait4``: Linux carries the parent's resident
    size at fork into the child's ``ru_maxrss`` across ``exec``, so every
    tool would seem at least as large as this benchmark process. ``VmHWM``
    belongs to the program the child runs. Read every 0.1 s, it can miss a
    peak in the child's last tenth of a second.
    """
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def _default_sigint() -> None:
    """Give the child the default SIGINT action, whatever the parent had.

    A shell starts a background job with SIGINT ignored, the child inherits
    that, and Python then never raises KeyboardInterrupt: the resume check
    would interrupt nothing.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _child_env() -> dict[str, str]:
    """The environment, with this checkout importable as ``benchmarks``."""
    env = dict(os.environ)
    paths = [str(HERE.parent), env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    return env


def kit_command() -> list[str]:
    """The installed ``cxone-audit`` script, else ``python -m``."""
    script = Path(sys.executable).parent / "cxone-audit"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "cxone_audit.cli"]


# ------------------------------------------------------------------ results


@dataclass
class Row:
    """One line of the table."""

    tool: str
    domains: int
    wall: float
    queries: int
    pairs: int
    cpu: float
    max_rss_mb: float
    extrapolated_wall: float | None = None
    report_seconds: float | None = None
    note: str = ""
    proxy: dict[str, Any] = field(default_factory=dict)

    @property
    def per_second(self) -> float:
        return self.domains / self.wall if self.wall else 0.0


def read_stream(path: Path) -> dict[str, dict[str, Any]]:
    """The kit's ``results.jsonl``: per domain, what the checks compare."""
    found: dict[str, dict[str, Any]] = {}
    with path.open("rb") as handle:
        handle.readline()  # the header
        for line in handle:
            try:
                data = json.loads(line)
            except ValueError:
                continue
            canonical = json.dumps(data, sort_keys=True).encode()
            found[data["domain"]] = {
                "status": data["status"],
                "ips": [(v["ip"], v["result"]) for v in data["ips"]],
                "digest": hashlib.sha256(canonical).hexdigest(),
                "evidence": {(e["name"], e["type"])
                             for e in data.get("evidence", [])},
            }
    return found


def count_lines(path: Path, state: dict[str, int]) -> int:
    """Lines in a growing file, reading only what was added."""
    if not path.exists():
        return 0
    with path.open("rb") as handle:
        handle.seek(state.get("offset", 0))
        chunk = handle.read()
    state["offset"] = state.get("offset", 0) + len(chunk)
    state["lines"] = state.get("lines", 0) + chunk.count(b"\n")
    return state["lines"]


# --------------------------------------------------------------- the bench


@dataclass
class Bench:
    """One benchmark session: the generated data, Knot and the options."""

    generated: Generated
    knot: KnotServer
    workdir: Path
    args: argparse.Namespace
    regions: dict[str, list[str]] = field(default_factory=dict)
    side: dict[str, dict[str, float]] = field(default_factory=dict)

    def child(self, command: list[str], name: str,
              watch: Any = None) -> Child:
        ran = run_child(command, self.workdir, name, self.args.child_timeout,
                        watch)
        interrupted = watch is not None and ran.returncode == 130
        if not ran.ok and not interrupted:
            print(f"  ! {name}: exit {ran.returncode}"
                  f"{' (timed out)' if ran.timed_out else ''}; "
                  f"stderr tail:\n{ran.stderr[-2000:]}", file=sys.stderr)
        return ran

    def measure_rtt(self, proxy: DelayProxy, tag: str) -> float:
        out = self.workdir / f"rtt-{tag}.json"
        ran = self.child([sys.executable, "-m", "benchmarks.peers", "rtt",
                          "-", str(proxy.port), str(out)], f"rtt-{tag}")
        times = json.loads(out.read_text())["results"] if ran.ok else [0.0]
        return statistics.median(times)

    def run_kit(self, proxy: DelayProxy, tag: str,
                out_dir: Path, extra: tuple[str, ...] = (),
                watch: Any = None) -> tuple[Child, ProxyStats]:
        proxy.reset()
        command = kit_command() + [
            "audit", str(self.generated.domains),
            "--nameserver", f"127.0.0.1:{proxy.port}",
            "--out", str(out_dir),
            "--concurrency", str(self.args.concurrency),
            "--no-report", "--no-progress", *extra,
        ]
        load = os.getloadavg()[0]
        knot_cpu, own_cpu = self.knot_cpu(), time.process_time()
        ran = self.child(command, f"kit-{tag}", watch)
        stats = proxy.snapshot()
        self.side[tag] = {
            "load_average_before": load,
            "proxy_cpu_seconds": time.process_time() - own_cpu,
            "knot_cpu_seconds": self.knot_cpu() - knot_cpu,
        }
        return ran, stats

    def knot_cpu(self) -> float:
        """CPU seconds knotd has used (Linux /proc)."""
        process = self.knot.process
        if process is None:
            return 0.0
        fields = Path(f"/proc/{process.pid}/stat").read_text().rsplit(
            ")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks

    def time_report(self, out_dir: Path, tag: str) -> Child | None:
        if importlib.util.find_spec("cxone_audit.report") is None:
            return None
        return self.child([sys.executable, "-c", REPORT_SNIPPET,
                           str(out_dir)], f"report-{tag}")

    def run_peer(self, proxy: DelayProxy, tool: str, sample: list[Any],
                 tag: str) -> tuple[Child, ProxyStats, dict[str, Any]]:
        tasks = self.workdir / f"tasks-{tag}.json"
        tasks.write_text(json.dumps(sample), encoding="utf-8")
        out = self.workdir / f"{tool}-{tag}.json"
        proxy.reset()
        ran = self.child([sys.executable, "-m", "benchmarks.peers", tool,
                          str(tasks), str(proxy.port), str(out)],
                         f"{tool}-{tag}")
        data = json.loads(out.read_text()) if ran.ok else {}
        return ran, proxy.snapshot(), data

    def sample(self, size: int) -> list[list[Any]]:
        rows = self.generated.rows
        chosen = random.Random(self.args.seed).sample(
            range(len(rows)), min(size, len(rows)))
        return [[rows[i].domain, self.regions[rows[i].region]]
                for i in sorted(chosen)]


def bench_delay(bench: Bench, delay: float) -> dict[str, Any]:
    """Every tool at one delay; returns the rows and the checks."""
    n = len(bench.generated.rows)
    tag = f"d{delay:g}"
    report: dict[str, Any] = {"delay_ms": delay, "n": n, "rows": []}

    with DelayProxy(bench.knot.address, delay) as proxy:
        rtt = bench.measure_rtt(proxy, tag)
        report["rtt_ms"] = rtt * 1000
        print(f"\nD = {delay:g} ms: UDP round trip through the proxy "
              f"{rtt * 1000:.2f} ms (median of 50)")

        kit_out = bench.workdir / f"kit-{tag}"
        kit, stats = bench.run_kit(proxy, tag, kit_out)
        kit_row = Row("cxone-audit audit", n, kit.wall, stats.queries,
                      len(stats.pairs), kit.cpu, kit.max_rss_mb,
                      proxy=stats.to_dict(),
                      note=f"concurrency {bench.args.concurrency}")
        report["kit_ok"] = kit.ok
        report["kit_side"] = bench.side.get(tag, {})
        kit_results = read_stream(kit_out / "results.jsonl") if kit.ok \
            else {}
        report["kit_statuses"] = dict(Counter(
            r["status"] for r in kit_results.values()))
        print(f"  kit: {kit.wall:.1f} s, {stats.queries} queries, "
              f"{len(stats.pairs)} distinct pairs; "
              f"statuses {report['kit_statuses']}")

        rendered = bench.time_report(kit_out, tag) if kit.ok else None
        if rendered is not None and rendered.ok:
            times = json.loads(rendered.stdout.strip().splitlines()[-1])
            kit_row.report_seconds = times["render"]
            report["report"] = {**times, "wall": rendered.wall,
                                "cpu": rendered.cpu,
                                "max_rss_mb": rendered.max_rss_mb}
        report["rows"].append(kit_row)
        report["bound_seconds"] = len(stats.pairs) * rtt / \
            bench.args.concurrency

        size = bench.args.peer_sample or (min(n, 2000) if delay == 0
                                          else min(n, 300))
        sample = bench.sample(size)
        report["peer_sample"] = len(sample)
        for tool in bench.args.peers:
            ran, peer_stats, data = bench.run_peer(proxy, tool, sample, tag)
            row = Row(tool, len(sample), ran.wall, peer_stats.queries,
                      len(peer_stats.pairs), ran.cpu, ran.max_rss_mb,
                      proxy=peer_stats.to_dict())
            if ran.ok:
                row.extrapolated_wall = ran.wall * n / len(sample)
                row.note = (f"sample of {len(sample)}; loop CPU "
                            f"{1000 * data['loop_cpu_seconds'] / len(sample):.2f}"
                            " ms/domain")
                report[f"{tool}_loop_cpu_seconds"] = data["loop_cpu_seconds"]
                if tool == "pyspf":
                    report["agreement"] = agreement(kit_results,
                                                    data["results"])
            else:
                row.note = "failed"
            report["rows"].append(row)
            print(f"  {tool}: {ran.wall:.1f} s for {len(sample)} domains, "
                  f"{peer_stats.queries} queries")

        if bench.args.resume_check and kit.ok:
            report["resume"] = resume_check(bench, proxy, tag, kit_results)
    return report


def agreement(kit: dict[str, dict[str, Any]],
              pyspf: list[Any]) -> dict[str, Any]:
    """How many (domain, IP) verdicts the kit and pyspf share."""
    same = total = 0
    differ: list[Any] = []
    for domain, verdicts in pyspf:
        ours = kit.get(domain, {}).get("ips", [])
        for (ip, result), theirs in zip(ours, verdicts, strict=False):
            total += 1
            if result == theirs:
                same += 1
            elif len(differ) < 10:
                differ.append([domain, ip, result, theirs])
    return {"checks": total, "agree": same, "examples": differ}


def resume_check(bench: Bench, proxy: DelayProxy, tag: str,
                 full: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Interrupt a run halfway, resume it, compare with the full run."""
    n = len(bench.generated.rows)
    out = bench.workdir / f"kit-{tag}-resumed"
    stream = out / "results.jsonl"
    state: dict[str, int] = {}
    sent: dict[str, float] = {}

    def interrupt(pid: int) -> None:
        done = count_lines(stream, state) - 1
        if not sent and done >= n // 2:
            os.kill(pid, signal.SIGINT)
            sent.update(rows=done, at=time.perf_counter())

    first, _ = bench.run_kit(proxy, f"{tag}-interrupted", out,
                             watch=interrupt)
    exited = time.perf_counter()
    finished = read_stream(stream)
    second, stats = bench.run_kit(proxy, f"{tag}-resume", out,
                                  extra=("--resume",))
    resumed = read_stream(stream) if second.ok else {}

    # Pairs only finished domains needed: the resumed part must not ask.
    needed_by_rest: set[tuple[str, str]] = set()
    needed_by_done: set[tuple[str, str]] = set()
    for domain, data in full.items():
        target = needed_by_done if domain in finished else needed_by_rest
        target |= data["evidence"]
    only_done = needed_by_done - needed_by_rest
    asked = {(name, _type_text(rtype)) for name, rtype in stats.pairs}
    mismatched = [d for d in full
                  if resumed.get(d, {}).get("digest") != full[d]["digest"]]
    verdicts = [d for d in full
                if (resumed.get(d, {}).get("status"),
                    resumed.get(d, {}).get("ips"))
                != (full[d]["status"], full[d]["ips"])]
    result = {
        "interrupted_exit": first.returncode,
        "sigint_at_rows": sent.get("rows"),
        "seconds_from_sigint_to_exit": exited - sent["at"] if sent else None,
        "interrupted_after_rows": len(finished),
        "resume_exit": second.returncode,
        "resume_wall": second.wall,
        "resume_queries": stats.queries,
        "resume_pairs": len(stats.pairs),
        "rows_after_resume": len(resumed),
        "rows_differing_from_full_run": len(mismatched),
        "rows_with_other_verdicts": len(verdicts),
        "examples_differing": mismatched[:5],
        "pairs_only_finished_domains_need": len(only_done),
        "of_those_asked_by_resumed_run": len(asked & only_done),
        "examples_asked": sorted(asked & only_done)[:5],
    }
    print(f"  resume: SIGINT at {sent.get('rows')} rows; stopped after "
          f"{len(finished)} rows (exit {first.returncode}); resumed "
          f"{second.wall:.1f} s, "
          f"{stats.queries} queries; {len(mismatched)} rows differ from "
          f"the full run; {len(asked & only_done)} of {len(only_done)} "
          "pairs only finished rows need were asked")
    return result


def _type_text(rtype: int) -> str:
    from dns.rdatatype import to_text
    return to_text(rtype)


# ------------------------------------------------------------ presentation


def machine() -> dict[str, Any]:
    """What the benchmark ran on."""
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    memory = ""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal"):
            memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    knotd = find_knotd() or "knotd"
    version = subprocess.run([knotd, "--version"], capture_output=True,
                             text=True, check=False).stdout.strip()
    revision = subprocess.run(
        ["git", "describe", "--always", "--dirty"], capture_output=True,
        text=True, check=False, cwd=HERE.parent).stdout.strip()
    return {
        "kit_revision": revision or "unknown",
        "cpus": os.cpu_count(), "cpu_model": model, "memory": memory,
        "python": platform.python_version(), "platform": platform.platform(),
        "knot": version, "load_average": os.getloadavg(),
    }


def _fmt(value: float | None, digits: int = 1) -> str:
    return "" if value is None else f"{value:,.{digits}f}"


def table(report: dict[str, Any]) -> str:
    """The Markdown table of one delay."""
    n = report["n"]
    lines = [
        f"N = {n:,}, D = {report['delay_ms']:g} ms (UDP round trip "
        f"{report['rtt_ms']:.2f} ms)",
        "",
        "| tool | domains run | wall s | domains/s | wall for N s "
        "| DNS queries | distinct pairs | queries/domain | CPU ms/domain "
        "| peak RSS MB | HTML report s | note |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|",
    ]
    for row in report["rows"]:
        for_n = row.wall if row.extrapolated_wall is None \
            else row.extrapolated_wall
        mark = "" if row.extrapolated_wall is None else "~"
        lines.append(
            f"| {row.tool} | {row.domains:,} | {_fmt(row.wall, 2)} "
            f"| {_fmt(row.per_second)} | {mark}{_fmt(for_n)} "
            f"| {row.queries:,} | {row.pairs:,} "
            f"| {_fmt(row.queries / row.domains, 2)} "
            f"| {_fmt(1000 * row.cpu / row.domains, 2)} "
            f"| {_fmt(row.max_rss_mb, 0)} | {_fmt(row.report_seconds)} "
            f"| {row.note} |")
    return "\n".join(lines)


def targets(report: dict[str, Any]) -> list[str]:
    """The issue's targets that this delay can answer, met or not."""
    kit, *peers = report["rows"]
    lines = []
    bound = report["bound_seconds"]
    lines.append(
        f"- wall / bound: {kit.wall:.2f} s / {bound:.2f} s = "
        f"{kit.wall / bound:.2f} (bound = {kit.pairs:,} pairs x "
        f"{report['rtt_ms']:.2f} ms / {kit.note.split()[-1]}; target <= 2)"
        if bound else "- bound: n/a")
    ratio = kit.queries / kit.pairs if kit.pairs else 0
    tcp = kit.proxy.get("tcp", 0)
    lines.append(
        f"- queries / distinct pairs: {ratio:.4f} (target <= 1.02; "
        f"{kit.proxy.get('truncated', 0)} truncated UDP answers, {tcp} "
        "TCP queries)")
    for peer in peers:
        if peer.per_second:
            lines.append(f"- throughput vs {peer.tool}: "
                         f"{kit.per_second / peer.per_second:,.1f}x "
                         "(target >= 50)")
    pyspf = next((p for p in peers if p.tool == "pyspf"), None)
    loop = report.get("pyspf_loop_cpu_seconds")
    if pyspf is not None and loop:
        lines.append(
            f"- CPU per domain: kit {1000 * kit.cpu / kit.domains:.2f} ms "
            "(whole process: start-up, audit, JSON/CSV/XLSX) vs pyspf "
            f"{1000 * loop / pyspf.domains:.2f} ms (its check loop only)")
    agree = report.get("agreement")
    if agree:
        lines.append(f"- kit and pyspf agree on {agree['agree']} of "
                     f"{agree['checks']} (domain, IP) verdicts")
    lines.append(f"- kit peak RSS {kit.max_rss_mb:.0f} MB; statuses "
                 f"{report.get('kit_statuses')}")
    side = report.get("kit_side")
    if side:
        lines.append(
            f"- while the kit ran: proxy {side['proxy_cpu_seconds']:.1f} s "
            f"CPU, knotd {side['knot_cpu_seconds']:.1f} s CPU; load average "
            f"before {side['load_average_before']:.2f} on "
            f"{os.cpu_count()} CPUs")
    resume = report.get("resume")
    if resume:
        lines.append(
            f"- resume: SIGINT when {resume['sigint_at_rows']} rows were "
            f"saved; the run stopped after {resume['interrupted_after_rows']}"
            f" rows, {resume['seconds_from_sigint_to_exit']:.1f} s later; "
            f"resumed in {resume['resume_wall']:.1f} s; "
            f"{resume['rows_differing_from_full_run']} rows differ from the "
            f"uninterrupted run; {resume['of_those_asked_by_resumed_run']} "
            f"of {resume['pairs_only_finished_domains_need']} pairs only "
            "finished rows need were asked again")
    return lines


def save(report: dict[str, Any], info: dict[str, Any], text: str,
         results_dir: Path) -> Path:
    results_dir.mkdir(parents=True, exist_ok=True)
    stem = results_dir / f"n{report['n']}-d{report['delay_ms']:g}"
    data = {**report, "machine": info,
            "rows": [asdict(r) | {"per_second": r.per_second}
                     for r in report["rows"]]}
    stem.with_suffix(".json").write_text(json.dumps(data, indent=1,
                                                    default=list))
    stem.with_suffix(".md").write_text(text + "\n", encoding="utf-8")
    return stem.with_suffix(".md")


# -------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run", description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1000,
                        help="domains to generate (default 1000)")
    parser.add_argument("--delay-ms", type=float, nargs="+", default=[0, 10],
                        help="delays D to run, each way (default 0 10)")
    parser.add_argument("--concurrency", type=int, default=32,
                        help="the kit's --concurrency (default 32)")
    parser.add_argument("--peers", nargs="*", default=["pyspf", "checkdmarc"],
                        choices=["pyspf", "checkdmarc"])
    parser.add_argument("--peer-sample", type=int, default=0,
                        help="domains the peers run (default: 300 at D > 0, "
                             "min(N, 2000) at D = 0)")
    parser.add_argument("--resume-check", action="store_true",
                        help="also interrupt a kit run halfway and resume it")
    parser.add_argument("--seed", type=int, default=20261203)
    parser.add_argument("--child-timeout", type=float, default=7200,
                        help="seconds any one tool may run (default 7200)")
    parser.add_argument("--work", type=Path, default=None,
                        help="keep the work files here (default: a "
                             "temporary folder, removed)")
    parser.add_argument("--results", type=Path, default=RESULTS,
                        help="where the tables go (default "
                             "benchmarks/results)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from cxone_audit.regions import REGION_CODES, spf_ips

    work = args.work or Path(tempfile.mkdtemp(prefix="cxone-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    info = machine()
    print(f"machine: {info['cpus']} CPUs ({info['cpu_model']}), "
          f"{info['memory']}, Python {info['python']}, {info['knot']}; "
          f"kit {info['kit_revision']}")
    try:
        started = time.perf_counter()
        generated = generate(args.n, work / "data", args.seed)
        print(f"generated in {time.perf_counter() - started:.1f} s: "
              f"{describe(generated)}")
        with knot_server(generated.zone, work) as knot:
            bench = Bench(generated, knot, work, args, {
                code: list(spf_ips(code)) for code in REGION_CODES})
            for delay in args.delay_ms:
                report = bench_delay(bench, delay)
                text = table(report) + "\n\n" + "\n".join(targets(report))
                print("\n" + text)
                print(f"written to {save(report, info, text, args.results)}")
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
