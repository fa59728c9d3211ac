"""A fault-injecting stand-in for rclone (or zfs), for the reliability tests.

Used as the provider's `rclone` binary (the config key `rclone`), or as `zfs`. Every call
is appended to an invocation log, then either delegated to the real binary or, when a
rule matches, given a fault. Faults are deterministic: each rule counts its matching
calls in a counter file under a lock, so "every 3rd upload" means exactly that, even
with parallel uploads.

    wrapper = Wrapper.create(tmp_path, real_rclone, rules=[Rule(verbs=["copyto", "rcat"], every=3)])
    lab.config["rclone"] = str(wrapper.path)

Rule actions:
  fail   exit 1 with an rclone-like ERROR line, doing nothing;
  reset  upload only the first half of the object (copyto) or the first `bytes` bytes of stdin
         (rcat), then exit 1 with "connection reset by peer": a partial object is left behind;
  slow   wait `delay` seconds, then delegate (for rcat, also trickle stdin in small pieces);
  gate   wait until the file `gate` exists (the test creates it), then delegate.

Run as a program: `python faulty_rclone.py ARGS...` with OFFSITE_REAL_BIN and OFFSITE_FAULTS
(the JSON spec) in the environment; the shell wrapper Wrapper.create writes sets both.
"""

from __future__ import annotations

import fcntl
import json
import os
import shlex
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

UPLOAD_VERBS = ["copyto", "rcat"]


@dataclass
class Rule:
    verbs: List[str] = field(default_factory=lambda: list(UPLOAD_VERBS))
    action: str = "fail"
    every: int = 1  # fire on every Nth matching call (after `after` calls)
    after: int = 0  # let this many matching calls through first
    count: Optional[int] = None  # fire at most this many times
    match: str = ""  # only calls with an argument containing this text
    delay: float = 0.0
    gate: str = ""
    bytes: int = 32768


@dataclass
class Wrapper:
    """The generated executable and the files it writes."""

    path: Path
    spec_path: Path
    log_path: Path
    state_dir: Path

    @classmethod
    def create(cls, directory: Path, real: str, rules: Optional[List[Rule]] = None,
               name: str = "rclone") -> "Wrapper":
        directory.mkdir(parents=True, exist_ok=True)
        state = directory / ("%s-faults" % name)
        state.mkdir(exist_ok=True)
        spec_path = directory / ("%s-faults.json" % name)
        log_path = directory / ("%s-calls.log" % name)
        wrapper = cls(directory / ("%s-wrapper" % name), spec_path, log_path, state)
        wrapper.set_rules(rules or [])
        log_path.touch()
        script = "#!/bin/sh\nOFFSITE_REAL_BIN=%s OFFSITE_FAULTS=%s exec %s %s \"$@\"\n" % (
            shlex.quote(real), shlex.quote(str(spec_path)), shlex.quote(sys.executable),
            shlex.quote(str(Path(__file__).resolve())))
        wrapper.path.write_text(script)
        wrapper.path.chmod(0o755)
        return wrapper

    def set_rules(self, rules: List[Rule]) -> None:
        """Replace the rules (counters start again from zero)."""
        for counter in self.state_dir.glob("rule-*"):
            counter.unlink()
        spec = {"rules": [asdict(r) for r in rules], "state": str(self.state_dir), "log": str(self.log_path)}
        tmp = self.spec_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(spec))
        os.replace(tmp, self.spec_path)

    def calls(self) -> List[Dict[str, Any]]:
        lines = self.log_path.read_text().splitlines() if self.log_path.exists() else []
        return [json.loads(line) for line in lines if line.strip()]

    def faults(self) -> List[Dict[str, Any]]:
        return [c for c in self.calls() if c.get("fault")]


# -- the program ---------------------------------------------------------------------------------
def _append(log: str, record: Dict[str, Any]) -> None:
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, (json.dumps(record) + "\n").encode("utf-8"))
    finally:
        os.close(fd)


def _fires(state: str, index: int, rule: Dict[str, Any]) -> bool:
    """Count this call for the rule (under a lock); True when the rule fires on it."""
    path = os.path.join(state, "rule-%d" % index)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        raw = os.pread(fd, 100, 0).decode() or "0 0"
        seen, fired = (int(x) for x in raw.split())
        seen += 1
        fire = seen > rule["after"] and (seen - rule["after"]) % max(1, rule["every"]) == 0
        if rule.get("count") is not None and fired >= rule["count"]:
            fire = False
        fired += 1 if fire else 0
        os.ftruncate(fd, 0)
        os.pwrite(fd, ("%d %d" % (seen, fired)).encode(), 0)
        return fire
    finally:
        os.close(fd)


def _verb(args: List[str]) -> str:
    return next((a for a in args if not a.startswith("-")), "")


def _fail(message: str) -> None:
    sys.stderr.write("%s ERROR : %s (offsite fault injection)\n" % (time.strftime("%Y/%m/%d %H:%M:%S"), message))
    sys.exit(1)


def _reset(real: str, args: List[str], verb: str, rule: Dict[str, Any]) -> None:
    dest = args[-1]
    if verb == "copyto":
        with open(args[-2], "rb") as handle:
            data = handle.read()
        partial = data[: len(data) // 2]
    else:
        partial = b""
        stdin = sys.stdin.buffer
        while len(partial) < rule["bytes"]:
            block = stdin.read1(rule["bytes"] - len(partial)) if hasattr(stdin, "read1") else stdin.read(4096)
            if not block:
                break
            partial += block
    subprocess.run([real, "rcat", dest], input=partial, check=False, stdout=subprocess.DEVNULL)
    _fail("Failed to copy: %s: read tcp 127.0.0.1:443: connection reset by peer" % dest)


def _trickle(real: str, args: List[str], delay: float) -> None:
    """Pass stdin to the real rclone in small pieces with pauses: a slow link."""
    child = subprocess.Popen([real] + args, stdin=subprocess.PIPE)
    stdin = sys.stdin.buffer
    pieces = 0
    while True:
        block = stdin.read1(16384)
        if not block:
            break
        child.stdin.write(block)
        pieces += 1
        if pieces % 4 == 0:
            time.sleep(delay / 4)
    child.stdin.close()
    sys.exit(child.wait())


def main(args: List[str]) -> None:
    real = os.environ["OFFSITE_REAL_BIN"]
    with open(os.environ["OFFSITE_FAULTS"], encoding="utf-8") as handle:
        spec = json.load(handle)
    verb = _verb(args)
    action = None
    chosen: Dict[str, Any] = {}
    for index, rule in enumerate(spec["rules"]):
        if verb not in rule["verbs"] or (rule["match"] and not any(rule["match"] in a for a in args)):
            continue
        if _fires(spec["state"], index, rule):
            action, chosen = rule["action"], rule
            break
    _append(spec["log"], {"pid": os.getpid(), "argv": args, "fault": action, "time": time.time()})
    if action == "fail":
        _fail("Failed to %s %s" % (verb, args[-1] if args else ""))
    elif action == "reset":
        _reset(real, args, verb, chosen)
    elif action == "slow":
        time.sleep(chosen["delay"])
        if verb == "rcat":
            _trickle(real, args, chosen["delay"])
    elif action == "gate":
        deadline = time.time() + 600
        while not os.path.exists(chosen["gate"]) and time.time() < deadline:
            time.sleep(0.02)
    os.execv(real, [real] + args)


if __name__ == "__main__":
    main(sys.argv[1:])
