"""Run the fuzzers for a bounded time; exit 1 (and show the reproducer) on any crash.

    .venv/bin/python fuzz/run.py                       # 60 s: parser 1/4, core 3/4
    .venv/bin/python fuzz/run.py --seconds 3600 --corpus ~/.cache/chat-fuzz
    .venv/bin/python fuzz/run.py --engine hypothesis   # without atheris

Engines: "atheris" (coverage-guided libFuzzer, fuzz/fuzz_parser.py and fuzz/fuzz_core.py)
when it is installed, else "hypothesis": the property tests of tests/fuzz in a loop with
fresh random seeds until the time is up.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FUZZ = ROOT / "fuzz"
TARGETS = {
    # name: (script, max_len, share of the time)
    "parser": (FUZZ / "fuzz_parser.py", 9000, 0.25),
    "core": (FUZZ / "fuzz_core.py", 4096, 0.75),
}


def log(text: str) -> None:
    print(f"fuzz: {text}", flush=True)


def run_atheris(name: str, seconds: int, corpus_root: Path, artifacts: Path) -> bool:
    script, max_len, _share = TARGETS[name]
    corpus = corpus_root / name
    corpus.mkdir(parents=True, exist_ok=True)
    seeds = FUZZ / "seeds" / name
    out = artifacts / f"{name}.log"
    cmd = [
        sys.executable,
        str(script),
        f"-max_total_time={seconds}",
        f"-max_len={max_len}",
        f"-dict={FUZZ / 'irc.dict'}",
        f"-artifact_prefix={artifacts}/{name}-",
        "-timeout=20",  # seconds for one input: a stuck loop is a crash too
        "-rss_limit_mb=2048",
        "-print_final_stats=1",
        str(corpus),
        str(seeds),
    ]
    log(f"{name}: atheris for {seconds}s, corpus {corpus} (+ seeds {seeds.relative_to(ROOT)})")
    with out.open("wb") as fh:
        rc = subprocess.run(cmd, cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT).returncode
    text = out.read_text(errors="replace")
    stats = [line for line in text.splitlines() if line.startswith(("stat::", "Done "))]
    for line in stats:
        log(f"{name}:   {line}")
    crashes = sorted(artifacts.glob(f"{name}-*"))
    if rc == 0 and not crashes:
        log(f"{name}: no crash ({len(list(corpus.iterdir()))} inputs in the corpus)")
        return True
    log(f"{name}: FAILED (exit {rc}):")
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if "Uncaught Python exception" in line), None)
    if start is not None:  # the traceback, up to libFuzzer's own report
        end = next((i for i in range(start, len(lines)) if "ERROR: libFuzzer" in lines[i]), None)
        print("\n".join(lines[start : end or len(lines)][:120]), flush=True)
    else:  # a timeout, out of memory...: the fuzzer's last words
        print("\n".join(line for line in lines[-40:] if not line.startswith("0x")), flush=True)
    for crash in crashes:
        data = crash.read_bytes()
        log(f"{name}: reproducer saved at {crash} ({len(data)} bytes): {data[:300]!r}")
        log(f"{name}: rerun it with: .venv/bin/python {script.relative_to(ROOT)} {crash}")
        if name == "core":
            explained = subprocess.run(
                [sys.executable, str(script), "--explain", str(crash)],
                cwd=ROOT,
                capture_output=True,
                text=True,
            )
            log("core: the steps of that input:")
            print(explained.stdout[-6000:], flush=True)
    return False


def run_hypothesis(seconds: float) -> bool:
    """The stateful and single-step properties again and again with new random seeds."""
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("CHAT_FUZZ_PROFILE", "ci")
    import logging

    importlib.import_module("tests.fuzz.conftest")  # registers the profiles
    from tests.fuzz import test_core_properties as props

    logging.getLogger().addHandler(logging.NullHandler())  # no OPER warnings on stderr
    suite = [
        props.test_core_state_machine,
        props.test_any_line_from_any_member,
        props.test_any_lines_before_registration,
        props.test_chunking_never_changes_what_happens,
        props.test_nick_collisions_keep_one_owner_per_folded_nick,
    ]
    deadline = time.monotonic() + seconds
    rounds = 0
    log(f"hypothesis for {seconds:.0f}s (random, not coverage-guided)")
    try:
        while time.monotonic() < deadline:
            rounds += 1
            for test in suite:  # derandomize=False: new random examples every call
                test()
                if time.monotonic() >= deadline:
                    break
    except Exception:
        log(f"hypothesis: FAILED in round {rounds}; the falsifying example is above")
        raise
    log(f"hypothesis: no failure in {rounds} rounds")
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=int(os.environ.get("FUZZ_SECONDS", 60)))
    parser.add_argument("--target", choices=["all", *TARGETS], default="all")
    parser.add_argument("--engine", choices=["auto", "atheris", "hypothesis"], default="auto")
    parser.add_argument(
        "--corpus",
        type=Path,
        default=os.environ.get("FUZZ_CORPUS_DIR"),
        help="keep the corpus here between runs (default: a temporary directory)",
    )
    args = parser.parse_args()
    engine = args.engine
    if engine == "auto":
        engine = "atheris" if importlib.util.find_spec("atheris") else "hypothesis"
    started = time.monotonic()
    if engine == "hypothesis":
        ok = run_hypothesis(args.seconds)
    else:
        names = list(TARGETS) if args.target == "all" else [args.target]
        shares = sum(TARGETS[n][2] for n in names)
        tmp = Path(tempfile.mkdtemp(prefix="chat-fuzz-"))
        corpus_root = args.corpus.expanduser() if args.corpus else tmp / "corpus"
        artifacts = tmp / "artifacts"
        artifacts.mkdir()
        ok = True
        for name in names:
            # Less a second or two that instrumenting the imports takes.
            seconds = max(1, round(args.seconds * TARGETS[name][2] / shares) - 1)
            ok = run_atheris(name, seconds, corpus_root, artifacts) and ok
        if ok:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            log(f"artifacts kept in {artifacts}")
    log(f"{'passed' if ok else 'FAILED'} in {time.monotonic() - started:.0f}s ({engine})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
