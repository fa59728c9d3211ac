"""Packaging: the galaxy tarball, an install into an empty collections path, module_defaults
groups, the oldest and newest ansible-core that meta/runtime.yml allows, and the metadata
ansible-builder reads for execution environments (issue 7)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Dict, List

import harness
import pytest
import yaml

BIN = Path(sys.executable).parent
VENVS = harness.ROOT / ".tmp" / "venvs"


def tool(name: str) -> str:
    return str(BIN / name) if (BIN / name).exists() else name


@pytest.fixture(scope="module")
def tarball(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("build")
    harness.run([tool("ansible-galaxy"), "collection", "build", "--force", "--output-path", str(out),
                 str(harness.ROOT)])
    built = sorted(out.glob("offsite-zfs-*.tar.gz"))
    assert len(built) == 1
    return built[0]


def tracked_files() -> List[str]:
    out = harness.run(["git", "-C", str(harness.ROOT), "ls-files"]).stdout.split()
    return [p for p in out if (harness.ROOT / p).is_file()]


def test_tarball_holds_every_runtime_file_and_nothing_else(tarball: Path) -> None:
    with tarfile.open(tarball) as tar:
        names = set(tar.getnames())
        manifest = json.load(tar.extractfile("MANIFEST.json"))
    needed = [p for p in tracked_files() if p.startswith(("plugins/", "meta/", "roles/", "playbooks/", "docs/",
                                                          "schemas/", "changelogs/"))
              and not p.endswith(".pyc")]
    needed += ["README.md", "requirements.txt", "bindep.txt", "meta/runtime.yml", "meta/execution-environment.yml",
               "plugins/doc_fragments/common.py", "plugins/modules/offsite_backup.py",
               "plugins/modules/offsite_restore.py"]
    missing = sorted(set(needed) - names)
    assert not missing, "files missing from the tarball: %s" % missing
    junk = sorted(n for n in names if re.search(r"(^|/)(\.tmp|\.git|\.venv|__pycache__|tests/output)(/|$)", n)
                  or n.endswith((".pyc", ".tar.gz")))
    assert not junk, "files that do not belong in the tarball: %s" % junk[:20]
    info = manifest["collection_info"]
    assert (info["namespace"], info["name"]) == ("offsite", "zfs")
    assert info["version"] == yaml.safe_load((harness.ROOT / "galaxy.yml").read_text())["version"]


def install(tarball: Path, dest: Path, galaxy: str) -> Path:
    harness.run([galaxy, "collection", "install", "--force", "-p", str(dest), str(tarball)])
    assert (dest / "ansible_collections" / "offsite" / "zfs" / "MANIFEST.json").exists()
    return dest


def ansible_env(collections: Path, home: Path, python: str) -> Dict[str, str]:
    env = dict(os.environ)
    env.update({"ANSIBLE_COLLECTIONS_PATH": str(collections), "ANSIBLE_HOME": str(home),
                "ANSIBLE_LOCAL_TEMP": str(home / "tmp"), "ANSIBLE_PYTHON_INTERPRETER": python,
                "ANSIBLE_NOCOLOR": "1", "ANSIBLE_RETRY_FILES_ENABLED": "False",
                "PATH": "%s:%s" % (BIN, os.environ.get("PATH", ""))})
    return env


def adhoc(bindir: Path, env: Dict[str, str], module: str, args: Dict, check: bool = False) -> Dict:
    argv = [str(bindir / "ansible"), "localhost", "-i", "localhost,", "-c", "local", "-m",
            "offsite.zfs.%s" % module, "-a", json.dumps(args)] + (["--check"] if check else [])
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, check=False,
                          timeout=300)
    try:
        # The ad-hoc output is "localhost | STATUS => {json}" (the minimal callback, in every ansible-core).
        result, _end = json.JSONDecoder().raw_decode(proc.stdout[proc.stdout.index("=> {") + 3:])
    except (ValueError, KeyError, IndexError):
        raise AssertionError("ansible output was not JSON (rc %d): %s %s" % (
            proc.returncode, proc.stdout[-3000:], proc.stderr[-3000:]))
    result["_rc"] = proc.returncode
    return result


GROUP_PLAYBOOK = """
- name: One module_defaults entry for every offsite.zfs module
  hosts: localhost
  gather_facts: false
  module_defaults:
    group/offsite.zfs.offsite:
      config: "{{ offsite_config }}"
      namespace: drill
      providers: local
  tasks:
    - name: Back up with the group defaults
      offsite.zfs.offsite_backup:
        dataset: "{{ dataset }}@s1"
      register: backup

    - name: Plan a restore with the same defaults
      offsite.zfs.offsite_restore:
        dataset: "{{ dataset }}"
        target: "{{ target }}"
      check_mode: true
      register: restore

    - name: Show what the modules saw
      ansible.builtin.copy:
        content: "{{ {'backup': backup, 'restore': restore} | to_json }}"
        dest: "{{ out }}"
        mode: "0600"
