"""The prod deployment files, generated from the code so that they cannot drift from it.

``python -m tests.deploy.stack --write`` (``make deploy-files``) writes, from the PynamoDB models,
the Chalice app and pyproject.toml:

- ``.chalice/prod-resources.json``: the template ``chalice package --merge-template`` merges in: one
  on-demand table per model (its keys, indexes, TTL attribute and stream, point-in-time recovery,
  deletion protection, kept when the stack goes), a log group per function, the stack parameters,
  each function's environment (table names from ``Ref``, the key parameter, the sender, the portal
  URL), and the outbox relay's event source mapping (the outbox table's stream) with the SQS
  queue that receives what it gives up on;
- ``.chalice/policy-prod*.json``: each function's IAM policy, least privilege: these tables and
  named indexes and the functions' own log groups for all; the key parameter for the API and the
  authorizer (``policy-prod.json``, the prod stage's ``iam_policy_file``); SES for the sender only
  and the account's send rate for the functions that send mail (the sweep, the relay), and the
  outbox stream and failure queue for the relay (``policy-prod-<function>.json``, named per
  function in .chalice/config.json, which ``--check`` verifies);
- ``requirements.txt``: what ``chalice package`` vendors into the zip, i.e. pyproject's runtime
  dependencies without chalice itself (the packager adds its own runtime, ``chalice/app.py``).

``--check`` (run by tests/deploy/test_package.py) exits 1 and names every stale file. Run it as a
fresh process: models are rebound to their deployed names once the app has used them.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tomllib
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parents[2]
MERGE_TEMPLATE = PROJECT / ".chalice" / "prod-resources.json"
POLICY = PROJECT / ".chalice" / "policy-prod.json"
CONFIG = PROJECT / ".chalice" / "config.json"
REQUIREMENTS = PROJECT / "requirements.txt"

# What the store calls, as IAM actions (TransactWriteItems has no action of its own: each item
# needs PutItem/UpdateItem/DeleteItem, and ConditionCheckItem for a condition check). Never Scan;
# DescribeTable and CreateTable only serve ``apim-users create-tables``, which never runs in Lambda.
TABLE_ACTIONS = (
    "dynamodb:BatchGetItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:ConditionCheckItem",
    "dynamodb:DeleteItem",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:Query",
    "dynamodb:UpdateItem",
)
INDEX_ACTIONS = ("dynamodb:Query",)
LOG_RETENTION_DAYS = 90
# Chalice names the API's function APIHandler; every other function after its Python name.
API_HANDLER = "APIHandler"

PARAMETERS: dict[str, Any] = {
    "PortalUrl": {
        "Type": "String",
        "Description": (
            "Public base URL of the service (PORTAL_URL and PUBLIC_BASE_URL): of every link in "
            "emails and of nextLink, never the request's Host; the API's custom domain, or the "
            "EndpointURL output of a first deployment"
        ),
        "AllowedPattern": r"^https://\S+$",
    },
    "SenderEmail": {
        "Type": "String",
        "Description": (
            "Address emails are sent from (SENDER_EMAIL); it or its domain must be a verified "
            "SES identity in this region. The functions may send from this address only."
        ),
        "AllowedPattern": r"^[^@<>\s]+@[^@<>\s]+$",
    },
    "KeysParameterName": {
        "Type": "String",
        "Default": "/apim-users/prod/management-keys",
        "Description": (
            'Name of the SSM SecureString holding {"primary": ..., "secondary": ...} '
            "(APIM_KEYS_PARAMETER); create it before the stack: CloudFormation cannot create a "
            "SecureString"
        ),
        "AllowedPattern": r"^/[A-Za-z0-9_.\-/]+$",
    },
    "KeysKmsKeyArn": {
        "Type": "String",
        "Default": "",
        "Description": (
            "ARN of the customer-managed KMS key encrypting that parameter; empty for the default "
            "aws/ssm key, which needs no grant"
        ),
        "AllowedPattern": r"^(arn:[a-z-]+:kms:[a-z0-9-]+:[0-9]{12}:key/[A-Za-z0-9-]+)?$",
    },
}
CONDITIONS = {
    "KeysUseCustomerKey": {"Fn::Not": [{"Fn::Equals": [{"Ref": "KeysKmsKeyArn"}, ""]}]},
}
# Settings the stack decides; config.json's prod stage holds the rest.
PARAMETER_VARIABLES = {
    "APIM_KEYS_PARAMETER": {"Ref": "KeysParameterName"},
    "SENDER_EMAIL": {"Ref": "SenderEmail"},
    "PORTAL_URL": {"Ref": "PortalUrl"},
    # Absolute URLs of the API (nextLink, the OpenAPI document's server): the same base.
    "PUBLIC_BASE_URL": {"Ref": "PortalUrl"},
}
SES_IDENTITY = "arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:identity/"

# The functions that send mail (Python names), and the one the outbox stream triggers.
MAIL_SENDERS = ("sweep", "outbox_relay")
RELAY = "outbox_relay"
# The outbox relay's event source: new messages only, in batches of the dev follower's size
# (chalicelib/relay.py), at most 1 s of batching, a failing batch split in two and retried a
# few times, then handed to the failure queue (the sweep still sends those messages).
RELAY_RECORD_AGE_SECONDS = 3600
RELAY_FAILURES = "OutboxRelayFailures"
FAILURE_RETENTION_SECONDS = 14 * 24 * 3600


def cfn_name(name: str) -> str:
    """A CloudFormation logical id the way Chalice makes them: ``email-locks`` -> ``EmailLocks``."""
    from chalice.utils import to_cfn_resource_name

    return to_cfn_resource_name(name)


def table_resource_name(base_name: str) -> str:
    return cfn_name(base_name) + "Table"


def table_variable(base_name: str) -> str:
    """The environment variable config.py reads the table's name from: ``EMAIL_LOCKS_TABLE``."""
    return base_name.upper().replace("-", "_") + "_TABLE"


