"""Every declared rule, on every write path, on DynamoDB Local.

The paths: the repository function, the entity's own ``save()``/``update()``/``delete()``,
``batch_write``, a transaction the app composes (``models.transaction``) and PynamoDB's own
``TransactWrite``. Each test either leaves the table obeying the rule or gets a typed refusal, and
then checks with a raw scan that nothing was written.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from pynamodb.transactions import TransactWrite

from core.config import Settings
from core.errors import (
    AlreadyExists,
    ConflictError,
    DataLayerError,
    InsufficientFunds,
    InvalidInput,
    NotFound,
)
from models import (
    Account,
    EmailClaim,
    Metric,
    MetricAggregate,
    Order,
    OrderStatus,
    Product,
    Transfer,
    User,
    new_order_id,
    transaction,
)
from models.metric import RETENTION
from models.order import ORDER_MOVES
from models.rules import WriteShards
from repositories.accounts import get_account, open_account, transfer_funds
from repositories.batch import batch_write
from repositories.metrics import get_hourly_aggregates, get_metrics, record_metric
from repositories.orders import get_order, get_user_orders, orders_by_status, place_order, set_order_status
from repositories.users import create_user, delete_user, get_user
from tests.helpers import claims, random_email, raw_get, raw_scan

AT = datetime(2025, 6, 1, 12, 30, tzinfo=UTC)


def _claims_of(settings: Settings) -> dict[str, str]:
    return {c["ClaimedEmail"]["S"]: c["UserId"]["S"] for c in claims(settings)}


def _users_emails(settings: Settings) -> dict[str, str]:
    return {i["UserId"]["S"]: i["Email"]["S"] for i in raw_scan(settings) if i["EntityType"]["S"] == "USER"}


def _assert_one_claim_per_user(settings: Settings) -> None:
    """The unique-email rule: every user's email is claimed by it, and no claim is orphaned."""
    assert _claims_of(settings) == {email: user for user, email in _users_emails(settings).items()}


def _refused(
    settings: Settings, error: type[Exception], write: Callable[[], Any], match: str | None = None
) -> None:
    before = raw_scan(settings)
    with pytest.raises(error, match=match):
        write()
    assert raw_scan(settings) == before


# --- unique email -------------------------------------------------------------------------------


def test_an_email_changed_through_save_moves_its_claim(local_table: Settings) -> None:
    ada = create_user("ada@example.com", "Ada")
    user = get_user(ada.user_id)
    user.email = "B@Example.com"
    user.save()
    assert _claims_of(local_table) == {"b@example.com": ada.user_id}
    _refused(local_table, AlreadyExists, lambda: create_user("b@example.com", "Bob"), "taken")
    assert create_user("ada@example.com", "Another Ada").email == "ada@example.com"  # freed
    _assert_one_claim_per_user(local_table)


def test_an_email_changed_through_update_moves_its_claim(local_table: Settings) -> None:
    ada = create_user(random_email(), "Ada")
    taken = create_user(random_email(), "Taken")
    user = get_user(ada.user_id)
    _refused(local_table, AlreadyExists, lambda: user.update([User.email.set(taken.email)]), "taken")
    user.update([User.email.set("new-ada@example.com")])
    assert user.email == "new-ada@example.com" and user.version == 2
    _assert_one_claim_per_user(local_table)


def test_deleting_a_user_through_its_own_delete_frees_its_email(local_table: Settings) -> None:
    ada = create_user("gone@example.com", "Ada")
    get_user(ada.user_id).delete()
    assert _claims_of(local_table) == {}
    assert create_user("gone@example.com", "Next").email == "gone@example.com"
    _assert_one_claim_per_user(local_table)


def test_a_user_saved_directly_claims_its_email_and_a_second_one_cannot_take_it(
    local_table: Settings,
) -> None:
    User(user_id="direct", email="Direct@Example.com", name="D").save()
    _refused(local_table, AlreadyExists,
             lambda: User(user_id="other", email="direct@example.com", name="O").save(), "taken")
    _assert_one_claim_per_user(local_table)


def test_claims_cannot_be_written_by_hand_on_any_path(local_table: Settings) -> None:
    create_user("held@example.com", "Holder")
    forged = EmailClaim(email="free@example.com", user_id="someone")
    _refused(local_table, InvalidInput, forged.save, "written only by")
    _refused(local_table, InvalidInput, lambda: batch_write([forged]), "create_user")
    with pytest.raises(InvalidInput), transaction() as composed:
        composed.save(forged)
    _assert_one_claim_per_user(local_table)


