"""Move every stored user's Email to its canonical form (NFKC, case-folded, IDNA domain in Unicode)
and claim it; the user's claim under the old form is deleted in the same transaction.

The canonical form is ``core.emails.canonical_email``, the one the application stores and looks
up (``core/`` is shared by models/ and migrations/; nothing here comes from models/): a copy kept
in this file could drift from it and claim addresses under a form no lookup ever uses. A user
whose canonical email is claimed by another user, or whose stored email the canonical rules now
refuse (mixed scripts, a look-alike of a Latin address, unsafe characters), fails with a reason
and is left as it is: change or delete that user, then run ``upgrade`` again (the backfill resumes
and retries only what failed).
"""

from __future__ import annotations

from datetime import UTC, datetime

from core.emails import canonical_email
from core.errors import InvalidInput, InvalidKey
from migrations.context import Delete, Item, ItemFailed, ItemUpdate, MigrationContext, Put

revision = "0005"
down_revision = "0004"

# The layout as it was when this revision was written (not imported from models/): users are
# USER#{user_id} / PROFILE with EntityType USER; a claim is EMAIL#{email} / EMAIL, owned by UserId,
# with the address under ClaimedEmail so that claims stay out of the sparse Email-Index.
USER = {"EntityType": {"S": "USER"}}


def _claim_key(email: str) -> Item:
    return {"PK": {"S": f"EMAIL#{email}"}, "SK": {"S": "EMAIL"}}


def upgrade(ctx: MigrationContext) -> None:
    def canonicalize(user: Item) -> ItemUpdate | None:
        email = user.get("Email", {}).get("S")
        user_id = user.get("UserId", {}).get("S")
        if not email or not user_id:
            raise ItemFailed("a USER item without Email or UserId")
        try:
            canonical = canonical_email(email)
        except InvalidKey:
            raise ItemFailed("its canonical email cannot be a key part (it holds '#')") from None
        except InvalidInput as exc:  # the message names the rule, never the address
            raise ItemFailed(f"its email is refused by the canonical rules ({exc})") from None
        claim_key = _claim_key(canonical)
        claim = ctx.get_item(claim_key)
        if claim is not None and claim.get("UserId", {}).get("S") != user_id:
            raise ItemFailed("its canonical email is claimed by another user")
        if canonical == email and claim is not None:
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
                        "ClaimedEmail": {"S": canonical},
                        "UserId": {"S": user_id},
                        "CreatedAt": now,
                        "UpdatedAt": now,
                        "Version": {"N": "1"},
                    }
                )
            ]
        )
        if canonical == email:
            return ItemUpdate(expect={"Email": {"S": email}}, puts=puts)
        # The claim under the old form would be orphaned, and would keep that spelling taken:
        # delete it with the change, if (and while) it is this user's.
        old_key = _claim_key(email)
        old_claim = ctx.get_item(old_key)
        owned = old_claim is not None and old_claim.get("UserId", {}).get("S") == user_id
        deletes = [Delete(old_key, expect={"UserId": {"S": user_id}})] if owned else []
        # Bump Version so that a writer holding the old user (optimistic lock) cannot put the old
        # form back.
        bump = {"Version": {"N": "1"}} if "Version" in user else {}
        return ItemUpdate(
            set={"Email": {"S": canonical}, "UpdatedAt": now},
            add=bump,
            expect={"Email": {"S": email}},
            puts=puts,
            deletes=deletes,
        )

    ctx.backfill("canonical-emails", canonicalize, where=USER, mark=False)


def downgrade(ctx: MigrationContext) -> None:
    ctx.note("canonical emails and their claims stay: the earlier spellings are not kept")
