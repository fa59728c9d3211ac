"""The process layer (module_utils/_proc.py): kill+wait on every exit path, a bounded stderr, timeouts,
the command log without the environment, and failures turned into typed errors by a classifier.

The children are small Python or coreutils processes: milliseconds each, no zfs, no rclone.
"""

from __future__ import annotations

import ast
import os
import sys
import time
from pathlib import Path
from typing import List

import pytest

from ansible_collections.offsite.zfs.plugins.module_utils import _proc
from ansible_collections.offsite.zfs.plugins.module_utils.errors import OffsiteError, ZfsError
from ansible_collections.offsite.zfs.plugins.module_utils.progress import Progress

ROOT = Path(__file__).resolve().parents[4]
PY = sys.executable
SLEEPER = [PY, "-c", "import time; time.sleep(60)"]


def _gone(pid: int) -> bool:
    """True when pid is no process any more: killed AND reaped (a zombie still answers signal 0)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_an_exception_in_the_block_kills_and_reaps_the_child():
    with pytest.raises(RuntimeError):
        with _proc.Child(SLEEPER) as child:
            pid = child.pid
            raise RuntimeError("the caller failed")
    assert child.returncode == -9 and _gone(pid)


def test_keyboard_interrupt_kills_and_reaps_the_child():
    with pytest.raises(KeyboardInterrupt):
        with _proc.Child(SLEEPER, stdin=_proc.PIPE) as child:
            pid = child.pid
            raise KeyboardInterrupt()
    assert child.returncode == -9 and _gone(pid)
    assert child.stdin.closed and child.stdout.closed


def test_leaving_the_block_without_waiting_kills_a_running_child_and_close_is_idempotent():
    with _proc.Child(SLEEPER) as child:
        pass
    assert child.returncode == -9
    child.close()
    child.kill()  # reaped: nothing to kill, no error


def test_a_chatty_child_never_blocks_and_its_stderr_is_bounded():
    # 8 MiB to stderr before the first byte of stdout: a pipe nobody reads would block it at 64 KiB.
    script = ("import sys; sys.stderr.write('FIRST LINE\\n' + 'x' * (8 << 20) + '\\nLAST LINE\\n'); "
              "sys.stderr.flush(); sys.stdout.write('done'); sys.exit(3)")
    started = time.monotonic()
    result = _proc.run([PY, "-c", script], check=False, timeout=60)
    assert time.monotonic() - started < 30
    assert result.returncode == 3 and result.stdout == b"done"
    assert len(result.stderr) <= _proc.STDERR_LIMIT + 100
    assert result.stderr.startswith(b"FIRST LINE") and result.stderr.rstrip().endswith(b"LAST LINE")
    assert b"bytes of stderr not kept" in result.stderr


def test_a_streaming_child_reads_and_writes_like_popen():
    with _proc.Child(["cat"], stdin=_proc.PIPE) as child:
        child.stdin.write(b"hello ")
        child.stdin.write(b"world")
        child.stdin.close()
        assert child.stdout.read() == b"hello world"
        assert child.wait() == 0 and child.stderr.read() == b""
    assert child.returncode == 0


def test_run_times_out_kills_and_the_classifier_sees_minus_nine():
    seen: List[int] = []

    def classify(returncode: int, stderr: bytes) -> BaseException:
        seen.append(returncode)
        return OffsiteError("took too long (%d)" % returncode, "provider_failed")

    started = time.monotonic()
    with pytest.raises(OffsiteError) as caught:
        _proc.run(SLEEPER, timeout=0.3, classify=classify)
    assert time.monotonic() - started < 10 and seen == [-9] and caught.value.message == "took too long (-9)"
    result = _proc.run(SLEEPER, timeout=0.2, check=False)
    assert result.timed_out and result.returncode == -9


def test_wait_with_a_timeout_raises_like_popen_and_abort_ends_the_child():
    with _proc.Child(SLEEPER, stdin=_proc.PIPE) as child:
        with pytest.raises(_proc.TimeoutExpired):
            child.wait(0.1)
        child.abort(grace=0.2)  # closes stdin, waits a moment, then kills
        assert child.returncode == -9


def test_the_classifier_turns_a_failure_into_its_typed_error():
    def classify(returncode: int, stderr: bytes) -> BaseException:
        return ZfsError("Could not x: %s" % _proc.first_line(stderr), kind="busy", returncode=returncode)

    argv = [PY, "-c", "import sys; sys.stderr.write('\\ncannot rename: dataset is busy\\n'); sys.exit(1)"]
    with pytest.raises(ZfsError) as caught:
        _proc.run(argv, classify=classify)
    assert caught.value.kind == "busy" and caught.value.returncode == 1
    assert caught.value.message == "Could not x: cannot rename: dataset is busy"
    with _proc.Child(argv, classify=classify) as child:
        with pytest.raises(ZfsError):
            child.check()
    assert _proc.run(argv, ok=(0, 1), classify=classify).returncode == 1
    with pytest.raises(OffsiteError) as generic:
        _proc.run(argv)
    assert generic.value.code == "command_failed" and "cannot rename: dataset is busy" in generic.value.message


def test_a_missing_binary_is_the_callers_sentence():
    with pytest.raises(OffsiteError) as caught:
        _proc.run(["/nonexistent/zfs", "list"], missing=lambda: OffsiteError("install zfs", "zfs_missing"))
    assert caught.value.code == "zfs_missing"
    with pytest.raises(FileNotFoundError):
        _proc.Child(["/nonexistent/zfs"])


def test_every_command_is_logged_without_its_environment(tmp_path):
    secret = "s3cr3t-Value-4711"
    lines: List[str] = []
    with _proc.logging_to(lines.append):
        _proc.run([PY, "-c", "import os, sys; sys.stdout.write(os.environ['RCLONE_CONFIG_B2_KEY'])"],
                  env=dict(os.environ, RCLONE_CONFIG_B2_KEY=secret, AWS_SECRET_ACCESS_KEY=secret))
        _proc.run(["true", ":s3,access_key_id=AKIA,secret_access_key=%s:bucket/x" % secret, "it's"])
        _proc.run(["false"], check=False)  # an exit the caller expects: not a failure to log
        with pytest.raises(OffsiteError):
            _proc.run(["false"])
        with _proc.Child(SLEEPER):
            pass
    assert lines[0].startswith("run: ") and PY in lines[0] and "RCLONE_CONFIG_B2_KEY" in lines[0]
    assert lines[1] == "run: true ':s3,access_key_id=***,secret_access_key=***:bucket/x' 'it'\"'\"'s'"
    assert lines[2] == "run: false" and lines[3] == "run: false"
    assert lines[4].startswith("exit 1 after ") and lines[4].endswith(": false")
    assert lines[5].startswith("run: ") and lines[6].startswith("killed after ")
    assert not any(secret in line for line in lines)
    _proc.run(["true"])  # the hook is gone with the block
    assert len(lines) == 7


def test_a_runs_progress_log_gets_its_commands_and_no_secret(tmp_path):
    secret = "p4ssw0rd-in-env"
    progress = Progress(str(tmp_path / "log"), str(tmp_path / "state"), "backup", "tank/data")
    _proc.run(["echo", "zfs-send-stand-in"], env=dict(os.environ, RCLONE_CONFIG_X_PASS=secret))
    progress.close("finished")
    _proc.run(["echo", "after-the-run"])  # logged nowhere: the run is over
    text = Path(progress.log_path).read_text()
    assert "run: echo zfs-send-stand-in" in text and "after-the-run" not in text and secret not in text


# -- the layer's boundary --------------------------------------------------------------------------------
MODULE_UTILS = ROOT / "plugins" / "module_utils"
SUBPROCESS_PENDING: set = set()  # every child runs through _proc now
ZFS_FILES = {"zfs.py", "_zfs_base.py", "_zfs_streams.py", "_zfs_holds.py"}


def _imports(tree: ast.AST) -> set:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module.split(".")[0])
    return found


def test_only_the_process_layer_imports_subprocess():
    offenders = []
    for path in sorted(MODULE_UTILS.rglob("*.py")):
        if path.name == "_proc.py" or path.name in SUBPROCESS_PENDING:
            continue
        if "subprocess" in _imports(ast.parse(path.read_text(encoding="utf-8"))):
            offenders.append(path.name)
    assert not offenders, "run children through module_utils/_proc.py: %s" % offenders


def test_only_the_zfs_layer_builds_zfs_and_zpool_argv():
    offenders = []
    for path in sorted(MODULE_UTILS.glob("*.py")):
        if path.name in ZFS_FILES:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.List, ast.Tuple)) and node.elts and isinstance(node.elts[0], ast.Constant) \
                    and node.elts[0].value in ("zfs", "zpool"):
                offenders.append("%s:%d argv" % (path.name, node.lineno))
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and node.func.attr in ("run", "_run", "_probe", "_zpool", "zpool_binary"):
                receiver = ast.unparse(node.func.value) if hasattr(ast, "unparse") else ""
                if receiver.rsplit(".", maxsplit=1)[-1] == "zfs":
                    offenders.append("%s:%d %s.%s" % (path.name, node.lineno, receiver, node.func.attr))
    assert not offenders, "give zfs.py a named method instead: %s" % offenders
