"""The user repository: rows to dataclasses, DynamoDB failures to domain errors."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from pynamodb.connection import Connection
from pynamodb.exceptions import PynamoDBException, TransactWriteError
from pynamodb.transactions import TransactWrite

from chalicelib.config import Settings
from chalicelib.domain.users import Identity, User, UserState
from chalicelib.errors import EmailTaken, IdTaken, PreconditionFailed, ResourceNotFound, ServiceBusy
from chalicelib.store.models import LIST_PARTITION, EmailLockItem, IdentityMap, UserItem, bind

_BUSY_CODES = {
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "TransactionConflictException",
    "TransactionInProgressException",
    "InternalServerError",
}


def _to_user(item: UserItem) -> User:
    return User(
        id=item.id,
        email=item.email,
        first_name=item.first_name,
        last_name=item.last_name,
        state=UserState(item.state),
        note=item.note,
        registration_date=item.registration_date,
        identities=tuple(Identity(i.provider, i.id) for i in item.identities or []),
        version=int(item.version),
        password_hash=item.password_hash,
    )


def _to_item(user: User) -> UserItem:
    return UserItem(
        id=user.id,
        kind=LIST_PARTITION,
        email=user.email,
        email_key=user.email_key,
        first_name=user.first_name,
        last_name=user.last_name,
        state=user.state.value,
        note=user.note,
        registration_date=user.registration_date,
        identities=[IdentityMap(provider=i.provider, id=i.id) for i in user.identities],
        version=user.version,
        password_hash=user.password_hash,
    )


def _reasons(exc: TransactWriteError) -> list[str | None]:
    """Cancellation codes in the order PynamoDB sent the items: checks, deletes, puts, updates."""
    return [r.code if r else None for r in (exc.cancellation_reasons or [])]


@contextmanager
def _dynamodb_errors() -> Iterator[None]:
    """Throttling and transaction conflicts become ServiceBusy; nothing was written."""
    try:
        yield
    except TransactWriteError as exc:
        reasons = _reasons(exc)
        if exc.cause_response_code in _BUSY_CODES or "TransactionConflict" in reasons:
            raise ServiceBusy("The service is busy; retry the request.") from exc
        raise
    except PynamoDBException as exc:
        if exc.cause_response_code in _BUSY_CODES:
            raise ServiceBusy("The service is busy; retry the request.") from exc
        raise


class UserRepository:
    """Users and their email locks in DynamoDB."""

    def __init__(self, settings: Settings) -> None:
        bind(settings)
        self._settings = settings
        self._connection: Connection | None = None

    def _tx(self) -> TransactWrite:
        if self._connection is None:
            self._connection = Connection(region=self._settings.region)
        return TransactWrite(connection=self._connection)

    def get(self, user_id: str) -> User | None:
        with _dynamodb_errors():
            try:
                return _to_user(UserItem.get(user_id, consistent_read=True))
            except UserItem.DoesNotExist:
                return None

    def require(self, user_id: str) -> User:
        user = self.get(user_id)
        if user is None:
            raise ResourceNotFound(f"User not found: '{user_id}'.")
        return user

    def create(self, user: User) -> None:
        """Write the user and claim its email in one transaction."""
        try:
            with _dynamodb_errors(), self._tx() as tx:
                tx.save(_to_item(user), condition=UserItem.id.does_not_exist())
                tx.save(
                    EmailLockItem(email_key=user.email_key, user_id=user.id),
                    condition=EmailLockItem.email_key.does_not_exist(),
                )
        except TransactWriteError as exc:
            reasons = _reasons(exc)
            if reasons and reasons[0] == "ConditionalCheckFailed":
                raise IdTaken(user.id) from exc
            if len(reasons) > 1 and reasons[1] == "ConditionalCheckFailed":
                raise EmailTaken(f"Email '{user.email}' is already in use.") from exc
            raise

    def replace(self, old: User, new: User) -> None:
        """Overwrite ``old`` with ``new`` if nobody changed it since; moves the email lock."""
        condition = UserItem.version == old.version
        if new.email_key == old.email_key:
            try:
                with _dynamodb_errors():
                    _to_item(new).save(condition=condition)
            except PynamoDBException as exc:
                if exc.cause_response_code == "ConditionalCheckFailedException":
                    raise PreconditionFailed(
                        "The user was changed or deleted meanwhile; read it again."
                    ) from exc
                raise
            return
        try:
            with _dynamodb_errors(), self._tx() as tx:
                tx.save(_to_item(new), condition=condition)
                tx.save(
                    EmailLockItem(email_key=new.email_key, user_id=new.id),
                    condition=EmailLockItem.email_key.does_not_exist(),
                )
                tx.delete(
                    EmailLockItem(email_key=old.email_key),
                    condition=EmailLockItem.user_id == old.id,
                )
        except TransactWriteError as exc:
            reasons = _reasons(exc)
            # PynamoDB sends deletes before puts: [old lock, user, new lock].
            if len(reasons) > 2 and reasons[2] == "ConditionalCheckFailed":
                raise EmailTaken(f"Email '{new.email}' is already in use.") from exc
            if "ConditionalCheckFailed" in reasons:
                raise PreconditionFailed(
                    "The user was changed or deleted meanwhile; read it again."
                ) from exc
            raise

    def delete(self, user: User) -> None:
        """Remove the user and free its email, if nobody changed it since it was read."""
        try:
            with _dynamodb_errors(), self._tx() as tx:
                tx.delete(_to_item(user), condition=UserItem.version == user.version)
                tx.delete(
                    EmailLockItem(email_key=user.email_key),
                    condition=EmailLockItem.user_id == user.id,
                )
        except TransactWriteError as exc:
            if "ConditionalCheckFailed" in _reasons(exc):
                raise PreconditionFailed(
                    "The user was changed or deleted meanwhile; read it again."
                ) from exc
            raise

    def find_by_email(self, email_key: str) -> User | None:
        """One Query on the email index."""
        with _dynamodb_errors():
            for item in UserItem.email_index.query(email_key, limit=1):
                return _to_user(item)
        return None

    def iterate(self, after_id: str | None, budget: int, page_size: int) -> Iterator[User]:
        """Users in id order after ``after_id``, reading at most ``budget`` items."""
        condition = UserItem.id > after_id if after_id is not None else None
        with _dynamodb_errors():
            for item in UserItem.list_index.query(
                LIST_PARTITION, condition, limit=budget, page_size=page_size
            ):
                yield _to_user(item)
