"""The console's Users list at 10,000 users: DynamoDB reads per page, for every order.

Run alone: ``python -m bench.console_list [out.json] [users]``. The users table is filled with
PynamoDB batch writes of the exact items the store writes (its own row mapper, so every sort
key is there), with varied names, addresses, states (80% active, 10% blocked, 10% pending) and
registration dates. Then, for each order (name, email, state, registration date) both ways, the
list service reads a first page, the next page and the previous page of 20 (also 100 for name),
and the state and search filters a page each, counted by bench.counting. Finally one whole
console page (session checks, the page, the groups of its 20 users) is counted too.
"""

from __future__ import annotations

import random
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from bench import env

env.configure()

from bench import emit  # noqa: E402
from bench.counting import Meter  # noqa: E402

METER = Meter(env.REGION, env.TABLE_PREFIX + "-")
METER.install()

USERS = 10_000
FIRST = ("Ada", "Grace", "Émile", "Charles", "Mary", "Alan", "Katherine", "Tim", "Barbara", "Ken")
LAST = ("Lovelace", "Hopper", "Zola", "Babbage", "Somerville", "Turing", "Johnson", "Lee", "Liskov")


def seed(n: int, now: datetime) -> dict[str, int]:
    from chalicelib.domain.etag import next_version
    from chalicelib.domain.users import Identity, User, UserState
    from chalicelib.store import users as user_rows
    from chalicelib.store.models import UserItem

    rng = random.Random(17)
    states = {"active": 0, "blocked": 0, "pending": 0}
    with UserItem.batch_write() as batch:
        for i in range(n):
            uid = f"{rng.getrandbits(48):012x}"
            domain = rng.choice(("example.com", "example.org"))
            email = f"{rng.choice(FIRST).lower()}.{i:05d}@{domain}"
            roll = rng.random()
            state = (
                UserState.ACTIVE
                if roll < 0.8
                else UserState.BLOCKED
                if roll < 0.9
                else UserState.PENDING
            )
            registered = now - timedelta(minutes=rng.randrange(0, 60 * 24 * 700))
            user = User(
                id=uid,
                email=email,
                first_name=rng.choice(FIRST),
                last_name=f"{rng.choice(LAST)} {i:05d}",
                state=state,
                note=None,
                registration_date=registered,
                identities=(Identity("Basic", email),),
                version=next_version(0, registered),
                password_hash=None,
                token_epoch="0123456789abcdef",
            )
            batch.save(user_rows._to_item(user))
            states[state.value] += 1
    return states


def _reads(measurement: Any) -> dict[str, Any]:
    return {
        "requests": measurement.count,
        "items_read": measurement.items_read(),
        "read_units": measurement.read_units,
        "sequence": measurement.summary(),
    }


def measure(n: int) -> dict[str, Any]:
    from chalice.test import Client

    from app import app
    from chalicelib.bootstrap import services
    from chalicelib.domain.paging import Cursor
    from chalicelib.domain.users import UserOrder, UserSort, order_key, search_filter
    from chalicelib.services.listing import ListQuery
    from tests.support import wire

    with env.moto_backend(), Client(app, stage_name="bench") as client:
        METER.forget_tables()
        now = datetime.now(UTC)
        wire(clock=lambda: now)
        started = time.perf_counter()
        with env.unchecked_item_sizes():
            states = seed(n, now)
        seeded_in = time.perf_counter() - started
        accounts = services().accounts
        orders: dict[str, Any] = {}
        for sort in UserSort:
            for descending in (False, True):
                order = UserOrder(sort, descending)
                name = f"{sort.value} {'desc' if descending else 'asc'}"
                with METER.measure() as first:
                    page1 = accounts.list(ListQuery(None, 20, Cursor(), order))
                assert len(page1.items) == 20 and page1.next is not None
                with METER.measure() as following:
                    page2 = accounts.list(ListQuery(None, 20, page1.next, order))
                assert len(page2.items) == 20
                back_from = Cursor(order_key(page2.items[0], sort))
                with METER.measure() as previous:
                    back = accounts.list(ListQuery(None, 20, back_from, order.reversed()))
                assert list(reversed(back.items)) == page1.items
                orders[name] = {
                    "first_page": _reads(first),
                    "next_page": _reads(following),
                    "previous_page": _reads(previous),
                }
        by_name = UserOrder(UserSort.NAME)
        with METER.measure() as hundred:
            accounts.list(ListQuery(None, 100, Cursor(), by_name))
        filters: dict[str, Any] = {}
        from chalicelib.domain.users import UserState

        for label, flt, order in (
            ("pending, by name (index-backed)", search_filter("", UserState.PENDING), by_name),
            (
                "blocked, by email (filtered)",
                search_filter("", UserState.BLOCKED),
                UserOrder(UserSort.EMAIL),
            ),
            ("search 'turing', by name (filtered)", search_filter("turing", None), by_name),
            ("search 'nobody' (no match)", search_filter("nobody", None), by_name),
        ):
            with METER.measure() as counted:
                page = accounts.list(ListQuery(flt, 20, Cursor(), order))
            filters[label] = {**_reads(counted), "rows": len(page.items)}

        # One whole console page: sign-in is not counted; the page with its session checks is.
        from chalicelib.domain.users import read_draft

        body = {"email": "bench-admin@example.com", "firstName": "Bench", "lastName": "Admin"}
        body["password"] = "a bench admin passphrase"
        admin, _ = accounts.create_or_replace("bench-admin", read_draft({"properties": body}), None)
        services().groups.add_administrator(admin.id)
        cookie = _sign_in(client, body["email"], body["password"])
        with METER.measure() as whole:
            shown = client.http.get(
                "/console/users?sort=registered&dir=desc",
                headers={"cookie": f"apim_console={cookie}"},
            )
        assert shown.status_code == 200, shown.status_code
        return {
            "users": n,
            "states": states,
            "seed_seconds": round(seeded_in, 1),
            "orders": orders,
            "name_asc_100_a_page": _reads(hundred),
            "filters": filters,
            "console_page_registered_desc": _reads(whole),
        }


def _sign_in(client: Any, email: str, password: str) -> str:
    import re
    from urllib.parse import urlencode

    form = client.http.get("/console/signin")
    cookie = form.headers["Set-Cookie"].split(";", 1)[0].split("=", 1)[1]
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.body.decode()).group(1)
    signed = client.http.post(
        "/console/signin",
        headers={
            "content-type": "application/x-www-form-urlencoded",
            "cookie": f"apim_console={cookie}",
        },
        body=urlencode({"email": email, "password": password, "csrf": csrf}),
    )
    assert signed.status_code == 303, signed.body
    return str(signed.headers["Set-Cookie"].split(";", 1)[0].split("=", 1)[1])


def main() -> None:
    n = int(sys.argv[2]) if len(sys.argv) > 2 else USERS
    emit(measure(n))


if __name__ == "__main__":
    main()
