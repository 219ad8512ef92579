"""The developer portal's settings: APIM's portalsettings (signin, signup, delegation)."""

from __future__ import annotations

from typing import Any

from chalice import Response

from chalicelib.api.docs import apim
from chalicelib.api.envelope import empty, json_response
from chalicelib.api.routing import ARM_PREFIX, Call, Handler, Router
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


def _answer(name: SettingName) -> Handler:
    """GET and HEAD, PUT and PATCH of one setting, by the request's method."""

    def answer(call: Call) -> Response:
        if call.method == "PUT":
            return _put(call, name)
        if call.method == "PATCH":
            return _patch(call, name)
        return _get(name)

    return answer


# Each setting's path and the prefix of its APIM operations.
for _name, _operations in (
    (SettingName.SIGNIN, "SignInSettings"),
    (SettingName.SIGNUP, "SignUpSettings"),
    (SettingName.DELEGATION, "DelegationSettings"),
):
    router.route(
        f"/portalsettings/{_name.value}",
        GET=apim(f"{_operations}_Get"),
        HEAD=apim(f"{_operations}_GetEntityTag"),
        PUT=apim(f"{_operations}_CreateOrUpdate"),
        PATCH=apim(f"{_operations}_Update"),
    )(_answer(_name))


@router.route(
    "/portalsettings/delegation/listSecrets",
    POST=apim("DelegationSettings_ListSecrets"),
)
def delegation_secrets(call: Call) -> Response:
    """The validation key (null until one is set): the only place it is shown."""
    return json_response({"validationKey": services().portal.validation_key()})