def test_a_composed_transaction_keeps_the_claim_with_the_user(local_table: Settings) -> None:
    with transaction() as composed:
        composed.save(User(user_id="t1", email="t1@example.com", name="T"))
        composed.save(Order(user_id="t1", order_id=new_order_id(AT), amount=Decimal("3"), status="PENDING"))
    _assert_one_claim_per_user(local_table)
    assert [o.user_id for o in get_user_orders("t1").items] == ["t1"]
    with pytest.raises(AlreadyExists), transaction() as composed:  # the email is taken: nothing is written
        composed.save(User(user_id="t2", email="t1@example.com", name="T2"))
        composed.save(Order(user_id="t2", order_id=new_order_id(AT), amount=Decimal("3"), status="PENDING"))
    assert get_user_orders("t2").items == []


def test_pynamodbs_own_transact_write_cannot_skip_the_claim(local_table: Settings) -> None:
    user = User(user_id="raw", email="raw@example.com", name="Raw")
    connection = User._get_connection().connection
    before = raw_scan(local_table)
    with pytest.raises(InvalidInput, match="transaction"), TransactWrite(connection=connection) as raw:
        raw.save(user)
    assert raw_scan(local_table) == before


# --- derived keys -------------------------------------------------------------------------------


def _order(local_table: Settings, status: OrderStatus = OrderStatus.PENDING) -> Order:
    user = create_user(random_email(), "Buyer")
    return place_order(user.user_id, Decimal("10"), status=status)


def test_an_order_updated_through_its_own_update_moves_in_gsi1(local_table: Settings) -> None:
    order = _order(local_table)
    order.update([Order.status.set(OrderStatus.PAID)])
    stored = raw_get(local_table, Order, user_id=order.user_id, order_id=order.order_id)
    assert stored is not None
    assert (stored["Status"], stored["GSI1PK"]) == ({"S": "PAID"}, {"S": "STATUS#PAID"})
    assert [o.order_id for o in orders_by_status("PAID").items] == [order.order_id]
    assert orders_by_status("PENDING").items == []


def test_an_order_saved_with_a_new_status_moves_in_gsi1(local_table: Settings) -> None:
    order = get_order(*_ids(_order(local_table)))
    order.status = OrderStatus.CANCELLED
    order.save()
    assert [o.order_id for o in orders_by_status("CANCELLED").items] == [order.order_id]


def _ids(order: Order) -> tuple[str, str]:
    return order.user_id, order.order_id


def test_a_key_part_of_the_table_key_cannot_be_updated(local_table: Settings) -> None:
    order = _order(local_table)
    new_id, new_key = [Order.order_id.set(new_order_id())], [Order.gsi1pk.set("STATUS#PAID")]
    _refused(local_table, InvalidInput, lambda: order.update(new_id), "table key")
    _refused(local_table, InvalidInput, lambda: order.update(new_key), "kept by")


# --- value rules --------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["update", "save", "batch", "transaction"])
def test_a_negative_amount_is_refused_on_every_path(local_table: Settings, path: str) -> None:
    order = _order(local_table)

    def write() -> None:
        if path == "update":
            order.update([Order.amount.set(Decimal("-5"))])
        order.amount = Decimal("-5")
        if path == "save":
            order.save()
        elif path == "batch":
            batch_write([Order(user_id=order.user_id, order_id=new_order_id(), amount=Decimal("-5"),
                               status="PENDING")])
        elif path == "transaction":
            with transaction() as composed:
                composed.save(order)

    _refused(local_table, InvalidInput, write)


@pytest.mark.parametrize(("price", "name"), [
    (Decimal("1.005"), "Lamp"), (Decimal("-1"), "Lamp"),
    (Decimal("1"), "bad\u202ename"), (Decimal("1"), "a\x00b"),
])
def test_a_product_breaking_a_value_rule_is_refused_on_every_path(
    local_table: Settings, price: Decimal, name: str
) -> None:
    for write in (
        lambda: Product(product_id="p1", name=name, price=price).save(),
        lambda: batch_write([Product(product_id="p1", name=name, price=price)]),
    ):
        _refused(local_table, InvalidInput, write)


# --- lifecycle ----------------------------------------------------------------------------------

DISALLOWED = [(old, new) for old in OrderStatus for new in OrderStatus
              if old != new and new not in ORDER_MOVES.get(old, ())]


