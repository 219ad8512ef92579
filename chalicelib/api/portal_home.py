"""The developer portal's home (where every developer link ends), sign-out and its 404 page."""

from __future__ import annotations

from chalice import Response

from chalicelib.api.docs import form_body, ours, page_responses, redirects
from chalicelib.api.portal_session import (
    MESSAGES,
    Developer,
    cleared_cookie,
    delegate,
    developer_form,
    render,
    see_other,
    session_of,
)
from chalicelib.api.routing import Call, Router
from chalicelib.bootstrap import services
from chalicelib.domain.delegation import Operation

router = Router(management=False)


def signup_enabled() -> bool:
    """Whether the home offers sign-up: as the sign-up settings (``portalsettings/signup``)
    say, or when it is delegated (the link then leads to the publisher's site)."""
    if services().delegation.enabled_for(Operation.SIGN_UP):
        return True
    return services().signup.settings().enabled


@router.route(
    "/",
    GET=ours(
        "Portal_Home",
        "The developer portal's home: signed out, sign-in, sign-up and a forgotten password; "
        "signed in, the developer's profile, subscriptions and products.",
        responses=page_responses(),
    ),
)
def home(call: Call) -> Response:
    developer = session_of(call)
    message = MESSAGES.get(call.query.get("m", ""))
    if developer is None:
        return render(
            call,
            "home.html",
            None,
            title="Welcome",
            message=message,
            signup=signup_enabled(),
        )
    return render(
        call,
        "home.html",
        developer,
        title=f"Welcome, {developer.user.first_name}",
        message=message,
        signup=False,
        current="home",
    )


@router.route(
    "/signout",
    POST=ours(
        "Portal_SignOut",
        "Signs the developer out of the portal: the session cookie is cleared.",
        body=form_body("csrf", required=["csrf"]),
        responses={
            **redirects("To the portal's home, signed out (or to sign-in, without a session)."),
            "403": page_responses(statuses=("403",))["403"],
        },
    ),
)
@developer_form
def sign_out(call: Call, developer: Developer, fields: dict[str, str]) -> Response:
    # Delegated, the portal's session ends here and the publisher's site signs out its own.
    response = delegate(call, Operation.SIGN_OUT, user_id=developer.user.id) or see_other(
        call, "?m=signed-out"
    )
    response.headers["Set-Cookie"] = cleared_cookie()
    return response


@router.unknown("portal")
def not_found(call: Call) -> Response:
    """Any other path below /portal: a page, with the navigation when signed in."""
    developer = session_of(call)
    return render(
        call,
        "problem.html",
        developer,
        404,
        title="Page not found",
        message="There is no portal page at this address.",
        advice="Check the address, or start again from the portal's home.",
    )