def _key_schema(elements: list[dict[str, str]]) -> list[dict[str, str]]:
    # DynamoDB wants the partition key first.
    ordered = sorted(elements, key=lambda e: e["KeyType"] != "HASH")
    return [{"AttributeName": e["AttributeName"], "KeyType": e["KeyType"]} for e in ordered]


def _projection(projection: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"ProjectionType": projection["ProjectionType"]}
    if projection.get("NonKeyAttributes"):
        out["NonKeyAttributes"] = sorted(projection["NonKeyAttributes"])
    return out


def _indexes(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "IndexName": index["index_name"],
            "KeySchema": _key_schema(index["key_schema"]),
            "Projection": _projection(index["projection"]),
        }
        for index in sorted(entries, key=lambda i: i["index_name"])
    ]


def table_resource(model: Any) -> dict[str, Any]:
    """The CloudFormation table of one PynamoDB model."""
    billing = getattr(model.Meta, "billing_mode", None)
    if billing != "PAY_PER_REQUEST":
        raise SystemExit(f"{model.__name__}: Meta.billing_mode must be PAY_PER_REQUEST (on demand)")
    schema = model._get_schema()
    properties: dict[str, Any] = {
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": sorted(
            schema["attribute_definitions"], key=lambda a: a["AttributeName"]
        ),
        "KeySchema": _key_schema(schema["key_schema"]),
    }
    if schema["global_secondary_indexes"]:
        properties["GlobalSecondaryIndexes"] = _indexes(schema["global_secondary_indexes"])
    if schema["local_secondary_indexes"]:
        properties["LocalSecondaryIndexes"] = _indexes(schema["local_secondary_indexes"])
    ttl = model._ttl_attribute()
    if ttl is not None:
        properties["TimeToLiveSpecification"] = {"AttributeName": ttl.attr_name, "Enabled": True}
    stream = getattr(model.Meta, "stream_view_type", None)
    if stream:
        properties["StreamSpecification"] = {"StreamViewType": stream}
    properties["PointInTimeRecoverySpecification"] = {"PointInTimeRecoveryEnabled": True}
    properties["DeletionProtectionEnabled"] = True
    return {
        "Type": "AWS::DynamoDB::Table",
        # Data outlives the stack: deleting or replacing it leaves the table in place.
        "DeletionPolicy": "Retain",
        "UpdateReplacePolicy": "Retain",
        "Properties": properties,
    }