"""


def run_group_playbook(lab, bindir: Path, env: Dict[str, str]) -> Dict:
    ds = lab.pool.name + "/data"  # with snapshot s1, made by the caller
    playbook = lab.tmp / "group.yml"
    playbook.write_text(GROUP_PLAYBOOK)
    out = lab.tmp / "group-result.json"
    extra = {"offsite_config": str(lab.config_path), "dataset": ds, "target": lab.pool.name + "/drill", "out": str(out)}
    proc = subprocess.run([str(bindir / "ansible-playbook"), "-i", "localhost,", "-c", "local", str(playbook),
                           "-e", json.dumps(extra)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          env=env, check=False, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    return json.loads(out.read_text())


def test_installed_tarball_runs_modules_and_group_module_defaults(lab, tarball: Path, tmp_path: Path) -> None:
    collections = install(tarball, tmp_path / "collections", tool("ansible-galaxy"))
    env = ansible_env(collections, tmp_path / "home", sys.executable)
    ds = lab.pool.create("data")
    harness.write_data(lab.pool.mountpoint(ds), 72, 256 << 10)
    lab.pool.snapshot(ds, "s1")
    # Ad hoc, from the empty collections path the tarball went into.
    result = adhoc(BIN, env, "offsite_backup", {"dataset": ds + "@s1", "config": str(lab.config_path)})
    assert result["_rc"] == 0 and result["changed"] is True, result
    assert list(lab.remotes["local"].glob("testhost/%s/@s1+*+full/manifest.json" % ds))
    # module_defaults: group/offsite.zfs.offsite gives config, namespace and providers to every module.
    seen = run_group_playbook(lab, BIN, env)
    assert seen["backup"]["namespace"] == "drill" and seen["backup"]["changed"] is True
    assert list(lab.remotes["local"].glob("drill/%s/@s1+*+full/manifest.json" % ds))
    assert seen["restore"]["provider"] == "local" and seen["restore"]["plan"][0]["kind"] == "full"
    assert not lab.pool.exists(lab.pool.name + "/drill")


def test_action_group_lists_every_module() -> None:
    runtime = yaml.safe_load((harness.ROOT / "meta" / "runtime.yml").read_text())
    """Every module that takes the shared options (doc fragment offsite.zfs.common) is in group/offsite.zfs.offsite,
    and its documented action_group membership says so; the others are not (module_defaults would hand them
    options they do not take)."""
    group = runtime["action_groups"]["offsite"]
    shared = []
    for path in sorted((harness.ROOT / "plugins" / "modules").glob("offsite_*.py")):
        text = path.read_text()
        start = text.index("DOCUMENTATION = r\"\"\"") + len("DOCUMENTATION = r\"\"\"")
        doc = yaml.safe_load(text[start:text.index("\"\"\"", start)])
        member = "offsite.zfs.common" in (doc.get("extends_documentation_fragment") or [])
        if member:
            shared.append(path.stem)
        membership = ((doc.get("attributes") or {}).get("action_group") or {}).get("membership") or []
        assert ("offsite.zfs.offsite" in membership) == member, path.stem
    assert sorted(group) == shared


def requires_ansible() -> str:
    return yaml.safe_load((harness.ROOT / "meta" / "runtime.yml").read_text())["requires_ansible"]


def venv_with(spec: str, name: str) -> Path:
    """A cached virtualenv with ansible-core `spec` and the managed-node requirements."""
    venv = VENVS / name
    stamp = venv / ".offsite-ready"
    want = spec + "\n" + (harness.ROOT / "requirements.txt").read_text()
    if not stamp.exists() or stamp.read_text() != want:
        harness.run([sys.executable, "-m", "venv", "--clear", str(venv)])
        harness.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                     spec, "-r", str(harness.ROOT / "requirements.txt")], timeout=600)
        stamp.write_text(want)
    return venv


def installed_version() -> str:
    from ansible.release import __version__
    return __version__


def newest_installable() -> str:
    """The newest ansible-core pip would install on this Python (resolved, not installed)."""
    proc = harness.run([sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--ignore-installed",
                        "--no-deps", "--disable-pip-version-check", "--report", "-", "ansible-core"], timeout=300)
    return json.loads(proc.stdout)["install"][0]["metadata"]["version"]


def oldest_spec() -> str:
    match = re.match(r"^>=\s*(\d+)\.(\d+)(?:\.(\d+))?$", requires_ansible().strip())
    assert match, "requires_ansible %r is not a plain lower bound" % requires_ansible()
    major, minor = int(match.group(1)), int(match.group(2))
    return "ansible-core>=%d.%d.%d,<%d.%d" % (major, minor, int(match.group(3) or 0), major, minor + 1)


@pytest.mark.parametrize("which", ["oldest", "newest"])
def test_requires_ansible_bounds_really_work(which: str, lab, tarball: Path, tmp_path: Path) -> None:
    """The oldest ansible-core meta/runtime.yml allows, and the newest that installs on this Python."""
    spec = oldest_spec() if which == "oldest" else "ansible-core"
    if which == "newest" and newest_installable() == installed_version():
        # requirements-dev.txt installed the newest: test_installed_tarball_runs_modules_and_group_module_defaults
        # already runs the modules and the module_defaults group from the tarball with it.
        return
    bindir = venv_with(spec, "ansible-core-%s" % which) / "bin"
    python = str(bindir / "python")
    version = harness.run([python, "-c",
                           "import ansible.release; print(ansible.release.__version__)"]).stdout.strip()
    if which == "oldest":
        assert version.startswith(re.search(r">=(\d+\.\d+)", spec).group(1) + "."), version
    collections = install(tarball, tmp_path / "collections", str(bindir / "ansible-galaxy"))
    env = ansible_env(collections, tmp_path / "home", python)
    env["PATH"] = "%s:%s" % (bindir, env["PATH"])
    doc = subprocess.run([str(bindir / "ansible-doc"), "offsite.zfs.offsite_backup"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=env, check=False, timeout=120)
    assert doc.returncode == 0 and "dataset" in doc.stdout, doc.stderr[-2000:]
    ds = lab.pool.create("data")
    harness.write_data(lab.pool.mountpoint(ds), 73, 256 << 10)
    lab.pool.snapshot(ds, "s1")
    plan = adhoc(bindir, env, "offsite_backup", {"dataset": ds + "@s1", "config": str(lab.config_path)}, check=True)
    assert plan["_rc"] == 0, "ansible-core %s: %s" % (version, plan)
    assert plan["providers"]["local"]["status"] == "planned"
    seen = run_group_playbook(lab, bindir, env)
    assert seen["backup"]["namespace"] == "drill", "ansible-core %s ignored the action group" % version


def test_execution_environment_metadata_is_what_ansible_builder_reads(tarball: Path, tmp_path: Path) -> None:
    ee = yaml.safe_load((harness.ROOT / "meta" / "execution-environment.yml").read_text())
    deps = ee["dependencies"]
    python_reqs = (harness.ROOT / deps["python"]).read_text()
    system_reqs = (harness.ROOT / deps["system"]).read_text()
    for lib in ("pyrage", "zstandard", "PyYAML"):
        assert lib in python_reqs
    assert re.search(r"^rclone\b", system_reqs, re.M) and re.search(r"^zfsutils-linux\b", system_reqs, re.M)
    builder = BIN / "ansible-builder"
    if not builder.exists():
        pytest.skip("ansible-builder is not installed (requirements-dev.txt installs it)")
    collections = install(tarball, tmp_path / "collections", tool("ansible-galaxy"))
    proc = harness.run([str(builder), "introspect", "--sanitize", str(collections)])
    found = yaml.safe_load(proc.stdout[proc.stdout.index("python:"):]) if "python:" in proc.stdout else {}
    python_found = " ".join(found.get("python") or [])
    system_found = " ".join(found.get("system") or [])
    assert "pyrage" in python_found and "zstandard" in python_found, proc.stdout
    assert "rclone" in system_found and "offsite.zfs" in system_found, proc.stdout


# Keys every Ansible module result may carry, documented by Ansible rather than by each module.
STANDARD_KEYS = {"changed", "failed", "msg", "invocation", "warnings", "deprecations", "exception", "skipped",
                 "error_code", "diff", "_rc", "_stdout", "_stderr", "ansible_facts", "rc", "stdout", "stderr",
                 "stdout_lines", "stderr_lines", "skip_reason", "module_stdout", "module_stderr"}


def documented_return_keys(module: str) -> set:
    text = (harness.ROOT / "plugins" / "modules" / ("%s.py" % module)).read_text()
    start = text.index("RETURN = r\"\"\"") + len("RETURN = r\"\"\"")
    return set((yaml.safe_load(text[start:text.index("\"\"\"", start)]) or {}).keys())


def undocumented(module: str, result: Dict) -> List[str]:
    return sorted(k for k in result if k not in STANDARD_KEYS and not k.startswith("_ansible")
                  and k not in documented_return_keys(module))


def test_every_returned_key_is_documented_in_return(lab, ansible) -> None:
    """Run each module for real (and in check mode) and compare its result with its RETURN docs."""
    ds = lab.pool.create("data")
    harness.write_data(lab.pool.mountpoint(ds), 74, 256 << 10)
    lab.pool.snapshot(ds, "s1")
    config = str(lab.config_path)
    runs = [
        ("offsite_backup", {"dataset": ds + "@s1", "config": config}, True),
        ("offsite_backup", {"dataset": ds + "@s1", "config": config}, False),
        ("offsite_backup", {"dataset": ds + "@s1", "config": config}, False),  # present: changed=false
        ("offsite_restore", {"dataset": ds, "target": lab.pool.name + "/copy", "config": config}, True),
        ("offsite_restore", {"dataset": ds, "target": lab.pool.name + "/copy", "config": config,
                             "identity_file": str(lab.key.path)}, False),
        ("offsite_status", {"config": config, "datasets": [ds]}, False),
        ("offsite_prune", {"config": config, "dataset": ds, "keep": {"last": 1}}, True),
        ("offsite_restore", {"dataset": ds, "paths": ["data.bin"], "dest": str(lab.tmp / "paths"), "config": config,
                             "identity_file": str(lab.key.path)}, False),
        ("offsite_restore", {"dataset": ds, "paths": ["*.bin"], "list": True, "config": config,
                             "identity_file": str(lab.key.path)}, False),
        ("offsite_drill", {"datasets": [ds], "config": config, "identity_file": str(lab.key.path)}, True),
        ("offsite_drill", {"datasets": [ds], "config": config, "identity_file": str(lab.key.path)}, False),
        ("offsite_status", {"config": config, "datasets": [ds], "verify": "digest", "sample": "50%"}, False),
    ]
    problems = []
    for module, args, check in runs:
        if not (harness.ROOT / "plugins" / "modules" / ("%s.py" % module)).exists():
            continue
        result = ansible.module(module, args, check=check)
        assert result["_rc"] == 0, (module, result.get("msg"), result["_stdout"][-2000:])
        missing = undocumented(module, result)
        if missing:
            problems.append("%s%s returns %s, not in its RETURN" % (
                module, " (check mode)" if check else "", ", ".join(missing)))
    assert not problems, "\n".join(problems)
