"""deploy/ stays honest without Docker: units, Dockerfile, compose and nginx configs
use real CLI flags and real settings, and parse (``nginx -t`` / ``systemd-analyze
verify`` when those tools are on the machine)."""

from __future__ import annotations

import configparser
import dataclasses
import functools
import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from chatserver.config import ENV_PREFIX, Settings
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
UNITS = [DEPLOY / "chatserver.service", DEPLOY / "chatserver@.service"]
DOCKERFILE = DEPLOY / "Dockerfile"
COMPOSE = DEPLOY / "compose.yaml"
NGINX_SITE = DEPLOY / "nginx" / "chatserver.conf"
NGINX_COMPOSE = DEPLOY / "nginx" / "compose.conf"
OPERATIONS = ROOT / "docs" / "operations.md"

# Text files whose CHATSERVER_* variables and `chatserver serve` flags are checked.
CHECKED_FILES = [*sorted(p for p in DEPLOY.rglob("*") if p.is_file()), OPERATIONS]


# ------------------------------------------------------------------ helpers
def read_unit(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(path.read_text(), source=str(path))
    return parser


def unit_values(path: Path, section: str, key: str) -> list[str]:
    """Every value of a key systemd allows to repeat (configparser keeps only the last)."""
    values, current = [], None
    for line in path.read_text().splitlines():
        line = line.strip()
        if line.startswith("["):
            current = line.strip("[]")
        elif current == section and line.startswith(key + "="):
            values.append(line[len(key) + 1 :])
    return values


@functools.cache
def serve_help() -> str:
    script = Path(sys.executable).parent / "chatserver"
    argv = [str(script)] if script.exists() else [sys.executable, "-m", "chatserver"]
    done = subprocess.run(
        [*argv, "serve", "--help"], capture_output=True, text=True, timeout=60, check=True
    )
    return done.stdout


def serve_flags() -> set[str]:
    return set(re.findall(r"(--[a-z][a-z0-9-]*)", serve_help()))


def serve_argv(command: list[str]) -> list[str]:
    """The arguments after ``chatserver serve`` in a command line, or fail."""
    for i, word in enumerate(command[:-1]):
        if (word == "chatserver" or word.endswith("/chatserver")) and command[i + 1] == "serve":
            return command[i + 2 :]
    raise AssertionError(f"not a `chatserver serve` command: {command}")


def flags_of(args: list[str]) -> list[str]:
    return [a.split("=", 1)[0] for a in args if a.startswith("--")]


def option(args: list[str], flag: str) -> str | None:
    for i, arg in enumerate(args):
        if arg == flag and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return None


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        keyword, _, rest = line.partition(" ")
        out.append((keyword.upper(), rest.strip()))
    return out


def docker(instruction: str) -> list[str]:
    return [rest for kw, rest in dockerfile_instructions() if kw == instruction]


def setting_env_names() -> set[str]:
    return {
        ENV_PREFIX + f.name.upper()
        for f in dataclasses.fields(Settings)
        if not f.name.startswith("_")
    }


def nginx_block(text: str, header: str) -> str:
    """The body of the first ``header { ... }`` block (braces balanced)."""
    start = text.index(header)
    depth, i = 0, text.index("{", start)
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1 : j]
    raise AssertionError(f"unbalanced block {header!r}")


def directives(block: str, name: str) -> list[str]:
    return [m.strip() for m in re.findall(rf"^\s*{name}\s+([^;]*);", block, re.M)]


def load_compose() -> dict[str, object]:
    yaml = pytest.importorskip("yaml")
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


# ------------------------------------------------------------------ every file
def test_deploy_files_exist():
    for path in [*UNITS, DOCKERFILE, COMPOSE, NGINX_SITE, NGINX_COMPOSE, ROOT / ".dockerignore"]:
        assert path.is_file(), path