def _models() -> list[tuple[Any, str]]:
    """Every model with the table name it is declared with (before any binding)."""
    from pynamodb.models import Model

    from chalicelib.store import models

    declared = {
        value
        for value in vars(models).values()
        if isinstance(value, type) and issubclass(value, Model) and value is not Model
    }
    if missing := sorted(m.__name__ for m in declared - set(models.ALL_MODELS)):
        raise SystemExit(f"models missing from ALL_MODELS (no table would exist): {missing}")
    return [(model, str(model.Meta.table_name)) for model in models.ALL_MODELS]


def _check_variables(models: list[tuple[Any, str]]) -> None:
    """Each model must really take its table's name from the variable the template sets."""
    from chalicelib.config import get_settings
    from chalicelib.store.models import bind_tables

    saved = dict(os.environ)
    try:
        for _, base in models:
            os.environ[table_variable(base)] = f"deployed-{base}"
        get_settings.cache_clear()
        bind_tables(get_settings())
        wrong = [
            f"{model.__name__} (declared table {base!r}) does not read {table_variable(base)}"
            for model, base in models
            if model.Meta.table_name != f"deployed-{base}"
        ]
    finally:
        os.environ.clear()
        os.environ.update(saved)
        get_settings.cache_clear()
    if wrong:
        raise SystemExit("; ".join(wrong))


def app_functions() -> dict[str, str]:
    """Every Lambda function ``chalice package`` generates for the app: its name in config.json
    (the Python name; ``api_handler`` for the API) and its logical id."""
    sys.path.insert(0, str(PROJECT))
    from app import app

    names = {"api_handler": API_HANDLER} if app.routes else {}
    names.update({source.name: cfn_name(source.name) for source in app.event_sources})
    names.update({f.name: cfn_name(f.name) for f in app.pure_lambda_functions})
    names.update({auth.name: cfn_name(auth.name) for auth in app.builtin_auth_handlers})
    if app.websocket_handlers:
        raise SystemExit("websocket handlers: add their functions to tests/deploy/stack.py")
    if RELAY not in names or not set(MAIL_SENDERS) <= set(names):
        raise SystemExit(f"app.py lacks one of {MAIL_SENDERS}: tests/deploy/stack.py names them")
    return names


def function_names() -> list[str]:
    """The logical ids of every Lambda function ``chalice package`` generates for the app."""
    return list(app_functions().values())


def policy_file(name: str) -> Path:
    """The IAM policy file of a function (config.json name): its own for the mail senders."""
    if name in MAIL_SENDERS:
        return POLICY.with_name(f"policy-prod-{name.replace('_', '-')}.json")
    return POLICY


def relay_resources(outbox: str) -> dict[str, Any]:
    """The outbox stream's event source mapping and the queue of batches it gave up on."""
    from chalicelib.relay import BATCH_SIZE, HANDED_EVENTS, MAX_RETRIES

    relay = cfn_name(RELAY)
    return {
        f"{relay}Stream": {
            "Type": "AWS::Lambda::EventSourceMapping",
            "Properties": {
                "EventSourceArn": {"Fn::GetAtt": [outbox, "StreamArn"]},
                "FunctionName": {"Ref": relay},
                # From the oldest record kept: messages recorded before the mapping existed too.
                "StartingPosition": "TRIM_HORIZON",
                "BatchSize": BATCH_SIZE,
                "MaximumBatchingWindowInSeconds": 1,
                "ParallelizationFactor": 1,
                "BisectBatchOnFunctionError": True,
                "MaximumRetryAttempts": MAX_RETRIES,
                "MaximumRecordAgeInSeconds": RELAY_RECORD_AGE_SECONDS,
                "FunctionResponseTypes": ["ReportBatchItemFailures"],
                # Claims and sends modify the items; only new messages need the relay.
                "FilterCriteria": {
                    "Filters": [{"Pattern": json.dumps({"eventName": list(HANDED_EVENTS)})}]
                },
                "DestinationConfig": {
                    "OnFailure": {"Destination": {"Fn::GetAtt": [RELAY_FAILURES, "Arn"]}}
                },
            },
        },
        RELAY_FAILURES: {
            "Type": "AWS::SQS::Queue",
            "DeletionPolicy": "Delete",
            "UpdateReplacePolicy": "Delete",
            "Properties": {
                "MessageRetentionPeriod": FAILURE_RETENTION_SECONDS,
                "SqsManagedSseEnabled": True,
            },
        },
    }


