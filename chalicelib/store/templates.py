"""The template repository: one item per customized email template; none means the default."""

from __future__ import annotations

from collections.abc import Iterable

from chalicelib.domain.email_templates import StoredTemplate, TemplateParameter
from chalicelib.domain.tx import Tx
from chalicelib.errors import PreconditionFailed
from chalicelib.store.models import TemplateItem, TemplateParameterMap
from chalicelib.store.tx import dynamodb_errors, writes


def _to_stored(item: TemplateItem) -> StoredTemplate:
    return StoredTemplate(
        name=item.name,
        subject=item.subject,
        body=item.body,
        text=item.text,
        title=item.title,
        description=item.description,
        parameters=tuple(
            TemplateParameter(p.name, p.title or "", p.description or "")
            for p in item.parameters or []
        ),
        version=int(item.version),
        updated_at=item.updated_at,
    )


def _to_item(stored: StoredTemplate) -> TemplateItem:
    return TemplateItem(
        name=stored.name,
        subject=stored.subject,
        body=stored.body,
        text=stored.text,
        title=stored.title,
        description=stored.description,
        parameters=[
            TemplateParameterMap(name=p.name, title=p.title, description=p.description)
            for p in stored.parameters
        ],
        version=stored.version,
        updated_at=stored.updated_at,
    )


def _changed_meanwhile() -> Exception:
    return PreconditionFailed("The template was changed meanwhile; read it again.")


class TemplateRepository:
    """Customized templates by camelCase name."""

    def get(self, name: str) -> StoredTemplate | None:
        with dynamodb_errors():
            try:
                return _to_stored(TemplateItem.get(name, consistent_read=True))
            except TemplateItem.DoesNotExist:
                return None

    def get_many(self, names: Iterable[str]) -> dict[str, StoredTemplate]:
        """One BatchGet (there are 14 names, below its limit of 100 keys)."""
        with dynamodb_errors():
            return {
                item.name: _to_stored(item)
                for item in TemplateItem.batch_get(sorted(set(names)), consistent_read=True)
            }

    def stage_put(self, tx: Tx, new: StoredTemplate, old: StoredTemplate | None) -> None:
        """Save ``new`` if the stored state is still ``old`` (None: still the default)."""
        condition = (
            TemplateItem.name.does_not_exist()
            if old is None
            else TemplateItem.version == old.version
        )
        writes(tx).put(_to_item(new), condition, _changed_meanwhile)

    def stage_delete(self, tx: Tx, old: StoredTemplate) -> None:
        writes(tx).delete(_to_item(old), TemplateItem.version == old.version, _changed_meanwhile)