@pytest.mark.parametrize("path", CHECKED_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_env_vars_are_real_settings(path):
    used = set(re.findall(r"\b(CHATSERVER_[A-Z0-9_]*[A-Z0-9])\b", path.read_text()))
    unknown = used - setting_env_names()
    assert not unknown, f"{path.name}: no such setting: {sorted(unknown)}"


@pytest.mark.parametrize("path", CHECKED_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_serve_flags_exist(path):
    known = serve_flags()
    for line in path.read_text().splitlines():
        for match in re.finditer(r'chatserver"?,?\s*"?serve\b(.*)', line):
            used = set(re.findall(r"(--[a-z][a-z0-9-]*)", match.group(1)))
            assert used <= known, f"{path.name}: unknown flags {sorted(used - known)} in {line!r}"


def test_help_parsing_sees_the_flags():
    assert {"--host", "--port", "--data-dir", "--redis-url"} <= serve_flags()


# ------------------------------------------------------------------ systemd
@pytest.mark.parametrize("path", UNITS, ids=lambda p: p.name)
def test_unit_parses_and_runs_chatserver_serve(path):
    unit = read_unit(path)
    assert {"Unit", "Service", "Install"} <= set(unit.sections())
    service = unit["Service"]
    args = serve_argv(shlex.split(service["ExecStart"]))
    assert shlex.split(service["ExecStart"])[0].startswith("/"), "systemd wants an absolute path"
    assert set(flags_of(args)) <= serve_flags()

    assert service["User"] not in {"", "root", "0"}
    assert service["WorkingDirectory"] == "/var/lib/chatserver"
    assert service["EnvironmentFile"].lstrip("-") == "/etc/chatserver/chatserver.env"
    assert service["Restart"] == "on-failure"
    assert service["KillSignal"] == "SIGTERM"
    # uvicorn's graceful shutdown takes up to 10 s (cli.py); systemd must wait longer.
    assert int(service["TimeoutStopSec"]) > 10
    assert service["NoNewPrivileges"] == "yes"
    assert service["ProtectSystem"] == "strict"
    assert service["PrivateTmp"] == "yes"

    data_dir = option(args, "--data-dir")
    assert data_dir is not None and data_dir.startswith("/")
    writable = " ".join(unit_values(path, "Service", "ReadWritePaths")).split()
    assert any(Path(data_dir).is_relative_to(w) for w in writable), (data_dir, writable)


def test_template_unit_takes_the_port_from_the_instance():
    path = DEPLOY / "chatserver@.service"
    env = unit_values(path, "Service", "Environment")
    assert "CHATSERVER_PORT=%i" in env
    args = serve_argv(shlex.split(read_unit(path)["Service"]["ExecStart"]))
    port = option(args, "--port")
    assert port in (None, "%i")


def test_units_pass_systemd_analyze_verify(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze not installed")
    script = Path(sys.executable).parent / "chatserver"
    if not script.exists():
        pytest.skip("no chatserver console script next to the interpreter")
    names = []
    for path in UNITS:
        text = path.read_text()
        exe = shlex.split(read_unit(path)["Service"]["ExecStart"])[0]
        (tmp_path / path.name).write_text(text.replace(exe, str(script)))
        names.append(str(tmp_path / path.name.replace("@.", "@8001.")))
    done = subprocess.run(
        [analyze, "verify", *names], capture_output=True, text=True, timeout=60, check=False
    )
    ours = [line for line in done.stderr.splitlines() if str(tmp_path) in line]
    assert not ours, "\n".join(ours)


# ------------------------------------------------------------------ Docker
def test_dockerfile_runs_the_real_cli_as_non_root():
    (base,) = docker("FROM")
    assert base.startswith("python:3.11-slim")
    (user,) = docker("USER")
    assert user.split(":")[0] not in {"root", "0"}
    (cmd,) = docker("CMD")
    argv = json.loads(cmd)  # exec form: SIGTERM reaches chatserver, not a shell
    args = serve_argv(argv)
    assert set(flags_of(args)) <= serve_flags()
    assert option(args, "--host") == "0.0.0.0"
    data_dir = option(args, "--data-dir")
    assert data_dir in " ".join(docker("VOLUME")).split()
    assert "8000" in " ".join(docker("EXPOSE")).split()
    assert any("pip install ." in run for run in docker("RUN"))


def test_dockerfile_healthcheck_is_valid_python_without_curl():
    (check,) = docker("HEALTHCHECK")
    assert "curl" not in check and "wget" not in check
    argv = json.loads(check[check.index("CMD") + 3 :])
    assert argv[:2] == ["python", "-c"]
    compile(argv[2], "<healthcheck>", "exec")
    assert "/healthz" in argv[2]


def test_dockerfile_asset_check_names_exist():
    """The Dockerfile asserts at build time that the app finds widget/ and the console."""
    import chatserver.web.app

    names = re.findall(r"from chatserver\.web\.app import ([A-Z_, ]+);", DOCKERFILE.read_text())
    assert names, "the build-time asset check is gone"
    for name in (n.strip() for group in names for n in group.split(",")):
        assert hasattr(chatserver.web.app, name), name


def test_dockerignore_keeps_local_state_out():
    entries = {
        line.strip().removeprefix("**/").rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    required = {".venv", "data", ".git", "bench/results", "__pycache__", ".mypy_cache"}
    required |= {".ruff_cache", ".pytest_cache", ".hypothesis"}
    assert required <= entries, required - entries
    # ... but nothing the image build copies.
    for kw, rest in dockerfile_instructions():
        if kw == "COPY":
            for src in rest.split()[:-1]:
                assert src.rstrip("/") not in entries, src


# ------------------------------------------------------------------ compose
def test_compose_two_nodes_share_postgres_and_redis_but_no_file():
    compose = load_compose()
    services = compose["services"]
    assert isinstance(services, dict)
    nodes = {
        name: svc
        for name, svc in services.items()
        if svc.get("build", {}).get("dockerfile") == "deploy/Dockerfile"
    }
    assert len(nodes) == 2, sorted(nodes)
    assert {"postgres", "redis", "nginx"} <= set(services)
    pg = services["postgres"]
    pg_env = pg["environment"]
    assert "pg_isready" in pg["healthcheck"]["test"]
    (data_dir,) = docker("VOLUME")
    mounts = set()
    urls = set()
    for name, svc in nodes.items():
        env = svc["environment"]
        assert env["CHATSERVER_REDIS_URL"].startswith("redis://redis:"), name
        assert {k for k in env if k.startswith(ENV_PREFIX)} <= setting_env_names()
        # The URL reaches the postgres service with its user, password and database.
        url = env["CHATSERVER_DATABASE_URL"]
        urls.add(url)
        settings = Settings.load({"CHATSERVER_DATABASE_URL": url})
        assert settings.database.kind == "postgresql", name
        expected = (
            f"postgresql://{pg_env['POSTGRES_USER']}:{pg_env['POSTGRES_PASSWORD']}"
            f"@postgres:5432/{pg_env['POSTGRES_DB']}"
        )
        assert url == expected, name
        assert env.get("CHATSERVER_ATTACHMENTS", "database") == "database", name
        assert "CHATSERVER_ATTACHMENTS_DIR" not in env, name
        for needed in ("postgres", "redis"):
            assert svc["depends_on"][needed]["condition"] == "service_healthy", name
        if "command" in svc:
            command = svc["command"]
            argv = command if isinstance(command, list) else shlex.split(command)
            assert set(flags_of(serve_argv(argv))) <= serve_flags()
        (mount,) = [v for v in svc["volumes"] if v.endswith(":" + data_dir.strip('[]" '))]
        mounts.add(mount.split(":")[0])
        context = (COMPOSE.parent / svc["build"]["context"]).resolve()
        assert (context / svc["build"]["dockerfile"]).resolve() == DOCKERFILE.resolve()
    assert len(urls) == 1, "both nodes must use one database"
    assert len(mounts) == 2, f"each node has a data volume of its own: {mounts}"
    assert mounts <= set(compose.get("volumes") or {})
    (pg_volume,) = [v.split(":")[0] for v in pg["volumes"]]
    assert pg_volume in set(compose.get("volumes") or {}) and pg_volume not in mounts

    # nginx mounts compose.conf, whose upstream names exactly the node services.
    nginx = services["nginx"]
    sources = [v.split(":")[0] for v in nginx["volumes"]]
    assert any((COMPOSE.parent / s).resolve() == NGINX_COMPOSE.resolve() for s in sources)
    upstream = nginx_block(NGINX_COMPOSE.read_text(), "upstream chatserver")
    servers = {s.split()[0] for s in directives(upstream, "server")}
    assert servers == {f"{name}:8000" for name in nodes}


# ------------------------------------------------------------------ nginx
@pytest.mark.parametrize("path", [NGINX_SITE, NGINX_COMPOSE], ids=lambda p: p.name)
def test_nginx_proxies_websockets(path):
    text = path.read_text()
    assert re.search(r"map \$http_upgrade \$connection_upgrade\s*\{", text)
    upstream = nginx_block(text, "upstream chatserver")
    assert len(directives(upstream, "server")) >= 2
    assert "client_max_body_size 11m;" in text
    assert re.search(r"gzip_types[^;]*application/javascript", text)
    ws = nginx_block(text, "location /ws/")
    assert directives(ws, "proxy_pass") == ["http://chatserver"]
    assert "proxy_http_version 1.1;" in text
    headers = {h.split()[0]: h.split(None, 1)[1] for h in directives(ws, "proxy_set_header")}
    # proxy_set_header in a location replaces every inherited one: all must be here.
    assert headers["Upgrade"] == "$http_upgrade"
    assert headers["Connection"] == "$connection_upgrade"
    assert headers["Host"] in {"$host", "$http_host"}
    assert {"X-Forwarded-For", "X-Forwarded-Proto"} <= set(headers)
    for name in ("proxy_read_timeout", "proxy_send_timeout"):
        (value,) = directives(ws, name)
        assert value in {"1h", "3600", "3600s", "60m"}, (name, value)


def test_nginx_site_has_tls():
    server_blocks = NGINX_SITE.read_text().split("server {")[1:]
    tls = [b for b in server_blocks if "listen 443 ssl" in b]
    assert tls and "ssl_certificate " in tls[0] and "ssl_certificate_key " in tls[0]


def _nginx_test_config(path: Path, tmp: Path) -> Path:
    """``path`` made loadable anywhere: free ports, local upstreams, a throwaway cert."""
    text = path.read_text()
    text = re.sub(r"^\s*listen \[::\].*\n", "", text, flags=re.M)
    text = re.sub(r"listen (80|443)\b", lambda m: f"listen 127.0.0.1:{free_port()}", text)
    text = re.sub(r"server \w[\w.-]*:(\d+)", r"server 127.0.0.1:\1", text)
    if "ssl_certificate" in text:
        openssl = shutil.which("openssl")
        if openssl is None:
            pytest.skip("openssl not installed (needed for a test certificate)")
        subprocess.run(
            [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
             "-subj", "/CN=chat.example.com",
             "-keyout", str(tmp / "key.pem"), "-out", str(tmp / "cert.pem")],
            capture_output=True, timeout=60, check=True,
        )  # fmt: skip
        text = re.sub(r"ssl_certificate\s+\S+;", f"ssl_certificate {tmp / 'cert.pem'};", text)
        text = re.sub(
            r"ssl_certificate_key\s+\S+;", f"ssl_certificate_key {tmp / 'key.pem'};", text
        )
    (tmp / "site.conf").write_text(text)
    (tmp / "logs").mkdir()
    main = tmp / "nginx.conf"
    main.write_text(
        f"pid {tmp}/nginx.pid;\n"
        f"error_log stderr;\n"
        "events {}\n"
        "http {\n"
        "    access_log off;\n"
        f"    client_body_temp_path {tmp}/body;\n"
        f"    proxy_temp_path {tmp}/proxy;\n"
        f"    include {tmp}/site.conf;\n"
        "}\n"
    )
    return main


@pytest.mark.parametrize("path", [NGINX_SITE, NGINX_COMPOSE], ids=lambda p: p.name)
def test_nginx_t_accepts_the_config(path, tmp_path):
    nginx = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(p).exists()), None
    )
    if nginx is None:
        pytest.skip("nginx not installed")
    main = _nginx_test_config(path, tmp_path)
    done = subprocess.run(
        [nginx, "-t", "-q", "-e", "stderr", "-p", str(tmp_path), "-c", str(main)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