def _outbox_table(models: list[tuple[Any, str]]) -> str:
    from chalicelib.store.models import OutboxItem

    return next(table_resource_name(base) for model, base in models if model is OutboxItem)


def merge_template(models: list[tuple[Any, str]], functions: list[str]) -> dict[str, Any]:
    variables = {table_variable(base): {"Ref": table_resource_name(base)} for _, base in models}
    variables.update(PARAMETER_VARIABLES)
    resources: dict[str, Any] = {}
    for function in functions:
        resources[function] = {
            "Properties": {
                "Environment": {"Variables": dict(sorted(variables.items()))},
                "LoggingConfig": {"LogGroup": {"Ref": f"{function}LogGroup"}},
            }
        }
        resources[f"{function}LogGroup"] = {
            "Type": "AWS::Logs::LogGroup",
            "DeletionPolicy": "Delete",
            "UpdateReplacePolicy": "Delete",
            "Properties": {"RetentionInDays": LOG_RETENTION_DAYS},
        }
    for model, base in models:
        resources[table_resource_name(base)] = table_resource(model)
    resources.update(relay_resources(_outbox_table(models)))
    outputs = {
        table_resource_name(base): {"Value": {"Ref": table_resource_name(base)}}
        for _, base in models
    }
    outputs.update(
        {
            f"{function}Arn": {"Value": {"Fn::GetAtt": [function, "Arn"]}}
            for function in functions
            if function != API_HANDLER
        }
    )
    outputs[f"{RELAY_FAILURES}Url"] = {"Value": {"Ref": RELAY_FAILURES}}
    return {
        "Metadata": {
            "apim-users": "Generated by `make deploy-files` (tests/deploy/stack.py); do not edit."
        },
        "Parameters": PARAMETERS,
        "Conditions": CONDITIONS,
        "Resources": resources,
        "Outputs": outputs,
    }


