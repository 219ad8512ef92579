"""The prod package: ``chalice package`` with the merge template, cfn-lint, and the zip on its own.

The package is built once per test run (shared by the xdist workers) from a copy of the files
that make it, so a build never reuses a zip cached in the checkout's .chalice/deployments/.
"""

from __future__ import annotations

import fcntl
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.deploy import bytecode
from tests.deploy.stack import API_HANDLER, PARAMETERS

# The package is built once a run, by the first worker to need it (``_once``); the other waits
# for it. (pytest-xdist 3.8's xdist_group no longer groups anything under pytest 9.2: it renames
# an attribute pytest 9 has stopped reading.)
pytestmark = pytest.mark.deploy

PROJECT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
MERGE_TEMPLATE = ".chalice/prod-resources.json"
# Everything chalice package reads: the app, the templates (through vendor/), the dependencies.
PACKAGE_INPUTS = (
    "app.py",
    "chalicelib",
    "templates",
    "vendor",
    "requirements.txt",
    ".chalice/config.json",
    ".chalice/policy-prod.json",
    ".chalice/policy-prod-sweep.json",
    ".chalice/policy-prod-outbox-relay.json",
    MERGE_TEMPLATE,
)
REGION, ACCOUNT = "us-east-1", "123456789012"
# The values a deployment would give the stack's parameters (the others keep their default).
PARAMETER_VALUES = {
    "PortalUrl": "https://developer.contoso.example",
    "SenderEmail": "noreply@contoso.example",
    "KeysKmsKeyArn": f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab",
}
# The only IAM resources allowed to hold a wildcard, in which statement, and why.
WILDCARD_EXCEPTIONS = {
    # Fn::GetAtt of a log group is "arn:...:log-group:<name>:*": the streams of that one group,
    # whose names Lambda chooses; CreateLogStream and PutLogEvents act on those streams.
    "log streams of the functions' own log groups": (
        "Logs",
        re.compile(rf"^arn:aws:logs:{REGION}:{ACCOUNT}:log-group:[^:*]+:\*$"),
    ),
    # ses:GetAccount reads the account's own sending quota and has no resource to name.
    "the account's send rate": ("ReadSendRate", re.compile(r"^\*$")),
    # ListStreams names no stream: it is scoped to the streams of the outbox table.
    "the outbox table's streams": (
        "ListOutboxStreams",
        re.compile(rf"^arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/[^/*]+/stream/\*$"),
    ),
}
# The statements of each function's policy.
POLICY_SIDS = {
    API_HANDLER: {"Tables", "Indexes", "ReadKeys", "DecryptKeys", "Logs"},
    "SubscriptionKeyAuthorizer": {"Tables", "Indexes", "ReadKeys", "DecryptKeys", "Logs"},
    "Sweep": {"Tables", "Indexes", "SendMail", "ReadSendRate", "Logs"},
    "OutboxRelay": {
        "Tables",
        "Indexes",
        "SendMail",
        "ReadSendRate",
        "ReadOutboxStream",
        "ListOutboxStreams",
        "RelayFailures",
        "Logs",
    },
}
# Regexes over chalicelib/store: the PynamoDB calls the code makes, as IAM actions. A tripwire for
# a new kind of call (a Scan, a ConditionCheck), not a proof.
STORE_CALLS = {
    r"\b[A-Z]\w*Item\.get\(|\.refresh\(|\bTransactGet\b": "dynamodb:GetItem",
    r"\.batch_get\(": "dynamodb:BatchGetItem",
    r"\.query\(|\.count\(": "dynamodb:Query",
    r"\.scan\(": "dynamodb:Scan",
    r"\.save\(": "dynamodb:PutItem",
    r"\.update\(": "dynamodb:UpdateItem",
    r"\.delete\(": "dynamodb:DeleteItem",
    r"\.batch_write\(": "dynamodb:BatchWriteItem",
    r"\.condition_check\(": "dynamodb:ConditionCheckItem",
}
LAMBDA_UNZIPPED_LIMIT = 250 * 1024 * 1024


# --- building once per run -----------------------------------------------------------------


