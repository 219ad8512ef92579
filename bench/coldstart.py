"""Section 3: cold start of the deployment package against a hello-world PynamoDB app.

Run alone: ``python -m bench.coldstart [out.json]``. Both apps are packaged with
``chalice package`` from copies under bench/build/ (the project's own files are not touched),
then given bytecode by the step ``make package`` runs after it (tests/deploy/bytecode.py:
``unchecked-hash`` .pyc, valid whatever mtimes the unzip gives). Each zip is unzipped and started
alternately in bare interpreters (``python -S -B``, no bytecode written) with a "runtime"
folder holding what Lambda's Python runtime provides (boto3, botocore and their dependencies,
compiled as in the runtime image). Each start imports ``app`` and answers one API Gateway event
whose handler does one GetItem against a loopback stub of DynamoDB (and, for our app, the SSM
read of the management keys, as deployed). Variants: sources only (``chalice package`` alone);
with bytecode (ours: what ``make package`` ships); each without the packages the runtime
already has. The goal compares ours as shipped with the hello-world app as chalice packages it.
"""

from __future__ import annotations

import compileall
import importlib.util
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from bench import emit

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "bench" / "build"
CHILD = ROOT / "bench" / "coldchild.py"
RUNS = 11
PROBE_RUNS = 9
REGION = "us-east-1"
KEYS_PARAMETER = "/bench/management-keys"
STUB_KEY = "bench-primary-key"
# What Lambda's Python runtime already has on its path (boto3 and its dependencies).
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six", "urllib3")
RUNTIME_DISTS = ("boto3", "botocore", "s3transfer", "jmespath", "python_dateutil", "six", "urllib3")
APP_FILES = ("app.py", "chalicelib", "requirements.txt", "templates", "vendor")


@dataclass(frozen=True)
class Variant:
    name: str
    slim: bool
    bytecode: bool
    what: str


SOURCES = "sources only"
SHIPPED = "+ bytecode"
VARIANTS = (
    Variant(SOURCES, False, False, "chalice package output, unchanged: no .pyc"),
    Variant(
        SHIPPED,
        False,
        True,
        "unchecked-hash .pyc for every module (tests/deploy/bytecode.py); ours: make package",
    ),
    Variant("- runtime packages", True, False, "boto3, botocore & deps left to Lambda's runtime"),
    Variant("both", True, True, "bytecode added and runtime packages left out"),
)


# -- packaging ---------------------------------------------------------------------------------


def _copy_app(dest: Path) -> None:
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in APP_FILES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, dest / name, symlinks=True, ignore=ignore)
        elif source.exists():
            shutil.copy2(source, dest / name)
    chalice_dir = dest / ".chalice"
    chalice_dir.mkdir()
    for entry in (ROOT / ".chalice").iterdir():
        if entry.is_file():
            shutil.copy2(entry, chalice_dir / entry.name)
    if not (dest / "requirements.txt").exists():
        # Without it chalice would vendor nothing; the dependencies are pyproject's.
        import tomllib

        project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
        wanted = [d for d in project["dependencies"] if not d.startswith("chalice")]
        (dest / "requirements.txt").write_text("\n".join(wanted) + "\n")


def _copy_hello(dest: Path) -> None:
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(ROOT / "bench" / "hello", dest, ignore=shutil.ignore_patterns("__pycache__"))


def _chalice_package(source: Path, stages: tuple[str, ...], out: Path) -> tuple[Path, str]:
    chalice = Path(sys.executable).parent / "chalice"
    errors = []
    for stage in stages:
        shutil.rmtree(out, ignore_errors=True)
        done = subprocess.run(
            [str(chalice), "package", "--stage", stage, str(out)],
            cwd=source,
            capture_output=True,
            text=True,
            env={**os.environ, "AWS_DEFAULT_REGION": REGION},
        )
        if done.returncode == 0:
            return out / "deployment.zip", stage
        errors.append(f"--stage {stage}: {done.stderr.strip()[-500:]}")
    raise RuntimeError("chalice package failed: " + " | ".join(errors))


def _unzip(archive: Path, dest: Path) -> None:
    shutil.rmtree(dest, ignore_errors=True)
    with zipfile.ZipFile(archive) as zipped:
        zipped.extractall(dest)


def _zip(folder: Path, archive: Path) -> int:
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zipped.write(path, path.relative_to(folder))
    return archive.stat().st_size


