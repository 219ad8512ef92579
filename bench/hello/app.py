"""The cold-start baseline: a hello-world Chalice app whose one route does one PynamoDB GetItem."""

import os

from chalice import Chalice
from pynamodb.attributes import UnicodeAttribute
from pynamodb.models import Model

app = Chalice(app_name="hello")


class User(Model):
    class Meta:
        table_name = os.environ.get("HELLO_TABLE", "hello-users")
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION", "us-east-1")

    id = UnicodeAttribute(hash_key=True)
    email = UnicodeAttribute(null=True)


@app.route("/users/{user_id}")
def get_user(user_id: str) -> dict[str, str | None]:
    user = User.get(user_id, consistent_read=True)
    return {"id": user.id, "email": user.email}