@contextmanager
def _exclusive(lock: Path) -> Iterator[None]:
    with lock.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _once(factory: pytest.TempPathFactory, name: str, make: Callable[[Path], None]) -> Path:
    """``make(folder)`` once per test run, whichever xdist worker gets there first."""
    base = factory.getbasetemp()
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    folder = root / name
    with _exclusive(root / f"{name}.lock"):
        if not (folder / "done").exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            make(folder)
            (folder / "done").touch()
    return folder


def _build(folder: Path) -> None:
    project = folder / "project"
    for name in PACKAGE_INPUTS:
        source, target = PROJECT / name, project / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir() and not source.is_symlink():
            ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
            shutil.copytree(source, target, symlinks=True, ignore=ignore)
        else:
            shutil.copy2(source, target, follow_symlinks=False)
    env = {**os.environ, "AWS_DEFAULT_REGION": REGION}
    env.pop("AWS_ENDPOINT_URL", None)
    started = time.monotonic()
    result = subprocess.run(
        [
            str(BIN / "chalice"),
            "--project-dir",
            str(project),
            "package",
            "--stage",
            "prod",
            "--merge-template",
            str(project / MERGE_TEMPLATE),
            str(folder / "out"),
        ],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # The step `make package` runs next: bytecode into the zip (tests/deploy/bytecode.py).
    result = subprocess.run(
        [sys.executable, "-m", "tests.deploy.bytecode", str(folder / "out")],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (folder / "seconds").write_text(f"{time.monotonic() - started:.1f}")


@pytest.fixture(scope="session")
def built(tmp_path_factory) -> Path:
    return _once(tmp_path_factory, "prod-package", _build) / "out"


@pytest.fixture(scope="session")
def template(built) -> dict[str, Any]:
    return json.loads((built / "sam.json").read_text())


def _resources(template: dict[str, Any], kind: str) -> dict[str, Any]:
    return {k: v for k, v in template["Resources"].items() if v.get("Type") == kind}


def _physical_name(logical: str) -> str:
    """A name like the one CloudFormation gives a resource it names itself."""
    return f"apim-users-prod-{logical}-1A2B3C4D5E6F"


def _parameter_value(template: dict[str, Any], name: str) -> str:
    return PARAMETER_VALUES.get(name, template["Parameters"][name].get("Default", ""))


def _function_environment(template: dict[str, Any]) -> dict[str, str]:
    """The API function's variables, with each Ref resolved as CloudFormation would."""
    resolved = {}
    for name, value in template["Resources"][API_HANDLER]["Properties"]["Environment"][
        "Variables"
    ].items():
        if isinstance(value, str):
            resolved[name] = value
        else:
            assert set(value) == {"Ref"}, (name, value)
            target = value["Ref"]
            if target in template["Parameters"]:
                resolved[name] = _parameter_value(template, target)
            else:
                resolved[name] = _physical_name(target)
    return resolved


def _probe(template: dict[str, Any], built: Path, folder: Path) -> None:
    unzipped = folder / "unzipped"
    unzipped.mkdir()
    with zipfile.ZipFile(built / "deployment.zip") as archive:
        archive.extractall(unzipped)
    # Bytecode on, as in Lambda: no -B and no PYTHONDONTWRITEBYTECODE. A module whose .pyc were
    # missing or stale would be compiled (zip_probe.py records it) and its .pyc written.
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        **_function_environment(template),
    }
    probe_source = (Path(__file__).parent / "zip_probe.py").read_text()
    result = subprocess.run(
        [sys.executable, "-S", "-c", probe_source, sysconfig.get_paths()["purelib"]],
        cwd=unzipped,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    with zipfile.ZipFile(built / "deployment.zip") as archive:
        shipped = set(archive.namelist())
    on_disk = {str(p.relative_to(unzipped)) for p in unzipped.rglob("*") if p.is_file()}
    report["written"] = sorted(on_disk - shipped)
    (folder / "report.json").write_text(json.dumps(report))


@pytest.fixture(scope="session")
def probe(tmp_path_factory, built, template) -> dict[str, Any]:
    folder = _once(tmp_path_factory, "prod-probe", lambda f: _probe(template, built, f))
    return json.loads((folder / "report.json").read_text())


# --- resolving the template's intrinsic functions, for the IAM checks ----------------------


def _arn(template: dict[str, Any], logical: str) -> str:
    kind = template["Resources"][logical]["Type"]
    name = _physical_name(logical)
    if kind == "AWS::DynamoDB::Table":
        return f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}"
    if kind == "AWS::Logs::LogGroup":
        return f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{name}:*"
    if kind == "AWS::SQS::Queue":
        return f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"
    raise AssertionError(f"no Arn for {kind}")


def _stream_arn(template: dict[str, Any], logical: str) -> str:
    assert template["Resources"][logical]["Properties"]["StreamSpecification"]
    return f"{_arn(template, logical)}/stream/2026-12-01T00:00:00.000"


def _resolve(template: dict[str, Any], value: Any) -> Any:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return [_resolve(template, v) for v in value]
    ((function, argument),) = value.items()
    pseudo = {"AWS::Partition": "aws", "AWS::Region": REGION, "AWS::AccountId": ACCOUNT}
    if function == "Ref":
        if argument in pseudo:
            return pseudo[argument]
        if argument in template["Parameters"]:
            return _parameter_value(template, argument)
        return _physical_name(argument)
    if function == "Fn::GetAtt":
        if argument[1] == "StreamArn":
            return _stream_arn(template, argument[0])
        assert argument[1] == "Arn", argument
        return _arn(template, argument[0])
    if function == "Fn::Sub":
        text, names = (argument, {}) if isinstance(argument, str) else argument

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in names:
                return _resolve(template, names[name])
            if name.endswith(".Arn"):
                return _arn(template, name[: -len(".Arn")])
            return _resolve(template, {"Ref": name})

        return re.sub(r"\$\{([^}]+)\}", substitute, text)
    if function == "Fn::Select":
        return _resolve(template, argument[1])[argument[0]]
    if function == "Fn::Split":
        return _resolve(template, argument[1]).split(argument[0])
    raise AssertionError(f"unexpected {function}")


def _statements(template: dict[str, Any], role: str | None = None) -> list[dict[str, Any]]:
    """Every IAM statement of the template (or of one role), both branches of an Fn::If,
    intrinsics resolved."""
    documents = []
    for name, found_role in _resources(template, "AWS::IAM::Role").items():
        if role is None or name == role:
            documents += [p["PolicyDocument"] for p in found_role["Properties"].get("Policies", [])]
    if role is None:
        for kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            documents += [
                p["Properties"]["PolicyDocument"] for p in _resources(template, kind).values()
            ]
    found = []
    for document in documents:
        for statement in document["Statement"]:
            if "Fn::If" in statement:
                branches = [b for b in statement["Fn::If"][1:] if b != {"Ref": "AWS::NoValue"}]
            else:
                branches = [statement]
            for branch in branches:
                resolved = dict(branch)
                for key in ("Action", "Resource"):
                    items = _resolve(template, branch[key])
                    resolved[key] = items if isinstance(items, list) else [items]
                resolved["Condition"] = _resolve_condition(template, branch.get("Condition"))
                found.append(resolved)
    return found


def _resolve_condition(template: dict[str, Any], condition: Any) -> Any:
    if condition is None:
        return None
    return {
        operator: {key: _resolve(template, value) for key, value in pairs.items()}
        for operator, pairs in condition.items()
    }


def _role_of(template: dict[str, Any], function: str) -> str:
    return template["Resources"][function]["Properties"]["Role"]["Fn::GetAtt"][0]


def _by_sid(template: dict[str, Any], function: str) -> dict[str, dict[str, Any]]:
    """One function's statements by Sid (each Sid once)."""
    statements = _statements(template, _role_of(template, function))
    merged = {s.get("Sid"): s for s in statements}
    assert len(merged) == len(statements), [s.get("Sid") for s in statements]
    return merged


# --- the tests -----------------------------------------------------------------------------


def test_generated_deployment_files_are_current():
    # A fresh process: the models' declared table names, not names a test bound them to.
    result = subprocess.run(
        [sys.executable, "-m", "tests.deploy.stack", "--check"],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_templates_reach_the_package_through_a_vendor_link():
    link = PROJECT / "vendor" / "templates"
    assert link.is_symlink() and os.readlink(link) == "../templates"


def test_cfn_lint_reports_nothing(built):
    result = subprocess.run(
        [str(BIN / "cfn-lint"), str(built / "sam.json")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_every_table_is_on_demand_protected_and_recoverable(template):
    tables = _resources(template, "AWS::DynamoDB::Table")
    assert {"UsersTable", "EmailLocksTable", "LinksTable", "OutboxTable"} <= set(tables)
    for name, table in tables.items():
        properties = table["Properties"]
        assert properties["BillingMode"] == "PAY_PER_REQUEST", name
        assert properties["PointInTimeRecoverySpecification"] == {
            "PointInTimeRecoveryEnabled": True
        }, name
        assert properties["DeletionProtectionEnabled"] is True, name
        assert (table["DeletionPolicy"], table["UpdateReplacePolicy"]) == ("Retain", "Retain")
        assert "TableName" not in properties, "CloudFormation names tables; functions get Refs"
    # Token (link) and outbox items are collected by TTL.
    for name in ("LinksTable", "OutboxTable"):
        ttl = tables[name]["Properties"]["TimeToLiveSpecification"]
        assert ttl == {"AttributeName": "purge_at", "Enabled": True}


def test_every_model_has_its_table_in_the_template(template, probe):
    """Tables as the unzipped code creates them from its models, against the template's."""
    tables = _resources(template, "AWS::DynamoDB::Table")
    logical_of = {_physical_name(name): name for name in tables}
    used = set()
    for model, created in probe["tables"].items():
        name = logical_of.get(created["TableName"])
        assert name, f"{model}: its table {created['TableName']!r} is not in the template"
        used.add(name)
        properties = tables[name]["Properties"]

        def keys(schema: list[dict[str, str]]) -> set[tuple[str, str]]:
            return {(k["AttributeName"], k["KeyType"]) for k in schema}

        assert keys(properties["KeySchema"]) == keys(created["KeySchema"]), model
        assert properties["KeySchema"][0]["KeyType"] == "HASH"
        assert sorted(properties["AttributeDefinitions"], key=str) == sorted(
            created["AttributeDefinitions"], key=str
        ), model
        expected = {
            i["IndexName"]: (keys(i["KeySchema"]), i["Projection"]["ProjectionType"])
            for i in created["GlobalSecondaryIndexes"]
        }
        declared = {
            i["IndexName"]: (keys(i["KeySchema"]), i["Projection"]["ProjectionType"])
            for i in properties.get("GlobalSecondaryIndexes", [])
        }
        assert declared == expected, model
        ttl = properties.get("TimeToLiveSpecification", {}).get("AttributeName")
        assert ttl == created["TTL"], model
        stream = properties.get("StreamSpecification", {}).get("StreamViewType")
        assert stream == (created["Stream"] or {}).get("StreamViewType"), model
    assert used == set(tables), f"tables no model uses: {set(tables) - used}"


def test_functions_get_every_table_name_from_a_ref(template):
    tables = set(_resources(template, "AWS::DynamoDB::Table"))
    functions = _resources(template, "AWS::Serverless::Function")
    assert {API_HANDLER, "Sweep", "OutboxRelay"} <= set(functions)
    for name, function in functions.items():
        variables = function["Properties"]["Environment"]["Variables"]
        refs = {k: v["Ref"] for k, v in variables.items() if k.endswith("_TABLE")}
        assert set(refs.values()) == tables, name
        assert all(variables[k] == {"Ref": v} for k, v in refs.items()), name
        assert "TABLE_PREFIX" not in variables, name
        assert variables["APIM_KEYS_PARAMETER"] == {"Ref": "KeysParameterName"}, name
        assert variables["SENDER_EMAIL"] == {"Ref": "SenderEmail"}, name
        assert variables["PORTAL_URL"] == {"Ref": "PortalUrl"}, name
        assert variables["PUBLIC_BASE_URL"] == {"Ref": "PortalUrl"}, name
        assert "APIM_PRIMARY_KEY" not in variables and "APIM_SECONDARY_KEY" not in variables
        assert function["Properties"]["Runtime"] == "python3.11"
        assert function["Properties"]["LoggingConfig"] == {"LogGroup": {"Ref": f"{name}LogGroup"}}
        role = function["Properties"]["Role"]["Fn::GetAtt"][0]
        assert template["Resources"][role]["Type"] == "AWS::IAM::Role"
    assert set(template["Parameters"]) == set(PARAMETERS)


def test_the_sweep_runs_every_hour(template):
    sweep = template["Resources"]["Sweep"]["Properties"]
    assert sweep["Handler"] == "app.sweep"
    events = list(sweep["Events"].values())
    assert events == [{"Type": "Schedule", "Properties": {"Schedule": "rate(1 hour)"}}]


def test_iam_is_least_privilege(template):
    statements = _statements(template)
    assert statements
    for statement in statements:
        assert statement["Effect"] == "Allow" and "NotAction" not in statement
        assert "NotResource" not in statement
        for action in statement["Action"]:
            assert "*" not in action, statement
        for resource in statement["Resource"]:
            if "*" in resource:
                reasons = [
                    reason
                    for reason, (sid, pattern) in WILDCARD_EXCEPTIONS.items()
                    if statement.get("Sid") == sid and pattern.match(resource)
                ]
                assert reasons, f"wildcard resource {resource} in {statement['Sid']}"
    assert not any(
        r["Properties"].get("ManagedPolicyArns")
        for r in _resources(template, "AWS::IAM::Role").values()
    )
    assert "DefaultRole" not in template["Resources"], "the prod stage sets autogen_policy false"

    functions = _resources(template, "AWS::Serverless::Function")
    assert set(functions) == set(POLICY_SIDS)
    # Each function has a role of its own.
    assert len({_role_of(template, f) for f in functions}) == len(functions)
    tables = _resources(template, "AWS::DynamoDB::Table")
    indexes = {
        f"{_arn(template, name)}/index/{index['IndexName']}"
        for name, table in tables.items()
        for index in table["Properties"].get("GlobalSecondaryIndexes", [])
    }
    sender = PARAMETER_VALUES["SenderEmail"]
    identity = f"arn:aws:ses:{REGION}:{ACCOUNT}:identity/"
    parameter = PARAMETERS["KeysParameterName"]["Default"]
    log_groups = {}
    for function, expected in POLICY_SIDS.items():
        sid = _by_sid(template, function)
        # Requests send no mail: only the sweep and the relay may; only the relay reads the
        # outbox stream; only the API and the authorizer read the management keys.
        assert set(sid) == expected, function
        assert set(sid["Tables"]["Resource"]) == {_arn(template, name) for name in tables}
        assert set(sid["Indexes"]["Resource"]) == indexes
        assert sid["Indexes"]["Action"] == ["dynamodb:Query"]
        if "SendMail" in sid:
            assert sid["SendMail"]["Action"] == ["ses:SendRawEmail"]
            assert set(sid["SendMail"]["Resource"]) == {
                identity + sender,
                identity + "contoso.example",
            }
            assert sid["SendMail"]["Condition"] == {"StringEquals": {"ses:FromAddress": sender}}
            assert sid["ReadSendRate"]["Action"] == ["ses:GetAccount"]
        if "ReadKeys" in sid:
            assert sid["ReadKeys"]["Action"] == ["ssm:GetParameter"]
            assert sid["ReadKeys"]["Resource"] == [
                f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter{parameter}"
            ]
            # Only when the parameter is encrypted with a customer-managed key, and only
            # through SSM.
            assert sid["DecryptKeys"]["Action"] == ["kms:Decrypt"]
            assert sid["DecryptKeys"]["Resource"] == [PARAMETER_VALUES["KeysKmsKeyArn"]]
            assert sid["DecryptKeys"]["Condition"] == {
                "StringEquals": {"kms:ViaService": f"ssm.{REGION}.amazonaws.com"}
            }
        assert sid["Logs"]["Action"] == ["logs:CreateLogStream", "logs:PutLogEvents"]
        log_groups[function] = set(sid["Logs"]["Resource"])
    # Each function writes to its own log group (the API and the authorizer share one policy).
    for function, groups in log_groups.items():
        assert _arn(template, f"{function}LogGroup") in groups
        assert all(
            _arn(template, f"{g}LogGroup") not in groups
            for g in {"Sweep", "OutboxRelay"} - {function}
        )
    relay = _by_sid(template, "OutboxRelay")
    outbox_stream = _stream_arn(template, "OutboxTable")
    assert relay["ReadOutboxStream"]["Resource"] == [outbox_stream]
    assert set(relay["ReadOutboxStream"]["Action"]) == {
        "dynamodb:DescribeStream",
        "dynamodb:GetRecords",
        "dynamodb:GetShardIterator",
    }
    assert relay["ListOutboxStreams"]["Action"] == ["dynamodb:ListStreams"]
    assert relay["RelayFailures"] == {
        "Sid": "RelayFailures",
        "Effect": "Allow",
        "Action": ["sqs:SendMessage"],
        "Resource": [_arn(template, "OutboxRelayFailures")],
        "Condition": None,
    }


def test_the_relay_follows_the_outbox_stream_and_gives_up_into_a_queue(template):
    outbox = template["Resources"]["OutboxTable"]["Properties"]
    assert outbox["StreamSpecification"] == {"StreamViewType": "NEW_IMAGE"}
    assert all(
        "StreamSpecification" not in table["Properties"]
        for name, table in _resources(template, "AWS::DynamoDB::Table").items()
        if name != "OutboxTable"
    )
    relay = template["Resources"]["OutboxRelay"]["Properties"]
    assert relay["Handler"] == "app.outbox_relay"
    assert relay["Timeout"] == 300
    assert "Events" not in relay  # the mapping below is its only trigger
    (mapping,) = _resources(template, "AWS::Lambda::EventSourceMapping").values()
    properties = mapping["Properties"]
    assert properties["EventSourceArn"] == {"Fn::GetAtt": ["OutboxTable", "StreamArn"]}
    assert properties["FunctionName"] == {"Ref": "OutboxRelay"}
    assert properties["StartingPosition"] == "TRIM_HORIZON"
    assert properties["BatchSize"] == 50
    assert 0 < properties["MaximumBatchingWindowInSeconds"] <= 1
    assert properties["BisectBatchOnFunctionError"] is True
    assert properties["MaximumRetryAttempts"] == 3
    assert properties["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    [pattern] = [json.loads(f["Pattern"]) for f in properties["FilterCriteria"]["Filters"]]
    assert pattern == {"eventName": ["INSERT"]}
    destination = properties["DestinationConfig"]["OnFailure"]["Destination"]
    assert destination == {"Fn::GetAtt": ["OutboxRelayFailures", "Arn"]}
    queue = template["Resources"]["OutboxRelayFailures"]
    assert queue["Type"] == "AWS::SQS::Queue"
    assert queue["Properties"]["SqsManagedSseEnabled"] is True
    assert queue["Properties"]["MessageRetentionPeriod"] == 14 * 24 * 3600


def test_dynamodb_actions_are_what_the_store_calls(template):
    source = "\n".join(p.read_text() for p in sorted((PROJECT / "chalicelib/store").glob("*.py")))
    called = {action for pattern, action in STORE_CALLS.items() if re.search(pattern, source)}
    for function in _resources(template, "AWS::Serverless::Function"):
        statements = _by_sid(template, function)
        granted = set(statements["Tables"]["Action"]) | set(statements["Indexes"]["Action"])
        assert granted == called, function


def test_the_zip_holds_the_templates_and_the_pinned_dependencies(built):
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    with zipfile.ZipFile(built / "deployment.zip") as archive:
        names = set(archive.namelist())
        unzipped_size = sum(i.file_size for i in archive.infolist())
    expected = {
        str(p.relative_to(PROJECT)) for p in (PROJECT / "templates").rglob("*") if p.is_file()
    }
    assert {n for n in names if n.startswith("templates/")} == expected
    assert {"app.py", "chalice/app.py", "chalicelib/mail/templates.py"} <= names
    assert not any(n.startswith("vendor/") for n in names)
    assert unzipped_size < LAMBDA_UNZIPPED_LIMIT
    installed = {}
    for name in names:
        match = re.match(r"^([^/]+)-([^-/]+)\.dist-info/METADATA$", name)
        if match:
            installed[canonicalize_name(match.group(1))] = match.group(2)
    lines = (PROJECT / "requirements.txt").read_text().splitlines()
    for line in lines:
        if line.strip() and not line.startswith("#"):
            requirement = Requirement(line)
            version = installed.get(canonicalize_name(requirement.name))
            assert version and requirement.specifier.contains(version), (line, version)
    assert "chalice" not in installed and "click" not in installed


def test_make_package_adds_bytecode_after_chalice_package():
    makefile = (PROJECT / "Makefile").read_text()
    recipe = makefile.split("\npackage:", 1)[1].split("\n\n", 1)[0]
    steps = [line.strip() for line in recipe.splitlines()[1:]]
    chalice = next(i for i, s in enumerate(steps) if "chalice package" in s)
    assert "$(BIN)/python -m tests.deploy.bytecode build/package" in steps[chalice + 1 :]


def test_the_zip_holds_unchecked_hash_bytecode_for_every_module(built, template):
    """One .pyc per source, for the runtime's Python, valid whatever the files' mtimes are."""
    with zipfile.ZipFile(built / "deployment.zip") as archive:
        names = set(archive.namelist())
        sources = {n: archive.read(n) for n in names if n.endswith(".py")}
        pycs = {n: archive.read(n) for n in names if n.endswith(".pyc")}
    runtimes = {
        f["Properties"]["Runtime"]
        for f in _resources(template, "AWS::Serverless::Function").values()
    }
    assert runtimes == {bytecode.RUNTIME}, "the .pyc files are this interpreter's"
    assert len(sources) > 300
    assert set(pycs) == {bytecode.pyc_name(n) for n in sources}, "one .pyc per source, no other"
    assert f"chalicelib/__pycache__/keys.{sys.implementation.cache_tag}.pyc" in pycs
    for name, source in sources.items():
        header = pycs[bytecode.pyc_name(name)][:16]
        assert header[:4] == importlib.util.MAGIC_NUMBER, name
        assert int.from_bytes(header[4:8], "little") == bytecode.UNCHECKED_HASH_FLAGS, name
        assert header[8:] == importlib.util.source_hash(source), name


def test_the_unzipped_package_imports_from_its_bytecode(probe):
    # Lambda's import, bytecode on: every module of the zip came from its .pyc (none compiled
    # from source) and nothing was written beside the package.
    assert probe["compiled_from_source"] == []
    assert probe["written"] == []
    assert probe["from_bytecode"] > 300, "the check above saw the zip's modules"
    assert "chalicelib.keys" in probe["from_bytecode_sample"]


def test_the_unzipped_package_serves_pages_mail_and_the_api(probe):
    assert probe["outside_zip"] == []
    assert probe["templates_dir"].endswith("/unzipped/templates")

    emails = probe["emails"]
    assert len(emails) == 14
    assert all(e["subject"] and e["html"] and e["text"] for e in emails.values())

    pages = probe["pages"]
    for name in ("invitation", "signin", "password-reset"):
        assert pages[name]["type"].startswith("text/html"), name
        assert "<html" in pages[name]["body"] and "Contoso" in pages[name]["body"], name
    assert pages["invitation"]["status"] == 404  # problem.html: an unknown link
    assert pages["signin"]["status"] == pages["password-reset"]["status"] == 200
    assert pages["portal.css"]["status"] == 200
    assert pages["portal.css"]["type"].startswith("text/css")

    assert probe["put_user"]["status"] == 201, probe["put_user"]["body"]
    # The invitation's email went out through the relay function, not the request.
    assert probe["relay"] == {"batchItemFailures": []}
    assert probe["get_user"]["status"] == 200
    assert json.loads(probe["get_user"]["body"])["properties"]["state"] == "pending"
    assert probe["unauthenticated"]["status"] == 401
    (invitation,) = probe["mail"]
    assert invitation["to"] == "ada@example.com"
    assert invitation["from"] == PARAMETER_VALUES["SenderEmail"]
    assert PARAMETER_VALUES["PortalUrl"] + "/confirm/invitation?token=" in invitation["text"]
    assert isinstance(probe["sweep"], dict)
    assert probe["authorizer"] == "Deny"