def _folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _is_runtime_provided(name: str) -> bool:
    stem = name.removesuffix(".py")
    if stem in RUNTIME_PACKAGES:
        return True
    return any(re.match(rf"{dist}-[\d.]+.*\.(dist-info|data)$", name) for dist in RUNTIME_DISTS)


def _with_bytecode(archive: Path, dest: Path) -> Path:
    """A copy of ``archive`` with the bytecode ``make package`` adds (tests/deploy/bytecode.py)."""
    from tests.deploy.bytecode import add_bytecode

    shutil.copy2(archive, dest)
    add_bytecode(dest)
    return dest


def _variant(unpacked: Path, variant: Variant, dest: Path, archive: Path) -> dict[str, Any]:
    """``unpacked`` (the zip of the variant's bytecode setting) less what the runtime has."""
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(unpacked, dest, symlinks=True)
    for entry in list(dest.iterdir()):
        if _is_runtime_provided(entry.name):
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    return {"zip_bytes": _zip(dest, archive), "unpacked_bytes": _folder_size(dest)}


def _runtime(dest: Path) -> Path:
    """boto3, botocore and their dependencies from this venv, compiled like the runtime's."""
    if dest.exists():
        return dest
    dest.mkdir(parents=True)
    for name in RUNTIME_PACKAGES:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            continue
        source = Path(spec.origin)
        if source.name == "__init__.py":
            shutil.copytree(
                source.parent, dest / name, ignore=shutil.ignore_patterns("__pycache__")
            )
        else:
            shutil.copy2(source, dest / source.name)
    compileall.compile_dir(str(dest), quiet=2)
    return dest


# -- the stub endpoint and the events ----------------------------------------------------------


def _user_item() -> dict[str, Any]:
    """A stored user, in the exact shape our store layer writes (also enough for hello's model)."""
    from chalicelib.domain.etag import next_version
    from chalicelib.domain.users import Identity, User, UserState
    from chalicelib.store.users import _to_item

    now = datetime(2026, 1, 1, tzinfo=UTC)
    user = User(
        id="ada",
        email="ada@example.com",
        first_name="Ada",
        last_name="Lovelace",
        state=UserState.ACTIVE,
        note=None,
        registration_date=now,
        identities=(Identity("Basic", "ada@example.com"),),
        version=next_version(0, now),
        password_hash=None,
        token_epoch="0123456789abcdef",
    )
    return _to_item(user).serialize()


@contextmanager
def stub_endpoint() -> Iterator[int]:
    """Answers DynamoDB GetItem with one user, and SSM GetParameter with the management keys."""
    item = json.dumps({"Item": _user_item()}).encode()
    keys = json.dumps({"primary": STUB_KEY, "secondary": STUB_KEY + "-2"})
    parameter = json.dumps(
        {"Parameter": {"Name": KEYS_PARAMETER, "Type": "SecureString", "Value": keys}}
    ).encode()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            target = self.headers.get("X-Amz-Target", "")
            status, body = 400, b'{"__type": "UnknownOperationException"}'
            if target.endswith(".GetItem"):
                status, body = 200, item
            elif target.endswith(".GetParameter"):
                status, body = 200, parameter
            self.send_response(status)
            self.send_header("Content-Type", "application/x-amz-json-1.1")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("x-amzn-RequestId", "stub")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def _event(
    resource: str, path: str, params: dict[str, str], query: dict[str, str], auth: str
) -> Any:
    headers = {"Host": "cold.example.com", "Accept": "application/json"}
    if auth:
        headers["Authorization"] = auth
    return {
        "resource": resource,
        "path": path,
        "httpMethod": "GET",
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": query or None,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} or None,
        "pathParameters": params,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": resource,
            "httpMethod": "GET",
            "path": "/api" + path,
            "stage": "api",
            "requestId": "cold-start-request",
            "identity": {"sourceIp": "127.0.0.1"},
        },
        "body": None,
        "isBase64Encoded": False,
    }


def _stage_environment(source: Path, stage: str) -> dict[str, str]:
    config = json.loads((source / ".chalice" / "config.json").read_text())
    variables = dict(config.get("environment_variables", {}))
    variables.update(config["stages"].get(stage, {}).get("environment_variables", {}))
    return {k: str(v) for k, v in variables.items()}


