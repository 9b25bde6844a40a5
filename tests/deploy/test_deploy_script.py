"""./deploy against stand-in docker, podman, nerdctl, buildah, kubectl, ssh and ctr on PATH."""

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
VERSION = re.search(r'^version = "(.+)"$', (ROOT / "pyproject.toml").read_text(), re.M)[1]
AGENT_IMAGE = f"localhost/cloudmon/monitor:{VERSION}"
SERVER_IMAGE = f"localhost/cloudmon/monitor-api:{VERSION}"
OFFICIAL_BASE = "docker.io/library/python:3.11-slim-bookworm"
DEBIAN_BASE = "localhost/cloudmon/python-debian:3.11-bookworm"
# What deploy asks the engine before it builds: whether it works, whether it has the base.
ENGINE_CHECKS = (["docker", "info"], ["docker", "image", "inspect"])
TOOLS = ["bash", "sh", "env", "dirname", "sed", "head", "od", "tr", "mktemp", "rm", "mkdir", "cat"]

# Each stand-in appends [name, *args] (and what it was given) to $STANDIN_LOG as one JSON line.
# It fails when $STANDIN_FAIL names it and a word of its command line; `kubectl get` finds only
# the objects named in $STANDIN_EXISTING; ssh runs the "remote" command here, stdin and all.
STANDIN = """#!{python}
import json, os, sys
name, args = os.path.basename(sys.argv[0]), sys.argv[1:]
entry = [name, *args]
extra = {{}}
if name == "ctr":
    extra["stdin"] = sys.stdin.read()
for arg in args:
    if arg.startswith("--from-file=token="):
        extra["token"] = open(arg.split("=", 2)[2]).read()
with open(os.environ["STANDIN_LOG"], "a") as log:
    log.write(json.dumps({{"argv": entry, **extra}}) + "\\n")
fail = os.environ.get("STANDIN_FAIL", "").split(" ", 1)
if fail[0] == name and (len(fail) == 1 or fail[1] in args):
    sys.exit("stand-in " + name + " fails")
if name in ("docker", "podman", "nerdctl") and args[0] == "save":
    open(args[args.index("-o") + 1], "w").write("tar of " + args[-1])
if name == "buildah" and args[0] == "push":
    open(args[2].split(":")[1], "w").write("tar of " + args[1])
if name == "kubectl" and "get" in args:
    sys.exit(0 if args[-1] in os.environ.get("STANDIN_EXISTING", "").split(",") else 1)
if name == "ssh":
    os.execvp("sh", ["sh", "-c", args[-1]])
"""


