"""The developer portal's settings: APIM's portalsettings (signin, signup, delegation)."""

from __future__ import annotations

from typing import Any

from chalice import Response

from chalicelib.api.docs import apim
from chalicelib.api.envelope import empty, json_response
from chalicelib.api.routing import ARM_PREFIX, Call, Router
from chalicelib.bootstrap import services
from chalicelib.config import get_settings
from chalicelib.domain.etag import etag_of
from chalicelib.domain.portal import (
    DelegationSettings,
    Setting,
    SettingName,
    SignInSettings,
    SignUpSettings,
    read_setting_changes,
)

router = Router(ARM_PREFIX)
SETTINGS_TYPE = "Microsoft.ApiManagement/service/portalsettings"


def setting_properties(setting: Setting) -> dict[str, Any]:
    """The setting's properties; the delegation's validation key never (listSecrets shows it)."""
    if isinstance(setting, SignInSettings):
        return {"enabled": setting.enabled}
    if isinstance(setting, SignUpSettings):
        return {
            "enabled": setting.enabled,
            "termsOfService": {
                "text": setting.terms.text,
                "enabled": setting.terms.enabled,
                "consentRequired": setting.terms.consent_required,
            },
        }
    assert isinstance(setting, DelegationSettings)
    return {
        "url": setting.url,
        "subscriptions": {"enabled": setting.subscriptions_enabled},
        "userRegistration": {"enabled": setting.user_registration_enabled},
    }


def setting_entity(name: SettingName, setting: Setting) -> dict[str, Any]:
    return {
        "id": f"{get_settings().service_path}/portalsettings/{name.value}",
        "type": SETTINGS_TYPE,
        "name": name.value,
        "properties": setting_properties(setting),
    }


@router.route(
    "/portalsettings",
    GET=apim("PortalSettings_ListByService"),
)
def list_settings(call: Call) -> Response:
    settings = services().portal.all_settings()
    return json_response(
        {"value": [setting_entity(n, s) for n, s in settings], "count": len(settings)}
    )


def _get(name: SettingName) -> Response:
    setting = services().portal.setting(name)
    return json_response(setting_entity(name, setting), etag_version=setting.version)


def _put(call: Call, name: SettingName) -> Response:
    changes = read_setting_changes(name, call.json(), whole=True)
    setting = services().portal.save(name, changes, call.if_match())
    return json_response(setting_entity(name, setting), etag_version=setting.version)


def _patch(call: Call, name: SettingName) -> Response:
    expected = call.require_if_match()
    changes = read_setting_changes(name, call.json(), whole=False)
    setting = services().portal.save(name, changes, expected)
    # APIM answers 204 with no body (the SDK accepts nothing else); the ETag says the version.
    return empty(204, {"ETag": etag_of(setting.version)})


@router.route(
    "/portalsettings/signin",
    GET=apim("SignInSettings_Get"),
    HEAD=apim("SignInSettings_GetEntityTag"),
)
def get_signin(call: Call) -> Response:
    return _get(SettingName.SIGNIN)


@router.route("/portalsettings/signin", PUT=apim("SignInSettings_CreateOrUpdate"))
def put_signin(call: Call) -> Response:
    return _put(call, SettingName.SIGNIN)


@router.route("/portalsettings/signin", PATCH=apim("SignInSettings_Update"))
def patch_signin(call: Call) -> Response:
    return _patch(call, SettingName.SIGNIN)


@router.route(
    "/portalsettings/signup",
    GET=apim("SignUpSettings_Get"),
    HEAD=apim("SignUpSettings_GetEntityTag"),
)
def get_signup(call: Call) -> Response:
    return _get(SettingName.SIGNUP)


@router.route("/portalsettings/signup", PUT=apim("SignUpSettings_CreateOrUpdate"))
def put_signup(call: Call) -> Response:
    return _put(call, SettingName.SIGNUP)


@router.route("/portalsettings/signup", PATCH=apim("SignUpSettings_Update"))
def patch_signup(call: Call) -> Response:
    return _patch(call, SettingName.SIGNUP)


@router.route(
    "/portalsettings/delegation",
    GET=apim("DelegationSettings_Get"),
    HEAD=apim("DelegationSettings_GetEntityTag"),
)
def get_delegation(call: Call) -> Response:
    return _get(SettingName.DELEGATION)


@router.route("/portalsettings/delegation", PUT=apim("DelegationSettings_CreateOrUpdate"))
def put_delegation(call: Call) -> Response:
    return _put(call, SettingName.DELEGATION)


@router.route("/portalsettings/delegation", PATCH=apim("DelegationSettings_Update"))
def patch_delegation(call: Call) -> Response:
    return _patch(call, SettingName.DELEGATION)


@router.route(
    "/portalsettings/delegation/listSecrets",
    POST=apim("DelegationSettings_ListSecrets"),
)
def delegation_secrets(call: Call) -> Response:
    """The validation key (null until one is set): the only place it is shown."""
    return json_response({"validationKey": services().portal.validation_key()})