def _launch_specs(app_source: Path, stage: str, port: int) -> dict[str, dict[str, Any]]:
    from chalicelib.api.routing import ARM_PREFIX
    from chalicelib.domain.sas import management_token

    base = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_LAMBDA_FUNCTION_NAME": "cold-start",
    }
    ours = {**base, **_stage_environment(app_source, stage)}
    key = ours.get("APIM_PRIMARY_KEY", "")
    if not key:
        # As deployed: the keys come from SSM (answered by the stub).
        ours["APIM_KEYS_PARAMETER"] = KEYS_PARAMETER
        key = STUB_KEY
    instance = {
        "subscriptionId": ours.get("APIM_SUBSCRIPTION_ID", "00000000-0000-0000-0000-000000000000"),
        "resourceGroupName": ours.get("APIM_RESOURCE_GROUP", "local"),
        "serviceName": ours.get("APIM_SERVICE_NAME", "local"),
    }
    resource = ARM_PREFIX + "/users/{userId}"
    path = resource.format(**instance, userId="ada")
    expiry = datetime.now(UTC) + timedelta(hours=2)
    token = management_token(ours.get("APIM_ACCESS_ID", "integration"), expiry, key)
    our_event = _event(
        resource,
        path,
        {**instance, "userId": "ada"},
        {"api-version": "2024-05-01"},
        "SharedAccessSignature " + token,
    )
    hello_event = _event("/users/{user_id}", "/users/ada", {"user_id": "ada"}, {}, "")
    return {
        "hello": {"env": base, "event": hello_event},
        "ours": {"env": ours, "event": our_event},
    }


# -- measuring ---------------------------------------------------------------------------------