@pytest.mark.parametrize(("old", "new"), DISALLOWED, ids=[f"{a.value}->{b.value}" for a, b in DISALLOWED])
def test_a_disallowed_status_move_is_refused_on_every_path(
    local_table: Settings, old: OrderStatus, new: OrderStatus
) -> None:
    order = _order(local_table, status=old)
    _refused(local_table, InvalidInput, lambda: set_order_status(order, new), "cannot move")
    _refused(local_table, InvalidInput, lambda: get_order(*_ids(order)).update([Order.status.set(new)]))

    def save() -> None:
        stored = get_order(*_ids(order))
        stored.status = new
        stored.save()

    def composed() -> None:
        with transaction() as t:
            t.update(get_order(*_ids(order)), [Order.status.set(new)])

    def pynamodb_transaction() -> None:
        with TransactWrite(connection=Order._get_connection().connection) as raw:
            raw.update(get_order(*_ids(order)), [Order.status.set(new)])

    for write in (save, composed, pynamodb_transaction):
        _refused(local_table, InvalidInput, write)
    assert get_order(*_ids(order)).status is old


def test_every_allowed_move_goes_through_and_a_stale_move_conflicts(local_table: Settings) -> None:
    order = _order(local_table)
    paid = set_order_status(order, "PAID")
    shipped = set_order_status(paid, "SHIPPED")
    _refused(local_table, ConflictError, lambda: set_order_status(paid, "CANCELLED"))  # read before SHIPPED
    delivered = set_order_status(shipped, "DELIVERED")
    assert [o.order_id for o in orders_by_status("DELIVERED").items] == [delivered.order_id]


# --- ownership ----------------------------------------------------------------------------------


def test_an_order_needs_its_user_on_every_path(local_table: Settings) -> None:
    orphan = Order(user_id="nobody", order_id=new_order_id(AT), amount=Decimal(1), status="PENDING")
    _refused(local_table, NotFound, lambda: place_order("nobody", 1), "does not exist")
    _refused(local_table, NotFound, orphan.save, "does not exist")

    def composed() -> None:
        with transaction() as t:
            t.save(orphan)

    _refused(local_table, NotFound, composed)
    _refused(local_table, InvalidInput, lambda: batch_write([orphan]), "save")


def test_a_deleted_users_id_is_never_reused_so_its_orders_are_never_inherited(local_table: Settings) -> None:
    first = create_user(random_email(), "First", user_id="reused")
    place_order(first.user_id, 7)
    delete_user(get_user("reused"))
    for write in (lambda: create_user(random_email(), "Second", user_id="reused"),
                  lambda: User(user_id="reused", email=random_email(), name="Third").save()):
        _refused(local_table, AlreadyExists, write, "not reused")
    _refused(local_table, NotFound, lambda: place_order("reused", 1))
    assert len(get_user_orders("reused").items) == 1  # kept as a record of the deleted user


# --- accounts and transfers ---------------------------------------------------------------------


def test_a_balance_changes_only_through_transfer_funds(local_table: Settings) -> None:
    rich, poor = open_account(balance=Decimal(100)), open_account()
    account = get_account(rich.account_id)
    account.balance = Decimal(1_000_000)
    _refused(local_table, InvalidInput, account.save, "transfer_funds")
    set_balance = [Account.balance.set(Decimal(5))]
    _refused(local_table, InvalidInput, lambda: account.update(set_balance), "transfer_funds")
    _refused(local_table, InvalidInput, account.delete, "cannot be deleted")
    _refused(local_table, InvalidInput, lambda: batch_write([account]), "transfer_funds")
    transfer_funds(rich.account_id, poor.account_id, Decimal("2.50"))
    # A Transfer's own save is a transfer: it moves its amount in the same transaction, or nothing.
    direct = Transfer(transfer_id="t", from_account=rich.account_id, to_account=poor.account_id,
                      amount=Decimal(1))
    direct.save()
    too_much = Transfer(transfer_id="t2", from_account=poor.account_id, to_account=rich.account_id,
                        amount=Decimal(1000))
    _refused(local_table, InsufficientFunds, too_much.save)
    _refused(local_table, InvalidInput, direct.delete, "written once")
    more = [Transfer.amount.set(Decimal(9))]
    _refused(local_table, InvalidInput, lambda: direct.update(more), "written once")
    _refused(local_table, InvalidInput, lambda: batch_write([too_much]), "transfer_funds")
    assert (get_account(rich.account_id).balance, get_account(poor.account_id).balance) == (
        Decimal("96.50"), Decimal("3.50"))


# --- derived items, TTL, dimensions, shards -----------------------------------------------------


