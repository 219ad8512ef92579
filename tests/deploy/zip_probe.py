"""Runs the unzipped deployment package the way Lambda would, against moto; prints a JSON report.

Started by test_package.py as ``python -S -c <this file> <site-packages>`` with the unzipped
folder as working directory and bytecode on, as in Lambda: the folder comes first on sys.path and
the project checkout is nowhere on it (-S also skips the editable install's import hook), so
everything the service imports must come from the zip. The dev venv's site-packages is appended
only for moto, which the zip does not carry. The environment holds the prod stage's variables as
the template sets them, with Refs resolved to made-up physical names.

Every module the import system compiles from source is recorded, from the first import on: with
the zip's unchecked-hash .pyc files, none of the zip's should be.
"""

import importlib.machinery
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path.cwd().resolve()
sys.path.append(sys.argv[1])
report: dict = {}

compiled_from_source: list[str] = []
_source_to_code = importlib.machinery.SourceFileLoader.source_to_code


def _recording_source_to_code(self, data, path, *, _optimize=-1):
    compiled_from_source.append(str(path))
    return _source_to_code(self, data, path, _optimize=_optimize)


importlib.machinery.SourceFileLoader.source_to_code = _recording_source_to_code

# Lambda's init: importing the handler module must not need AWS (moto is not imported yet, so a
# client made at import time would show up below as a failed call to real AWS).
started = time.perf_counter()
from app import app  # noqa: E402

report["import_seconds"] = round(time.perf_counter() - started, 3)

import boto3  # noqa: E402
import chalice  # noqa: E402
from moto import mock_aws  # noqa: E402

# chalice.test (the test client) is not part of the package, which holds only chalice/app.py:
# the venv's copy serves it, running the zip's chalice.app, already imported.
chalice.__path__.append(str(Path(sys.argv[1]) / "chalice"))

PACKAGES = (
    "app",
    "chalicelib",
    "chalice",
    "jinja2",
    "markupsafe",
    "pynamodb",
    "argon2",
    "_argon2_cffi_bindings",
    "botocore",
    "boto3",
    "email_validator",
    "zxcvbn",
)


def outside_zip() -> list[str]:
    found = []
    for name, module in list(sys.modules.items()):
        if name.split(".")[0] not in PACKAGES:
            continue
        if name.startswith("chalice.") and name != "chalice.app":
            continue  # the test client's modules, from the venv on purpose
        origin = getattr(module, "__file__", None)
        if origin and not Path(origin).resolve().is_relative_to(ROOT):
            found.append(f"{name}: {origin}")
    return sorted(found)


def in_zip(path: str) -> bool:
    return Path(path).resolve().is_relative_to(ROOT)


def zip_modules_from_bytecode() -> list[str]:
    """The zip's modules that were loaded from a .py's bytecode (not compiled, not native)."""
    found = []
    for name, module in list(sys.modules.items()):
        spec = getattr(module, "__spec__", None)
        origin = getattr(spec, "origin", None) or ""
        if origin.endswith(".py") and in_zip(origin) and spec.cached and in_zip(spec.cached):
            if Path(spec.cached).exists() and origin not in compiled_from_source:
                found.append(name)
    return sorted(found)


def describe_tables() -> dict:
    from chalicelib.store.models import ALL_MODELS

    client = boto3.client("dynamodb")
    tables = {}
    for model in ALL_MODELS:
        name = model.Meta.table_name
        table = client.describe_table(TableName=name)["Table"]
        ttl = client.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
        tables[model.__name__] = {
            "TableName": name,
            "KeySchema": table["KeySchema"],
            "AttributeDefinitions": table["AttributeDefinitions"],
            "GlobalSecondaryIndexes": [
                {
                    "IndexName": index["IndexName"],
                    "KeySchema": index["KeySchema"],
                    "Projection": index["Projection"],
                }
                for index in table.get("GlobalSecondaryIndexes", [])
            ],
            "TTL": ttl.get("AttributeName") if ttl.get("TimeToLiveStatus") == "ENABLED" else None,
            "Stream": table.get("StreamSpecification"),
        }
    return tables


def render_emails() -> dict:
    from chalicelib.mail.render import render
    from chalicelib.mail.templates import TEMPLATE_NAMES, default_template

    rendered = {}
    for name in TEMPLATE_NAMES:
        template = default_template(name)
        values = {
            p.name: "https://portal.example/x" if p.name.endswith("Url") else f"Sample {p.name}"
            for p in template.parameters
        }
        email = render(template, values)
        rendered[name] = {
            "subject": email.subject,
            "html": len(email.html),
            "text": len(email.text),
        }
    return rendered


def call(client, method: str, path: str, **kw) -> dict:
    reply = client.http.request(method, path, **kw)
    headers = {k.lower(): v for k, v in reply.headers.items()}
    return {
        "status": reply.status_code,
        "type": headers.get("content-type", ""),
        "body": (reply.body or b"").decode("utf-8", "replace"),
        "etag": headers.get("etag"),
    }