def _start(app_dir: Path, runtime: Path, launch: dict[str, Any], *flags: str) -> dict[str, Any]:
    spec = json.dumps(
        {"app_dir": str(app_dir), "runtime_dir": str(runtime), "event": launch["event"]}
    )
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-S", "-B", *flags, str(CHILD), spec],
        capture_output=True,
        text=True,
        env=launch["env"],
        cwd=BUILD,
    )
    wall = (time.perf_counter() - started) * 1000
    if done.returncode != 0:
        raise RuntimeError(f"cold start of {app_dir} failed: {done.stderr[-2000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if result["status"] != 200:
        raise RuntimeError(f"cold start of {app_dir} answered {result['status']}: {done.stdout}")
    result["process_ms"] = wall
    result["stderr"] = done.stderr
    return result


def _importtime(app_dir: Path, runtime: Path, launch: dict[str, Any]) -> list[dict[str, Any]]:
    """The biggest top-level imports of one start (import and first request), by -X importtime."""
    result = _start(app_dir, runtime, launch, "-X", "importtime")
    top = []
    for line in result["stderr"].splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \| (\s*)(\S+)", line)
        if match and not match.group(3):
            top.append({"module": match.group(4), "cumulative_ms": int(match.group(2)) / 1000})
    top.sort(key=lambda m: -m["cumulative_ms"])
    return top[:12]


# chalicelib/keys.py's SSM client as it was made (boto3) and as it is (botocore alone): the import
# alone, then what the first request pays: the SSM client (the token check comes first), then
# PynamoDB's DynamoDB client, which imports botocore's client machinery in either case.
_DYNAMODB = "from pynamodb.connection import Connection; Connection(region=REGION).client"
SSM_PROBES = {
    "import boto3": "import boto3",
    "import botocore.session": "import botocore.session",
    "boto3 SSM client + DynamoDB client": (
        f"import boto3; boto3.client('ssm', region_name=REGION); {_DYNAMODB}"
    ),
    "botocore SSM client + DynamoDB client": (
        "from botocore.session import get_session; "
        f"get_session().create_client('ssm', region_name=REGION); {_DYNAMODB}"
    ),
    # What hello's first request makes: the difference is what the SSM client costs us.
    "DynamoDB client alone": _DYNAMODB,
    # Not how the code does it: the SSM client made from the botocore session PynamoDB made,
    # which has loaded the list of services and the endpoint data once already.
    "SSM client from PynamoDB's session + DynamoDB client": (
        "from pynamodb.connection import Connection; c = Connection(region=REGION); c.client; "
        "c.session.create_client('ssm', region_name=REGION)"
    ),
}


def _probe(app_dir: Path, runtime: Path, code: str, env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU milliseconds of ``code`` in a fresh bare interpreter on the package's path."""
    program = (
        "import sys, time; sys.path[:0] = [sys.argv[1], sys.argv[2]]; REGION = sys.argv[3]\n"
        "_wall, _cpu = time.perf_counter(), time.process_time()\n"
        f"{code}\n"
        "print((time.perf_counter() - _wall) * 1000, (time.process_time() - _cpu) * 1000)"
    )
    done = subprocess.run(
        [sys.executable, "-S", "-B", "-c", program, str(app_dir), str(runtime), REGION],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        cwd=BUILD,
    )
    wall, cpu = done.stdout.split()
    return float(wall), float(cpu)


def _ssm_client_cost(app_dir: Path, runtime: Path, env: dict[str, str]) -> dict[str, Any]:
    """Medians of SSM_PROBES, interleaved; and what boto3 adds over botocore alone."""
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in SSM_PROBES}
    for _ in range(PROBE_RUNS):
        for name, code in SSM_PROBES.items():
            samples[name].append(_probe(app_dir, runtime, code, env))
    figures = {
        name: {
            "ms": round(statistics.median(w for w, _ in runs), 1),
            "cpu_ms": round(statistics.median(c for _, c in runs), 1),
        }
        for name, runs in samples.items()
    }

    def extra(boto3: str, botocore: str) -> dict[str, float]:
        return {
            key: round(figures[boto3][key] - figures[botocore][key], 1) for key in ("ms", "cpu_ms")
        }

    return {
        **figures,
        "boto3_extra_import": extra("import boto3", "import botocore.session"),
        "boto3_extra_first_request": extra(
            "boto3 SSM client + DynamoDB client", "botocore SSM client + DynamoDB client"
        ),
        "botocore_ssm_client": extra(
            "botocore SSM client + DynamoDB client", "DynamoDB client alone"
        ),
        "shared_session_saving": extra(
            "botocore SSM client + DynamoDB client",
            "SSM client from PynamoDB's session + DynamoDB client",
        ),
    }


def _median(samples: list[dict[str, Any]], key: str) -> float:
    return round(statistics.median(s[key] for s in samples), 1)


def _goal(
    ours_dir: Path, hello_dir: Path, runtime: Path, launches: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """The goal's two packages started back to back in pairs (order alternated), so that both
    halves of a pair meet the same machine load; the ratio is also taken pair by pair."""
    pairs = []
    for i in range(RUNS):
        order = ("hello", "ours") if i % 2 == 0 else ("ours", "hello")
        pair = {
            app: _start(ours_dir if app == "ours" else hello_dir, runtime, launches[app])
            for app in order
        }
        pairs.append(
            {
                app: (
                    r["import_ms"] + r["first_request_ms"],
                    r["import_cpu_ms"] + r["first_request_cpu_ms"],
                )
                for app, r in pair.items()
            }
        )

    def median(values: Iterator[float]) -> float:
        return round(statistics.median(values), 1)

    figures: dict[str, Any] = {
        "what": "import + first request, ours as make package ships it (+ bytecode) over hello "
        "as chalice packages it (sources only), started in pairs; goal at most 1.0",
        "pairs": RUNS,
    }
    for key, index in (("", 0), ("_cpu", 1)):
        ours = median(p["ours"][index] for p in pairs)
        hello = median(p["hello"][index] for p in pairs)
        figures[f"ours{key}_ms"], figures[f"hello{key}_ms"] = ours, hello
        figures[f"ratio{key}"] = round(ours / hello, 3)
        figures[f"paired_ratio{key}"] = round(
            statistics.median(p["ours"][index] / p["hello"][index] for p in pairs), 3
        )
    return figures


def run() -> dict[str, Any]:
    started = time.perf_counter()
    BUILD.mkdir(parents=True, exist_ok=True)
    app_source, hello_source = BUILD / "src" / "app", BUILD / "src" / "hello"
    _copy_app(app_source)
    _copy_hello(hello_source)
    our_zip, stage = _chalice_package(app_source, ("prod", "local"), BUILD / "out" / "app")
    hello_zip, _ = _chalice_package(hello_source, ("dev",), BUILD / "out" / "hello")
    from botocore import __version__ as botocore_version

    runtime = _runtime(BUILD / f"runtime-botocore-{botocore_version}")
    packages = {"ours": our_zip, "hello": hello_zip}
    sizes: dict[str, dict[str, Any]] = {}
    folders: dict[tuple[str, str], Path] = {}
    for app, archive in packages.items():
        zips = {False: archive, True: _with_bytecode(archive, BUILD / "out" / f"{app}-pyc.zip")}
        for variant in VARIANTS:
            slug = re.sub(r"[^a-z]+", "-", variant.name).strip("-")
            dest = BUILD / "unpacked" / app / slug
            if variant.slim:
                whole = folders[(SHIPPED if variant.bytecode else SOURCES, app)]
                size = _variant(whole, variant, dest, BUILD / "out" / f"{app}-{slug}.zip")
            else:
                chosen = zips[variant.bytecode]
                _unzip(chosen, dest)
                size = {"zip_bytes": chosen.stat().st_size, "unpacked_bytes": _folder_size(dest)}
            sizes.setdefault(variant.name, {})[app] = size
            folders[(variant.name, app)] = dest
    built = time.perf_counter() - started

    results: dict[str, Any] = {}
    with stub_endpoint() as port:
        launches = _launch_specs(app_source, stage, port)
        # Where the time goes in what the goal compares: ours as shipped, hello as packaged.
        profile = {
            "ours": _importtime(folders[(SHIPPED, "ours")], runtime, launches["ours"]),
            "hello": _importtime(folders[(SOURCES, "hello")], runtime, launches["hello"]),
        }
        for variant in VARIANTS:
            samples: dict[str, list[dict[str, Any]]] = {"ours": [], "hello": []}
            for app in samples:  # one discarded start each: the page cache
                _start(folders[(variant.name, app)], runtime, launches[app])
            for i in range(RUNS):
                for app in ("hello", "ours") if i % 2 == 0 else ("ours", "hello"):
                    sample = _start(folders[(variant.name, app)], runtime, launches[app])
                    sample["total_ms"] = sample["import_ms"] + sample["first_request_ms"]
                    sample["total_cpu_ms"] = (
                        sample["import_cpu_ms"] + sample["first_request_cpu_ms"]
                    )
                    samples[app].append(sample)
            figures = {
                app: {
                    "import_ms": _median(runs, "import_ms"),
                    "first_request_ms": _median(runs, "first_request_ms"),
                    "import_and_first_request_ms": _median(runs, "total_ms"),
                    "import_cpu_ms": _median(runs, "import_cpu_ms"),
                    "import_and_first_request_cpu_ms": _median(runs, "total_cpu_ms"),
                    "process_ms": _median(runs, "process_ms"),
                    "peak_rss_mib": round(_median(runs, "peak_rss_kib") / 1024, 1),
                    "modules_after_import": runs[0]["modules_after_import"],
                    "modules_after_request": runs[0]["modules_after_request"],
                    **sizes[variant.name][app],
                }
                for app, runs in samples.items()
            }
            ours, hello = figures["ours"], figures["hello"]
            results[variant.name] = {
                "what": variant.what,
                "ours": ours,
                "hello": hello,
                "ratio_import": round(ours["import_ms"] / hello["import_ms"], 3),
                "ratio_import_and_first_request": round(
                    ours["import_and_first_request_ms"] / hello["import_and_first_request_ms"], 3
                ),
                "ratio_process": round(ours["process_ms"] / hello["process_ms"], 3),
                "ratio_import_cpu": round(ours["import_cpu_ms"] / hello["import_cpu_ms"], 3),
                "ratio_import_and_first_request_cpu": round(
                    ours["import_and_first_request_cpu_ms"]
                    / hello["import_and_first_request_cpu_ms"],
                    3,
                ),
            }
        goal = _goal(folders[(SHIPPED, "ours")], folders[(SOURCES, "hello")], runtime, launches)
        probe_env = launches["ours"]["env"]
        ssm_client = {
            name: _ssm_client_cost(folders[(name, "ours")], runtime, probe_env)
            for name in (SOURCES, SHIPPED)
        }
    return {
        "stage_packaged": stage,
        "goal": goal,
        "ssm_client": ssm_client,
        "runs_per_app": RUNS,
        "build_seconds": round(built, 1),
        "variants": results,
        "importtime_top_shipped": profile,
    }


def main() -> None:
    emit(run())


if __name__ == "__main__":
    main()
