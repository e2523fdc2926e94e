"""Lower-case every stored user's Email and write its EMAIL# claim item where it is missing; the
user's old claim under the original spelling is deleted in the same transaction."""

from __future__ import annotations

from datetime import UTC, datetime

from migrations.context import Delete, Item, ItemFailed, ItemUpdate, MigrationContext, Put

revision = "0004"
down_revision = "0003"

# The layout as it was when this revision was written (not imported from models/): users are
# USER#{user_id} / PROFILE with EntityType USER; a claim is EMAIL#{email} / EMAIL, owned by UserId,
# with the address under ClaimedEmail so that claims stay out of the sparse Email-Index.
USER = {"EntityType": {"S": "USER"}}
DELIMITER = "#"


def upgrade(ctx: MigrationContext) -> None:
    def lower_case(user: Item) -> ItemUpdate | None:
        email = user.get("Email", {}).get("S")
        user_id = user.get("UserId", {}).get("S")
        if not email or not user_id:
            raise ItemFailed("a USER item without Email or UserId")
        lowered = email.strip().lower()
        if not lowered or DELIMITER in lowered:
            raise ItemFailed("its email cannot be a key part (empty, or holds '#')")
        claim_key = {"PK": {"S": f"EMAIL#{lowered}"}, "SK": {"S": "EMAIL"}}
        claim = ctx.get_item(claim_key)
        if claim is not None and claim.get("UserId", {}).get("S") != user_id:
            raise ItemFailed("its lower-cased email is claimed by another user")
        if lowered == email and claim is not None:
            return None  # done already
        now = {"S": datetime.now(UTC).isoformat()}
        puts = (
            []
            if claim is not None
            else [
                Put(
                    {
                        **claim_key,
                        "EntityType": {"S": "EMAIL"},
                        "ClaimedEmail": {"S": lowered},
                        "UserId": {"S": user_id},
                        "CreatedAt": now,
                        "UpdatedAt": now,
                        "Version": {"N": "1"},
                    }
                )
            ]
        )
        if lowered == email:
            return ItemUpdate(expect={"Email": {"S": email}}, puts=puts)
        # The claim under the old spelling would be orphaned: delete it with the change, if (and
        # while) it is this user's.
        old_key = {"PK": {"S": f"EMAIL#{email}"}, "SK": {"S": "EMAIL"}}
        old_claim = ctx.get_item(old_key)
        owned = old_claim is not None and old_claim.get("UserId", {}).get("S") == user_id
        deletes = [Delete(old_key, expect={"UserId": {"S": user_id}})] if owned else []
        # Bump Version so that a writer holding the old user (optimistic lock) cannot put the old
        # address back.
        bump = {"Version": {"N": "1"}} if "Version" in user else {}
        return ItemUpdate(
            set={"Email": {"S": lowered}, "UpdatedAt": now},
            add=bump,
            expect={"Email": {"S": email}},
            puts=puts,
            deletes=deletes,
        )

    ctx.backfill("lower-case-emails", lower_case, where=USER, mark=False)


def downgrade(ctx: MigrationContext) -> None:
    ctx.note("lower-cased emails and their claims stay: the original spellings are not kept")