def policy(
    models: list[tuple[Any, str]], functions: list[str], names: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """The policy of ``functions`` (logical ids), whose config.json names are ``names``."""
    tables = [{"Fn::GetAtt": [table_resource_name(base), "Arn"]} for _, base in models]
    indexes = [
        {"Fn::Sub": f"${{{table_resource_name(base)}.Arn}}/index/{index['IndexName']}"}
        for model, base in models
        for index in table_resource(model)["Properties"].get("GlobalSecondaryIndexes", [])
        + table_resource(model)["Properties"].get("LocalSecondaryIndexes", [])
    ]
    sender_domain = {"Fn::Select": [1, {"Fn::Split": ["@", {"Ref": "SenderEmail"}]}]}
    statements: list[Any] = [
        {"Sid": "Tables", "Effect": "Allow", "Action": list(TABLE_ACTIONS), "Resource": tables},
        {"Sid": "Indexes", "Effect": "Allow", "Action": list(INDEX_ACTIONS), "Resource": indexes},
    ]
    if names & set(MAIL_SENDERS):
        statements += _mail_statements(sender_domain)
    if RELAY in names:
        statements += _relay_statements(_outbox_table(models))
    if not names & set(MAIL_SENDERS):
        statements += _key_statements()
    statements.append(
        {
            "Sid": "Logs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": [{"Fn::GetAtt": [f"{function}LogGroup", "Arn"]} for function in functions],
        }
    )
    return {"Version": "2012-10-17", "Statement": statements}


def _mail_statements(sender_domain: dict[str, Any]) -> list[Any]:
    return [
        {
            # SES authorizes against the address identity, or its domain's when only that is
            # verified; the condition keeps the From address to the configured one either way.
            "Sid": "SendMail",
            "Effect": "Allow",
            "Action": ["ses:SendRawEmail"],
            "Resource": [
                {"Fn::Sub": SES_IDENTITY + "${SenderEmail}"},
                {"Fn::Sub": [SES_IDENTITY + "${Domain}", {"Domain": sender_domain}]},
            ],
            "Condition": {"StringEquals": {"ses:FromAddress": {"Ref": "SenderEmail"}}},
        },
        {
            # The account's maximum send rate; GetAccount acts on no resource but the account.
            "Sid": "ReadSendRate",
            "Effect": "Allow",
            "Action": ["ses:GetAccount"],
            "Resource": "*",
        },
    ]


def _relay_statements(outbox: str) -> list[Any]:
    return [
        {
            # What the event source mapping does with the function's role.
            "Sid": "ReadOutboxStream",
            "Effect": "Allow",
            "Action": [
                "dynamodb:DescribeStream",
                "dynamodb:GetRecords",
                "dynamodb:GetShardIterator",
            ],
            "Resource": {"Fn::GetAtt": [outbox, "StreamArn"]},
        },
        {
            "Sid": "ListOutboxStreams",
            "Effect": "Allow",
            "Action": ["dynamodb:ListStreams"],
            "Resource": {"Fn::Sub": f"${{{outbox}.Arn}}/stream/*"},
        },
        {
            "Sid": "RelayFailures",
            "Effect": "Allow",
            "Action": ["sqs:SendMessage"],
            "Resource": {"Fn::GetAtt": [RELAY_FAILURES, "Arn"]},
        },
    ]


def _key_statements() -> list[Any]:
    return [
        {
            "Sid": "ReadKeys",
            "Effect": "Allow",
            "Action": ["ssm:GetParameter"],
            "Resource": {
                "Fn::Sub": (
                    "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}"
                    ":parameter${KeysParameterName}"
                )
            },
        },
        {
            "Fn::If": [
                "KeysUseCustomerKey",
                {
                    "Sid": "DecryptKeys",
                    "Effect": "Allow",
                    "Action": ["kms:Decrypt"],
                    "Resource": {"Ref": "KeysKmsKeyArn"},
                    "Condition": {
                        "StringEquals": {
                            "kms:ViaService": {"Fn::Sub": "ssm.${AWS::Region}.amazonaws.com"}
                        }
                    },
                },
                {"Ref": "AWS::NoValue"},
            ]
        },
    ]


def policies(models: list[tuple[Any, str]]) -> dict[Path, dict[str, Any]]:
    """Each policy file, with the functions that use it."""
    grouped: dict[Path, dict[str, str]] = {}
    for name, logical in app_functions().items():
        grouped.setdefault(policy_file(name), {})[name] = logical
    return {
        path: policy(models, list(members.values()), frozenset(members))
        for path, members in grouped.items()
    }


def _check_config() -> None:
    """config.json's prod stage must give each function the policy file generated for it."""
    prod = json.loads(CONFIG.read_text())["stages"]["prod"]
    wrong = []
    for name in app_functions():
        given = (
            prod.get("lambda_functions", {}).get(name, {}).get("iam_policy_file")
            or prod["iam_policy_file"]
        )
        if given != policy_file(name).name:
            wrong.append(f"{name}: {given} instead of {policy_file(name).name}")
    if wrong:
        raise SystemExit(".chalice/config.json prod stage: " + "; ".join(wrong))


def runtime_requirements() -> str:
    """requirements.txt: pyproject's runtime dependencies, as written there, minus chalice."""
    project = tomllib.loads((PROJECT / "pyproject.toml").read_text(encoding="utf-8"))
    kept = [
        dependency
        for dependency in project["project"]["dependencies"]
        if re.split(r"[\s<>=!~;\[]", dependency, maxsplit=1)[0].lower() != "chalice"
    ]
    header = [
        "# Generated from pyproject.toml's [project] dependencies by `make deploy-files`; do not",
        "# edit. chalice package vendors these into the Lambda zip. chalice itself is left out:",
        "# the packager adds its runtime (chalice/app.py), and the CLI has no place in Lambda.",
    ]
    return "\n".join([*header, *kept]) + "\n"


def _json(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2) + "\n"


def generated() -> dict[Path, str]:
    """Every generated file and the text it should hold."""
    models = _models()
    _check_variables(models)
    _check_config()
    functions = function_names()
    files = {MERGE_TEMPLATE: _json(merge_template(models, functions))}
    files.update({path: _json(document) for path, document in policies(models).items()})
    files[REQUIREMENTS] = runtime_requirements()
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="write the files")
    mode.add_argument("--check", action="store_true", help="exit 1 if a file is stale")
    args = parser.parse_args(argv)
    stale = []
    for path, text in generated().items():
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        if args.write:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path.relative_to(PROJECT)}")
        else:
            stale.append(str(path.relative_to(PROJECT)))
    if stale:
        print(
            "stale (run `make deploy-files` and review the diff): " + ", ".join(stale),
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
