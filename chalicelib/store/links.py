"""The link repository: invitation, sign-up and reset links, found by token hash or by user."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

from pynamodb.connection.base import BOTOCORE_EXCEPTIONS
from pynamodb.exceptions import GetError

from chalicelib.domain.links import Link, LinkPurpose, LinkState
from chalicelib.domain.tx import Tx
from chalicelib.domain.users import User
from chalicelib.errors import LinkUnusable
from chalicelib.store.models import LinkItem, UserItem
from chalicelib.store.tx import dynamodb_errors, writes
from chalicelib.store.users import to_user

DUE = "pending"
# Dead links stay readable this long (so a late click hears "expired", not "unknown").
_KEEP_AFTER_EXPIRY = timedelta(days=90)


def _to_link(item: LinkItem) -> Link:
    return Link(
        user_id=item.user_id,
        link_id=item.link_id,
        purpose=LinkPurpose(item.purpose),
        state=LinkState(item.state),
        token_hash=item.token_hash,
        created_at=item.created_at,
        expires_at=item.expires_at,
        ended_at=item.ended_at,
        message_id=item.message_id,
        email_key=item.email_key or "",
        new_email=item.new_email or "",
        token_epoch=item.token_epoch or "",
    )


def _to_item(link: Link) -> LinkItem:
    return LinkItem(
        user_id=link.user_id,
        link_id=link.link_id,
        purpose=link.purpose.value,
        state=link.state.value,
        token_hash=link.token_hash,
        created_at=link.created_at,
        expires_at=link.expires_at,
        ended_at=link.ended_at,
        message_id=link.message_id,
        email_key=link.email_key or None,
        new_email=link.new_email or None,
        token_epoch=link.token_epoch or None,
        due=DUE if link.state is LinkState.PENDING else None,
        purge_at=link.expires_at + _KEEP_AFTER_EXPIRY,
    )


def _gone() -> Exception:
    return LinkUnusable("This link has already been used, revoked or replaced.")


class LinkRepository:
    """Links in DynamoDB; a pending link carries ``due`` so the sweep finds it by expiry."""

    def stage_put(self, tx: Tx, link: Link) -> None:
        writes(tx).put(_to_item(link), LinkItem.link_id.does_not_exist(), None)

    def stage_end(self, tx: Tx, link: Link, state: LinkState, now: datetime) -> None:
        """pending -> accepted/expired/revoked, only if it is still pending.

        Accepting also needs the token that was presented to still be the link's: the relay
        gives a link a new token when it mails it, and only the mailed one may be used. Revoking
        or expiring ends the link whatever its token is now, so that a change racing the relay
        (a delete or a resend just after an invitation) does not fail on the new token.
        """
        condition = LinkItem.state == LinkState.PENDING.value
        if state is LinkState.ACCEPTED:
            condition &= LinkItem.token_hash == link.token_hash
        writes(tx).update(
            LinkItem(user_id=link.user_id, link_id=link.link_id),
            [LinkItem.state.set(state.value), LinkItem.ended_at.set(now), LinkItem.due.remove()],
            condition,
            _gone,
        )

    def stage_rotate(self, tx: Tx, link: Link, new_hash: str) -> None:
        """A new token for a pending link whose email is about to go out (nobody saw the old
        one): only if it is still pending with the token this sender read."""
        writes(tx).update(
            LinkItem(user_id=link.user_id, link_id=link.link_id),
            [LinkItem.token_hash.set(new_hash)],
            (LinkItem.state == LinkState.PENDING.value) & (LinkItem.token_hash == link.token_hash),
            _gone,
        )

    def find_by_token(self, token_hash: str) -> Link | None:
        with dynamodb_errors():
            for item in LinkItem.by_token.query(token_hash, limit=1):
                return _to_link(item)
        return None

    def get(self, user_id: str, link_id: str) -> Link | None:
        with dynamodb_errors():
            try:
                return _to_link(LinkItem.get(user_id, link_id, consistent_read=True))
            except LinkItem.DoesNotExist:
                return None

    def for_user(self, user_id: str, purposes: set[LinkPurpose], limit: int = 100) -> list[Link]:
        """Newest first, one Query."""
        condition = LinkItem.purpose.is_in(*[p.value for p in purposes])
        with dynamodb_errors():
            return [
                _to_link(item)
                for item in LinkItem.query(
                    user_id,
                    filter_condition=condition,
                    scan_index_forward=False,
                    limit=limit,
                    consistent_read=True,
                )
            ]

    def with_user(self, user_id: str, link_id: str) -> tuple[Link | None, User | None]:
        """A link and its account in one strongly consistent BatchGetItem over both tables."""
        link_key = {"user_id": {"S": user_id}, "link_id": {"S": link_id}}
        request: dict[str, object] = {
            "RequestItems": {
                LinkItem.Meta.table_name: {"Keys": [link_key], "ConsistentRead": True},
                UserItem.Meta.table_name: {
                    "Keys": [{"id": {"S": user_id}}],
                    "ConsistentRead": True,
                },
            }
        }
        connection = LinkItem._get_connection().connection
        found: dict[str, list[dict[str, object]]] = {}
        with dynamodb_errors():
            # Two keys: anything DynamoDB leaves unprocessed (throttling) is asked again.
            for _ in range(4):
                try:
                    answer = connection.dispatch("BatchGetItem", request)
                except BOTOCORE_EXCEPTIONS as exc:
                    raise GetError(f"Failed to batch get items: {exc}", exc) from exc
                for table, items in answer.get("Responses", {}).items():
                    found.setdefault(table, []).extend(items)
                if not answer.get("UnprocessedKeys"):
                    break
                request = {"RequestItems": answer["UnprocessedKeys"]}
        links = found.get(LinkItem.Meta.table_name, [])
        users = found.get(UserItem.Meta.table_name, [])
        return (
            _to_link(LinkItem.from_raw_data(links[0])) if links else None,
            to_user(UserItem.from_raw_data(users[0])) if users else None,
        )

    def due(self, now: datetime, limit: int) -> Iterator[Link]:
        """Pending links whose expiry has passed, oldest first, from the sparse index."""
        with dynamodb_errors():
            for item in LinkItem.due_index.query(
                DUE, LinkItem.expires_at <= now, limit=limit, page_size=min(limit, 100)
            ):
                yield _to_link(item)
