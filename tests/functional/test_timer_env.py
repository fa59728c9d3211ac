"""The role's timer path with secrets and monitoring: S3 credentials only in the 0600 EnvironmentFile the
role writes (never in the policy, the unit or argv), OnFailure= in the unit, and the dead-man's-switch
ping on success and on failure (a real HTTP listener on loopback, a real `rclone serve s3`)."""

from __future__ import annotations

import http.server
import json
import os
import re
import subprocess
import threading
from pathlib import Path

import harness


class _Recorder(http.server.BaseHTTPRequestHandler):
    seen: list = []

    def do_POST(self) -> None:  # noqa: N802 - the http.server API
        length = int(self.headers.get("Content-Length") or 0)
        self.seen.append((self.path, self.rfile.read(length).decode("utf-8", "replace")))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args) -> None:
        return


def read_env_file(path: Path) -> dict:
    """systemd's EnvironmentFile syntax, as far as the role writes it: KEY="value" with \\ escapes."""
    env = {}
    for line in path.read_text().splitlines():
        match = re.match(r'^([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"$', line.strip())
        if match:
            env[match.group(1)] = re.sub(r"\\(.)", r"\1", match.group(2))
    return env


def test_timer_gets_secrets_from_its_environment_file_and_pings(lab, ansible, s3, tmp_path):
    ds = lab.pool.create("data")
    harness.write_data(lab.pool.mountpoint(ds), 3, 128 << 10)
    remote = "S3TIMER"
    policy = json.loads(json.dumps(lab.config))
    policy["providers"] = {"s3": {"remote": "%s:bucket/%s" % (remote.lower(), lab.pool.name), "retry_delay": 0.05}}
    policy["defaults"].update({"every": "1d"})
    policy["datasets"] = {ds: {}}
    secrets = s3.env(remote)
    server = http.server.HTTPServer(("127.0.0.1", 0), _Recorder)
    _Recorder.seen = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        ping = "http://127.0.0.1:%d/ping/%s" % (server.server_port, os.urandom(6).hex())
        extra = {"offsite_policy": policy, "offsite_config_path": str(tmp_path / "etc" / "offsite.yml"),
                 "offsite_install_dependencies": False, "offsite_timer": True, "offsite_timer_enable": False,
                 "offsite_lib_dir": str(tmp_path / "lib"), "offsite_systemd_dir": str(tmp_path / "systemd"),
                 "offsite_timer_env": secrets, "offsite_ping_url": ping,
                 "offsite_timer_on_failure": "offsite-notify@%n.service"}
        playbook = tmp_path / "site.yml"
        playbook.write_text("- hosts: all\n  gather_facts: false\n  roles: [offsite.zfs.offsite]\n")
        run = ansible.run_playbook(playbook, extra_vars=extra, args=["--diff", "-v"])
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
        assert s3.secret_key not in run.stdout + run.stderr, "no secret in Ansible's output (no_log, even with --diff)"

        env_file = tmp_path / "etc" / "offsite-converge.env"
        assert oct(os.stat(env_file).st_mode & 0o777) == "0o600"
        service = (tmp_path / "systemd" / "offsite-converge.service").read_text()
        assert "EnvironmentFile=-%s" % env_file in service
        assert "OnFailure=offsite-notify@%n.service" in service
        assert s3.secret_key not in service and s3.secret_key not in (tmp_path / "etc" / "offsite.yml").read_text()
        from_file = read_env_file(env_file)
        assert from_file == dict(secrets, OFFSITE_PING_URL=ping)

        # What systemd does: the ExecStart argv with the file's variables, nothing else secret.
        exec_start = next(line for line in service.splitlines() if line.startswith("ExecStart="))[len("ExecStart="):]
        argv = exec_start.split()
        assert not any(s3.secret_key in a or ping in a for a in argv)
        base = {"PATH": "%s:%s" % (Path(lab.rclone).parent, os.environ.get("PATH", "")), "HOME": str(tmp_path)}
        done = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=dict(base, **from_file), check=False)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        result = json.loads(done.stdout)
        assert result["datasets"][ds]["providers"]["s3"]["status"] == "uploaded"
        assert list((s3.root / "bucket" / lab.pool.name / "testhost" / ds).iterdir()), "the backup is on S3"
        assert [p for p, _body in _Recorder.seen] == [ping[len("http://127.0.0.1:%d" % server.server_port):]]
        assert ds in _Recorder.seen[0][1]

        # Without the file's credentials rclone cannot reach the bucket: the run fails and pings /fail.
        no_keys = {k: v for k, v in from_file.items() if not k.endswith(("ACCESS_KEY_ID", "SECRET_ACCESS_KEY"))}
        harness.write_data(lab.pool.mountpoint(ds), 4, 64 << 10, "more.bin")
        failed = subprocess.run(argv + ["--check"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=dict(base, **no_keys), check=False)
        assert failed.returncode != 0, failed.stdout[-2000:]
        assert _Recorder.seen[-1][0].endswith("/fail")
        assert ping not in failed.stdout + failed.stderr
    finally:
        server.shutdown()