def test_readings_and_their_aggregate_change_only_together(local_table: Settings) -> None:
    point = Metric(device_id="d1", metric_name="temp", timestamp=AT, value=Decimal(3))
    point.save()  # the entity's own save folds into the aggregate too
    record_metric("d1", "temp", 5, at=AT + timedelta(minutes=1))
    (hourly,) = get_hourly_aggregates("d1", AT, AT)
    assert (hourly.sample_count, hourly.total, hourly.minimum, hourly.maximum) == (2, 8, 3, 5)
    forged = MetricAggregate(device_id="d1", metric_name="temp", hour="2025-06-01T12", sample_count=999)
    for write in (forged.save, lambda: batch_write([forged]),
                  lambda: hourly.update([MetricAggregate.sample_count.set(9)]),
                  lambda: batch_write([Metric(device_id="d1", metric_name="temp", timestamp=AT, value=1)]),
                  lambda: point.update([Metric.value.set(Decimal(1))]), point.delete):
        _refused(local_table, InvalidInput, write)


def test_points_and_aggregates_both_expire(local_table: Settings) -> None:
    point = record_metric("d2", "temp", 1, at=AT)
    (hourly,) = get_hourly_aggregates("d2", AT, AT)
    assert point.expires_at is not None and hourly.expires_at is not None
    assert hourly.expires_at >= point.expires_at == (AT + RETENTION).replace(microsecond=0)
    assert hourly.expires_at == datetime(2025, 6, 1, 13, tzinfo=UTC) + RETENTION


def test_two_readings_at_one_instant_with_other_dimensions_are_two_readings(local_table: Settings) -> None:
    record_metric("d3", "temp", 1, at=AT, dimensions={"room": "kitchen"})
    record_metric("d3", "temp", 2, at=AT, dimensions={"room": "hall"})
    with pytest.raises(AlreadyExists):
        record_metric("d3", "temp", 9, at=AT, dimensions={"room": "hall"})
    assert sorted(m.value for m in get_metrics("d3", AT, AT)) == [1, 2]
    (hourly,) = get_hourly_aggregates("d3", AT, AT)
    assert (hourly.sample_count, hourly.total) == (2, 3)


def test_the_declared_shard_count_is_what_writes_and_default_reads_use(
    local_table: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    shards = tuple(WriteShards(4) if isinstance(r, WriteShards) else r for r in Metric.rules)
    monkeypatch.setattr(Metric, "rules", shards)
    points = [record_metric("d4", "temp", i, at=AT + timedelta(seconds=i)) for i in range(12)]
    assert {p.shard for p in points} == {0, 1, 2, 3}
    assert [m.value for m in get_metrics("d4", AT, AT + timedelta(minutes=1))] == list(range(12))
    (hourly,) = get_hourly_aggregates("d4", AT, AT)
    assert hourly.sample_count == 12


def test_a_data_layer_error_names_what_to_use_instead(local_table: Settings) -> None:
    with pytest.raises(DataLayerError, match="record_metric"):
        batch_write([MetricAggregate(device_id="d", metric_name="n", hour="2025-06-01T12")])


def test_a_copy_made_by_hand_cannot_move_an_email_or_a_status_behind_the_rules(local_table: Settings) -> None:
    ada = create_user("right@example.com", "Ada")
    order = place_order(ada.user_id, 4, status="PENDING")
    set_order_status(set_order_status(set_order_status(order, "PAID"), "SHIPPED"), "DELIVERED")
    stored_user, stored_order = get_user(ada.user_id), get_order(*_ids(order))
    # Never read: each believes in another stored value than the table holds.
    user = User(user_id=ada.user_id, email="wrong@example.com", name="Ada", version=stored_user.version)
    again = Order(user_id=order.user_id, order_id=order.order_id, amount=Decimal(4), status="PENDING",
                  version=stored_order.version)
    _refused(local_table, ConflictError, user.save)
    _refused(local_table, ConflictError, again.save)
    _refused(local_table, ConflictError, lambda: again.update([Order.status.set(OrderStatus.CANCELLED)]))
    _assert_one_claim_per_user(local_table)


def test_an_hours_sum_never_blocks_a_valid_reading(local_table: Settings) -> None:
    for i, value in enumerate(["0.1", "0.2", "1E22", "1E-20", "5"]):
        record_metric("d5", "load", Decimal(value), at=AT + timedelta(seconds=i))
    (hourly,) = get_hourly_aggregates("d5", AT, AT)
    assert hourly.sample_count == 5  # every reading counted, none refused
    # Exact while the sum fits in 38 digits; then rounded to DynamoDB's 38 significant digits.
    assert hourly.total == Decimal("10000000000000000000005.3")
    assert (hourly.minimum, hourly.maximum) == (Decimal("1E-20"), Decimal("1E22"))