def share_one_botocore_session() -> None:
    """PynamoDB's connections (one per model) share one botocore session, as in
    tests/in_process.py: each session would parse botocore's data again (seconds in all)."""
    import botocore.session
    import pynamodb.connection.base

    shared = botocore.session.get_session()
    pynamodb.connection.base.get_session = lambda: shared


def outbox_stream_records(settings) -> list:
    """Every record of the outbox table's stream, read through moto's Streams API."""
    arn = boto3.client("dynamodb").describe_table(TableName=settings.outbox_table)["Table"][
        "LatestStreamArn"
    ]
    streams = boto3.client(
        "dynamodbstreams", endpoint_url=f"https://streams.dynamodb.{settings.region}.amazonaws.com"
    )
    records = []
    for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
        iterator = streams.get_shard_iterator(
            StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        records += streams.get_records(ShardIterator=iterator)["Records"]
    return records


def main() -> None:
    from chalice.test import Client

    from chalicelib.config import get_settings
    from chalicelib.domain.sas import management_token
    from chalicelib.mail.templates import templates_dir
    from chalicelib.store.models import create_tables

    settings = get_settings()
    report["templates_dir"] = str(templates_dir())
    primary = "deployed-primary-key"
    boto3.client("ssm").put_parameter(
        Name=os.environ["APIM_KEYS_PARAMETER"],
        Type="SecureString",
        Value=json.dumps({"primary": primary, "secondary": "deployed-secondary-key"}),
    )
    boto3.client("ses").verify_email_identity(EmailAddress=settings.sender_email)
    create_tables(settings)
    report["tables"] = describe_tables()
    report["emails"] = render_emails()

    from datetime import UTC, datetime, timedelta

    token = management_token(settings.access_id, datetime.now(UTC) + timedelta(hours=1), primary)
    auth = {"Authorization": f"SharedAccessSignature {token}", "Content-Type": "application/json"}
    users = f"{settings.service_path}/users/ada?api-version=2024-05-01"
    invite = {
        "properties": {
            "email": "ada@example.com",
            "firstName": "Ada",
            "lastName": "Lovelace",
            "confirmation": "invite",
        }
    }
    with Client(app, stage_name="prod") as client:
        report["pages"] = {
            "invitation": call(client, "GET", "/confirm/invitation?token=not-a-real-token"),
            "signin": call(client, "GET", "/signin"),
            "password-reset": call(client, "GET", "/password-reset"),
            "portal.css": call(client, "GET", "/portal.css"),
        }
        report["put_user"] = call(client, "PUT", users, headers=auth, body=json.dumps(invite))
        # The request only recorded the invitation's email; the relay function sends it, as the
        # event source mapping would invoke it with the outbox stream's new records.
        records = outbox_stream_records(settings)
        report["relay"] = client.lambda_.invoke("outbox_relay", {"Records": records}).payload
        report["get_user"] = call(client, "GET", users, headers=auth)
        report["unauthenticated"] = call(client, "GET", users)
        event = client.events.generate_cw_event(
            source="aws.events",
            detail_type="Scheduled Event",
            detail={},
            resources=["arn:aws:events:us-east-1:123456789012:rule/sweep"],
        )
        report["sweep"] = client.lambda_.invoke("sweep", event).payload
        request = {
            "type": "REQUEST",
            "methodArn": "arn:aws:execute-api:us-east-1:123456789012:abc/prod/GET/things",
            "headers": {"Ocp-Apim-Subscription-Key": "no-such-key"},
            "queryStringParameters": {},
            "stageVariables": {},
        }
        answer = client.lambda_.invoke("subscription_key_authorizer", request).payload
        report["authorizer"] = answer["policyDocument"]["Statement"][0]["Effect"]

    from email import message_from_string, policy

    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ses.models import ses_backends

    sent = ses_backends[DEFAULT_ACCOUNT_ID][settings.region].sent_messages
    report["mail"] = [
        {
            "to": str(message["To"]),
            "from": str(message["From"]),
            "text": message.get_body(("plain",)).get_content(),
        }
        for message in (
            message_from_string(m.raw_data, policy=policy.default)
            for m in sent
            if hasattr(m, "raw_data")
        )
    ]


share_one_botocore_session()
with mock_aws():
    main()
report["outside_zip"] = outside_zip()
report["compiled_from_source"] = sorted(
    str(Path(p).resolve().relative_to(ROOT)) for p in compiled_from_source if in_zip(p)
)
loaded = zip_modules_from_bytecode()
report["from_bytecode"] = len(loaded)
report["from_bytecode_sample"] = [m for m in loaded if m.startswith(("app", "chalicelib"))]
print(json.dumps(report))