class Deploy:
    def __init__(self, tmp_path: Path, commands: list[str]):
        self.tmp = tmp_path
        self.bin = tmp_path / "bin"
        self.bin.mkdir(parents=True)
        for tool in TOOLS:
            (self.bin / tool).symlink_to(shutil.which(tool))
        for command in commands:
            path = self.bin / command
            path.write_text(STANDIN.format(python=sys.executable))
            path.chmod(0o755)
        self.log = tmp_path / "calls.jsonl"
        self.out = tmp_path / "out"

    def run(self, *args: str, fail: str = "", existing: str = "") -> subprocess.CompletedProcess:
        env = {
            "PATH": str(self.bin),
            "HOME": str(self.tmp),
            "STANDIN_LOG": str(self.log),
            "STANDIN_FAIL": fail,
            "STANDIN_EXISTING": existing,
        }
        return subprocess.run(
            [str(self.bin / "bash"), str(DEPLOY), "--out", str(self.out), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    def calls(self) -> list[dict]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def argvs(self) -> list[list[str]]:
        return [call["argv"] for call in self.calls()]


ALL = ["docker", "kubectl", "ssh", "ctr"]


@pytest.fixture
def deploy(tmp_path):
    return Deploy(tmp_path, ALL)


def kubectl(*args):
    return ["kubectl", *args]


def test_a_whole_run_in_order(deploy):
    result = deploy.run("--nodes", "w1,w2", "--ssh-user", "admin", "--ctr", "ctr")
    assert result.returncode == 0, result.stderr
    agent_tar, server_tar = str(deploy.out / "monitor.tar"), str(deploy.out / "monitor-api.tar")
    build = ["--build-arg", f"VERSION={VERSION}", "--build-arg", f"PYTHON_IMAGE={OFFICIAL_BASE}"]
    dockerfile = ["-f", str(ROOT / "Dockerfile"), str(ROOT)]
    import_ = "ctr -n k8s.io images import -"
    ctr = ["ctr", "-n", "k8s.io", "images", "import", "-"]
    assert deploy.argvs() == [
        ["docker", "info"],
        ["docker", "image", "inspect", OFFICIAL_BASE],
        ["docker", "build", "--target", "agent", *build, "-t", AGENT_IMAGE, *dockerfile],
        ["docker", "save", "-o", agent_tar, AGENT_IMAGE],
        ["docker", "build", "--target", "server", *build, "-t", SERVER_IMAGE, *dockerfile],
        ["docker", "save", "-o", server_tar, SERVER_IMAGE],
        ["ssh", "admin@w1", import_],
        ctr,
        ["ssh", "admin@w1", import_],
        ctr,
        ["ssh", "admin@w2", import_],
        ctr,
        ["ssh", "admin@w2", import_],
        ctr,
        kubectl("version", "--request-timeout=15s"),
        kubectl("get", "namespace", "cloudmon"),
        kubectl("create", "namespace", "cloudmon"),
        kubectl("-n", "cloudmon", "get", "secret", "cloudmon-token"),
        kubectl(
            "-n",
            "cloudmon",
            "create",
            "secret",
            "generic",
            "cloudmon-token",
            deploy.argvs()[-4][-1],
        ),
        kubectl(
            "apply",
            "--server-side",
            "--field-manager=cloudmon-deploy",
            "-k",
            str(ROOT / "manifests"),
        ),
        kubectl(
            "-n", "cloudmon", "rollout", "status", "deployment/cloudmon-server", "--timeout=300s"
        ),
        kubectl(
            "-n", "cloudmon", "rollout", "status", "daemonset/cloudmon-agent", "--timeout=300s"
        ),
    ]
    imported = [call["stdin"] for call in deploy.calls() if call["argv"][0] == "ctr"]
    assert imported == [f"tar of {AGENT_IMAGE}", f"tar of {SERVER_IMAGE}"] * 2
    (secret,) = [
        call for call in deploy.calls() if "secret" in call["argv"] and "create" in call["argv"]
    ]
    assert re.fullmatch(r"[0-9a-f]{64}", secret["token"])
    token_file = secret["argv"][-1].removeprefix("--from-file=token=")
    assert not Path(token_file).exists(), "the random token's file is removed"
    assert "cloudmon is running" in result.stdout


def test_existing_namespace_and_secret_are_kept(deploy):
    result = deploy.run("--context", "prod", existing="cloudmon,cloudmon-token")
    assert result.returncode == 0, result.stderr
    kubectl_calls = [argv for argv in deploy.argvs() if argv[0] == "kubectl"]
    assert all(argv[1:3] == ["--context", "prod"] for argv in kubectl_calls)
    assert not [argv for argv in kubectl_calls if "create" in argv]
    assert not [argv for argv in deploy.argvs() if argv[0] in ("ssh", "ctr")]


def test_token_file_becomes_the_secret(deploy, tmp_path):
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    result = deploy.run("--token-file", str(token), existing="cloudmon")
    assert result.returncode == 0, result.stderr
    (secret,) = [call for call in deploy.calls() if "token" in call]
    assert secret["argv"][-1] == f"--from-file=token={token}" and secret["token"] == "s3cret\n"


def test_dry_run_prints_every_command_of_a_run_and_runs_none(tmp_path):
    options = ["--nodes", "w1", "--ctr", "ctr", "--platform", "linux/arm64", "--timeout", "90s"]
    dry = Deploy(tmp_path / "dry", ALL)
    printed = dry.run("--dry-run", *options)
    assert printed.returncode == 0, printed.stderr
    assert dry.calls() == []
    real = Deploy(tmp_path / "real", ALL)
    assert real.run(*options).returncode == 0
    checks = (
        *ENGINE_CHECKS,
        ["kubectl", "version"],
        ["kubectl", "get"],
        ["kubectl", "-n", "cloudmon", "get"],
    )
    ran = [
        argv
        for argv in real.argvs()
        if argv[0] != "ctr" and not any(argv[: len(c)] == c for c in checks)
    ]
    ran = [["env", "DOCKER_BUILDKIT=1", *argv] if argv[1] == "build" else argv for argv in ran]
    lines = [line for line in printed.stdout.splitlines() if not line.startswith("#")]
    shown = [shlex.split(line.replace(" < ", " ")) for line in lines]
    token_arg = next(a for a in ran[-4] if a.startswith("--from-file"))
    shown = [[token_arg if a == "--from-file=token=TOKEN_FILE" else a for a in s] for s in shown]
    assert shown[0] == ["mkdir", "-p", str(dry.out)]
    out_dir = str(dry.out)
    shown = [[a.replace(out_dir, str(real.out)) for a in s] for s in shown[1:]]
    tars = {str(real.out / "monitor.tar"), str(real.out / "monitor-api.tar")}
    assert [s[:-1] if s[-1] in tars and s[0] == "ssh" else s for s in shown] == ran
    assert "--platform" in shown[0] and "linux/arm64" in shown[0]


def test_dry_run_without_any_engine_shows_dockers_commands(tmp_path):
    deploy = Deploy(tmp_path, [])
    result = deploy.run("--dry-run")
    assert result.returncode == 0, result.stderr
    assert "# no container engine found" in result.stdout
    assert "docker build --target agent" in result.stdout
    assert "kubectl apply" in result.stdout


@pytest.mark.parametrize(
    "engine, build, save",
    [
        ("podman", ["podman", "build"], ["podman", "save", "--format", "docker-archive", "-o"]),
        ("nerdctl", ["nerdctl", "build"], ["nerdctl", "save", "-o"]),
        ("buildah", ["buildah", "build"], ["buildah", "push", AGENT_IMAGE]),
    ],
)
def test_the_engine_found_on_path_builds(tmp_path, engine, build, save):
    deploy = Deploy(tmp_path, [engine, "kubectl"])
    result = deploy.run(existing="cloudmon,cloudmon-token")
    assert result.returncode == 0, result.stderr
    argvs = [argv for argv in deploy.argvs() if "inspect" not in argv]
    assert argvs[0][:2] == build and "--target" in argvs[0] and "agent" in argvs[0]
    assert argvs[1][: len(save)] == save
    assert (deploy.out / "monitor.tar").read_text() == f"tar of {AGENT_IMAGE}"
    assert (deploy.out / "monitor-api.tar").read_text() == f"tar of {SERVER_IMAGE}"


def test_the_first_engine_wins_and_engine_can_be_chosen(tmp_path):
    deploy = Deploy(tmp_path, ["docker", "podman", "kubectl"])
    assert deploy.run(existing="cloudmon,cloudmon-token").returncode == 0
    assert deploy.argvs()[0][0] == "docker"
    deploy.log.unlink()
    assert deploy.run("--engine", "podman", existing="cloudmon,cloudmon-token").returncode == 0
    assert deploy.argvs()[0][0] == "podman"


def test_docker_without_its_daemon_is_passed_over(tmp_path):
    deploy = Deploy(tmp_path, ["docker", "buildah", "kubectl"])
    result = deploy.run(existing="cloudmon,cloudmon-token", fail="docker info")
    assert result.returncode == 0, result.stderr
    assert [argv[0] for argv in deploy.argvs()[1:] if argv[0] != "kubectl"] == ["buildah"] * 5


def test_the_base_where_the_official_one_cannot_be_pulled(deploy):
    result = deploy.run("--images-only", fail=f"docker {OFFICIAL_BASE}")
    assert result.returncode == 0, result.stderr
    assert "cannot be pulled" not in result.stderr  # the engine has the Debian base already
    argvs = deploy.argvs()
    assert argvs[1:4] == [
        ["docker", "image", "inspect", OFFICIAL_BASE],
        ["docker", "pull", OFFICIAL_BASE],
        ["docker", "image", "inspect", DEBIAN_BASE],
    ]
    builds = [argv for argv in argvs if argv[1] == "build"]
    assert len(builds) == 2 and all(f"PYTHON_IMAGE={DEBIAN_BASE}" in argv for argv in builds)


def test_images_only_builds_saves_imports_locally_and_stops(tmp_path):
    deploy = Deploy(tmp_path, ["docker", "ctr"])  # no kubectl, no ssh
    bundle = tmp_path / "ca.pem"
    bundle.write_text("a CA\n")
    result = deploy.run(
        *("--images-only", "--nodes", "local", "--ctr", "ctr --address /x.sock"),
        *("--no-crictl", "--ca-bundle", str(bundle), "--base", "example/python:3.11"),
    )
    assert result.returncode == 0, result.stderr
    builds = [argv for argv in deploy.argvs() if argv[1] == "build"]
    assert len(builds) == 2
    for argv in builds:
        assert "PYTHON_IMAGE=example/python:3.11" in argv and "CRICTL_VERSION=" in argv
        assert argv[argv.index("--secret") + 1] == f"id=pip-ca,src={bundle}"
    imports = [call for call in deploy.calls() if call["argv"][0] == "ctr"]
    tars = [str(deploy.out / "monitor.tar"), str(deploy.out / "monitor-api.tar")]
    assert [call["argv"] for call in imports] == [
        ["ctr", "--address", "/x.sock", "-n", "k8s.io", "images", "import", tar] for tar in tars
    ]
    assert deploy.argvs()[-1][0] == "ctr"


def test_no_build_uses_the_saved_tars(deploy):
    assert deploy.run(existing="cloudmon,cloudmon-token").returncode == 0
    deploy.log.unlink()
    result = deploy.run(
        "--no-build", "--nodes", "w1", "--ctr", "ctr", existing="cloudmon,cloudmon-token"
    )
    assert result.returncode == 0, result.stderr
    assert not [argv for argv in deploy.argvs() if argv[0] == "docker"]
    assert [c["stdin"] for c in deploy.calls() if "stdin" in c] == [
        f"tar of {AGENT_IMAGE}",
        f"tar of {SERVER_IMAGE}",
    ]


def test_help_explains_every_option(deploy):
    result = deploy.run("--help")
    assert result.returncode == 0
    parsed = set(re.findall(r"^\s+(--[a-z-]+)\)", DEPLOY.read_text(), re.M))
    parsed |= set(re.findall(r"\| (--[a-z-]+)\)", DEPLOY.read_text()))
    assert {"--dry-run", "--nodes", "--engine", "--help"} <= parsed
    for option in parsed:
        assert re.search(rf"^\s+(-h, )?{option}\b", result.stdout, re.M), option
    assert deploy.calls() == []


def test_deploy_is_executable():
    assert os.access(DEPLOY, os.X_OK)
    assert DEPLOY.read_text().startswith("#!/usr/bin/env bash\n")


NODES = ("--nodes", "w1")


@pytest.mark.parametrize(
    "commands, args, fail, message, last",
    [
        (["kubectl"], (), "", "no container engine found", None),
        (ALL, ("--engine", "rkt"), "", "--engine must be docker, podman, nerdctl or buildah", None),
        (ALL, ("--engine", "podman"), "", "podman not found on PATH", None),
        (["docker", "ssh", "ctr"], (), "", "kubectl not found", None),
        (ALL, (), "docker agent", "docker build --target agent failed", "docker"),
        (ALL, (), "docker save", "docker save", "docker"),
        (ALL, (), "docker server", "docker build --target server failed", "docker"),
        (["docker", "kubectl"], NODES, "", "ssh not found", "docker"),
        (ALL, NODES, "ssh", "importing", "ssh"),
        (ALL, NODES, "ctr", "check that 'ssh w1 true' works", "ctr"),
        (ALL, (), "kubectl version", "kubectl cannot reach the cluster", "kubectl"),
        (ALL, (), "kubectl namespace", "cannot create the namespace cloudmon", "kubectl"),
        (ALL, (), "kubectl generic", "cannot create the Secret cloudmon/cloudmon-token", "kubectl"),
        (ALL, (), "kubectl apply", "kubectl apply -k manifests failed", "kubectl"),
        (
            ALL,
            (),
            "kubectl deployment/cloudmon-server",
            "the server did not become ready",
            "kubectl",
        ),
        (ALL, (), "kubectl daemonset/cloudmon-agent", "the agents did not all start", "kubectl"),
        (ALL, ("--no-build",), "", "--no-build:", None),
        (
            ALL,
            ("--token-file", "/nonexistent"),
            "",
            "--token-file /nonexistent is missing",
            "kubectl",
        ),
        (ALL, ("--bogus",), "", "unknown option --bogus (see ./deploy --help)", None),
        (ALL, ("--nodes",), "", "--nodes needs a value", None),
        (ALL, ("--ca-bundle", "/nonexistent"), "", "--ca-bundle /nonexistent: no such file", None),
        (ALL, ("--nodes", "--dry-run"), "", "--nodes needs a value", None),
    ],
)
def test_every_failure_stops_with_what_to_do(tmp_path, commands, args, fail, message, last):
    deploy = Deploy(tmp_path, commands)
    result = deploy.run(*args, "--ctr", "ctr", fail=fail)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("deploy: ")
    assert message in result.stderr
    argvs = deploy.argvs()
    if last is None:
        assert argvs == []
    else:
        # Nothing runs after the step that failed.
        assert argvs[-1][0] == last
        if fail:
            assert fail.split(" ", 1)[-1] in argvs[-1] or fail == argvs[-1][0]
