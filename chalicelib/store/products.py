"""The product repository: products and the groups that may see them, in one table."""

from __future__ import annotations

from collections.abc import Iterator

from pynamodb.exceptions import PynamoDBException

from chalicelib.domain.subscriptions import Product, ProductState
from chalicelib.domain.tx import Tx
from chalicelib.errors import IdTaken, PreconditionFailed
from chalicelib.store.models import ProductItem
from chalicelib.store.tx import dynamodb_errors, is_condition_failure, writes

PRODUCT_SK = "#product"
KIND = "product"


def _group_sk(group_id: str) -> str:
    return f"group#{group_id.lower()}"


def _to_product(item: ProductItem) -> Product:
    return Product(
        id=item.product_id,
        display_name=item.display_name or "",
        description=item.description,
        terms=item.terms,
        subscription_required=bool(item.subscription_required),
        approval_required=bool(item.approval_required),
        subscriptions_limit=(
            int(item.subscriptions_limit) if item.subscriptions_limit is not None else None
        ),
        state=ProductState(item.state or ProductState.NOT_PUBLISHED.value),
        version=int(item.version or 0),
    )


def _to_item(product: Product) -> ProductItem:
    return ProductItem(
        product_id=product.id,
        sk=PRODUCT_SK,
        kind=KIND,
        display_name=product.display_name,
        description=product.description,
        terms=product.terms,
        subscription_required=product.subscription_required,
        approval_required=product.approval_required,
        subscriptions_limit=product.subscriptions_limit,
        state=product.state.value,
        version=product.version,
    )


def _changed() -> Exception:
    return PreconditionFailed("The product was changed or deleted meanwhile; read it again.")


class ProductRepository:
    """Products by id; a product's groups are one Query of its partition."""

    def get(self, product_id: str) -> Product | None:
        with dynamodb_errors():
            try:
                return _to_product(ProductItem.get(product_id, PRODUCT_SK, consistent_read=True))
            except ProductItem.DoesNotExist:
                return None

    def stage_create(self, tx: Tx, product: Product) -> None:
        writes(tx).put(
            _to_item(product), ProductItem.product_id.does_not_exist(), lambda: IdTaken(product.id)
        )

    def stage_replace(self, tx: Tx, old: Product, new: Product) -> None:
        writes(tx).put(_to_item(new), ProductItem.version == old.version, _changed)

    def stage_delete(self, tx: Tx, product: Product) -> None:
        writes(tx).delete(_to_item(product), ProductItem.version == product.version, _changed)
        for group_id in self.group_ids(product.id):
            writes(tx).delete(
                ProductItem(product_id=product.id, sk=_group_sk(group_id)), None, None
            )

    def iterate(self, after: str | None, budget: int, page_size: int) -> Iterator[Product]:
        condition = ProductItem.product_id > after if after is not None else None
        with dynamodb_errors():
            for item in ProductItem.list_index.query(
                KIND, condition, limit=budget, page_size=page_size
            ):
                yield _to_product(item)

    def group_ids(self, product_id: str) -> list[str]:
        """The groups that may see the product (one Query)."""
        with dynamodb_errors():
            return [
                item.group_id or ""
                for item in ProductItem.query(
                    product_id, ProductItem.sk.startswith("group#"), consistent_read=True
                )
            ]

    def has_group(self, product_id: str, group_id: str) -> bool:
        with dynamodb_errors():
            try:
                ProductItem.get(product_id, _group_sk(group_id), consistent_read=True)
            except ProductItem.DoesNotExist:
                return False
        return True

    def link_group(self, product_id: str, group_id: str) -> bool:
        """True when the link is new, False when it existed already."""
        item = ProductItem(
            product_id=product_id,
            sk=_group_sk(group_id),
            group_key=group_id.lower(),
            group_id=group_id,
        )
        try:
            with dynamodb_errors():
                item.save(condition=ProductItem.sk.does_not_exist())
        except PynamoDBException as exc:
            if is_condition_failure(exc):
                return False
            raise
        return True

    def unlink_group(self, product_id: str, group_id: str) -> None:
        with dynamodb_errors():
            ProductItem(product_id=product_id, sk=_group_sk(group_id)).delete()

    def products_of_group(self, group_id: str) -> list[str]:
        with dynamodb_errors():
            return [i.product_id for i in ProductItem.group_index.query(group_id.lower())]
