"""Section 2: what the sweep, a list page and an email filter read at 10,000 and 100,000 users.

Run alone: ``python -m bench.scaling [out.json] [sizes...]``. The tables are filled with
PynamoDB batch writes of the exact items the store layer writes (its own row mappers), which
is much faster than creating users through the API; then the sweep and two list requests run
through the app as usual, counted by bench.counting.
"""

from __future__ import annotations

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

SIZES = (10_000, 100_000)
# Of every 100 users: one invitation expired, one still pending; of every 20, one accepted.
EXPIRED_EVERY = 100
ACCEPTED_EVERY = 20


def seed(n: int, now: datetime) -> dict[str, int]:
    """n users; 1% pending with an expired invitation, 1% pending with a live one, 5% with an
    accepted (ended) invitation; no email locks (nothing measured here reads them)."""
    from chalicelib.domain.etag import next_version
    from chalicelib.domain.links import Link, LinkPurpose, LinkState, hash_token, new_link_id
    from chalicelib.domain.passwords import HashParameters, hash_password
    from chalicelib.domain.users import Identity, User, UserState
    from chalicelib.store import links as link_rows
    from chalicelib.store import users as user_rows
    from chalicelib.store.models import LinkItem, UserItem

    password_hash = hash_password("one realistic hash, reused", HashParameters())
    counts = {"users": 0, "expired": 0, "live": 0, "accepted": 0}
    with UserItem.batch_write() as users, LinkItem.batch_write() as links:
        for i in range(n):
            uid = f"user{i:06d}"
            email = f"{uid}@example.com"
            kind = (
                "expired"
                if i % EXPIRED_EVERY == 0
                else "live"
                if i % EXPIRED_EVERY == 1
                else "accepted"
                if i % ACCEPTED_EVERY == 2
                else None
            )
            pending = kind in ("expired", "live")
            registered = now - timedelta(days=10 if kind == "accepted" else 2 if pending else 30)
            user = User(
                id=uid,
                email=email,
                first_name="Ada",
                last_name="Lovelace",
                state=UserState.PENDING if pending else UserState.ACTIVE,
                note=None,
                registration_date=registered,
                identities=(Identity("Basic", email),),
                version=next_version(0, registered),
                password_hash=None if pending else password_hash,
                token_epoch="0123456789abcdef",
            )
            users.save(user_rows._to_item(user))
            counts["users"] += 1
            if kind is None:
                continue
            created = {
                "expired": now - timedelta(hours=49),
                "live": now - timedelta(hours=1),
                "accepted": registered,
            }[kind]
            link = Link(
                user_id=uid,
                link_id=new_link_id(created),
                purpose=LinkPurpose.INVITE,
                state=LinkState.ACCEPTED if kind == "accepted" else LinkState.PENDING,
                token_hash=hash_token(f"token of {uid}"),
                created_at=created,
                expires_at=created + timedelta(hours=48),
                ended_at=created + timedelta(hours=1) if kind == "accepted" else None,
                message_id=f"message-of-{uid}",
            )
            links.save(link_rows._to_item(link))
            counts[kind] += 1
    return counts


def measure_size(n: int) -> dict[str, Any]:
    from chalice.test import Client

    from app import app
    from chalicelib.bootstrap import services
    from tests.support import Api, wire

    with env.moto_backend(), Client(app, stage_name="bench") as client:
        METER.forget_tables()
        now = datetime.now(UTC)
        wire(clock=lambda: now)
        started = time.perf_counter()
        with env.unchecked_item_sizes():
            seeded = seed(n, now)
        seconds = time.perf_counter() - started
        api = Api(client)

        with METER.measure() as sweep:
            report = services().sweep.run()
        with METER.measure() as page:
            listed = api.get("/users?$top=100")
        probe = f"user{n // 2 + 7:06d}@example.com"
        with METER.measure() as by_email:
            found = api.get(f"/users?$filter=email eq '{probe}'")
        if listed.status != 200 or len(listed.json["value"]) != 100:
            raise RuntimeError(f"list page failed: {listed.status}")
        if found.status != 200 or len(found.json["value"]) != 1:
            raise RuntimeError(f"email filter failed: {found.status}")
        due_reads = sweep.items_read(operation="Query", index="due")
        return {
            "users": n,
            "seeded": seeded,
            "seed_seconds": round(seconds, 1),
            "sweep": {
                "expired_links": seeded["expired"],
                "expired_by_sweep": report.expired,
                "items_read": sweep.items_read(),
                "due_index_items_read": due_reads,
                "read_over_expired": round(due_reads / max(1, seeded["expired"]), 3),
                **sweep.as_dict(),
            },
            "list_page_100": page.as_dict(),
            "filter_email_eq": by_email.as_dict(),
        }


def run(sizes: tuple[int, ...] = SIZES) -> dict[str, Any]:
    return {"sizes": [measure_size(n) for n in sizes]}


def main() -> None:
    sizes = tuple(int(a) for a in sys.argv[2:]) or SIZES
    emit(run(sizes))


if __name__ == "__main__":
    main()
