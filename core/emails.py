"""The canonical form of an email address: one spelling for every way of writing the same address.

``canonical_email(value)`` is what ``models.attributes.EmailAttribute`` stores in ``Email``, what
the ``EMAIL#{email}`` claim key is made of and what ``find_user_by_email`` looks up in Email-Index:
one form for all three, so two spellings a person would read as the same address never become two
users. The rules, in order:

1. Syntax, Unicode and IDNA are ``email-validator``'s (``validate_email`` with every option given
   here, so a process-wide default changed by an app cannot change the form): the local part is
   NFC-normalized; the domain is checked and normalized by IDNA 2008 with UTS #46 mapping and
   returned in Unicode, lower-cased (``xn--mnchen-3ya.de``, ``München.DE`` -> ``münchen.de``);
   quoted local parts, address literals, display names, special-use domains (``localhost``,
   ``.local``, ``.test``, ...) and unsafe or invisible characters (zero-width space, soft hyphen,
   bidirectional controls, control characters) are refused. So is every other character Unicode
   says is drawn as nothing (Default_Ignorable_Code_Point: the combining grapheme joiner,
   variation selectors, the Hangul fillers), which email-validator lets through.
2. The local part is NFKC-normalized, then case-folded (``str.casefold``), then NFC-normalized
   again; an ``i`` keeps no combining dot above (case folding turns ``İ`` into ``i`` + U+0307,
   which NFC cannot compose). So a fullwidth ``a`` (U+FF41) is ``a``, ``ß`` is ``ss``, the
   ligature U+FB01 is ``fi``, ``İ`` (U+0130) is ``i``. The domain is left as email-validator
   returns it: under IDNA 2008 ``faß.de`` and ``fass.de`` are two different domains, so they
   stay distinct.
3. Look-alikes across scripts are refused rather than guessed at: a local part or a domain label
   whose letters belong to more than one script (``paypal`` with a Cyrillic U+0430) is refused,
   except the mixes in which Japanese, Chinese and Korean are written (Han with Hiragana and
   Katakana, Bopomofo or Hangul, and Latin with any of them: UTS #39's "highly restrictive"
   level). A letter's script is the first word of its Unicode name; digits, punctuation, marks
   and modifier letters belong to none. A part written entirely in Cyrillic or Greek letters that
   look like Latin ones (``apple`` spelled in Cyrillic, a lone U+0430) is refused too, as browsers
   refuse to display such whole-script confusable domain labels.
4. The result must still be an address email-validator accepts (NFKC can make ``..`` or a space
   out of other characters), at most 254 characters with a local part of at most 64, without
   whitespace, with a domain of at least two labels. ``#`` is the key delimiter of the claim's key
   and raises ``InvalidKey``.

Any other address written in one script stays valid and distinct from its Latin transliteration:
``пример@example.com`` (a Cyrillic word that is not made only of Latin look-alikes), ``αλφα@`` in
Greek, ``用户@例子.中国``. Refusals raise ``core.errors.InvalidInput`` (email-validator's message
when it refused, with its exception as the cause) and never echo the address: emails are
personal data.

The form is applied to every write and lookup. Revision files may import this module (it lives in
``core/``, the side that both ``models/`` and ``migrations/`` use, and imports nothing of
``models/``): a backfill that moves stored addresses to the canonical form must write claims under
exactly the form the application looks up, so it calls this one definition instead of a copy
that could drift from it. A later change of the form is a later revision that runs the backfill
again.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from typing import Any

from core.errors import InvalidInput, InvalidKey

__all__ = [
    "KEY_DELIMITER",
    "MAX_EMAIL_INPUT_LENGTH",
    "MAX_EMAIL_LENGTH",
    "MAX_EMAIL_LOCAL_PART_LENGTH",
    "canonical_email",
]

MAX_EMAIL_LENGTH = 254  # RFC 5321's limit on a forward path
MAX_EMAIL_LOCAL_PART_LENGTH = 64  # RFC 5321's limit on a local part
# Input longer than this is refused before it is copied or normalized: far more than an address
# needs even with surrounding whitespace, and cheap to reject.
MAX_EMAIL_INPUT_LENGTH = 2 * MAX_EMAIL_LENGTH + 1024
KEY_DELIMITER = "#"

_WHITESPACE = re.compile(r"\s")
# Unicode's Default_Ignorable_Code_Point characters (DerivedCoreProperties.txt): drawn as nothing.
# email-validator refuses those of them that are format characters or unassigned (U+200B, U+00AD,
# tags...); a few are not (the combining grapheme joiner, variation selectors, the Hangul fillers),
# and an address holding one looks exactly like the address without it.
_INVISIBLE = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e"
    "\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufff8\U0001bca0-\U0001bca3"
    "\U0001d173-\U0001d17a\U000e0000-\U000e0fff]"
)
# idna's messages, which email-validator passes on, quote the offending label: not repeated (a
# single quoted character, which names what is wrong, is kept).
_QUOTED = re.compile(r"b?'[^']{2,}'")
_DOT_ABOVE = "\u0307"
_ABOVE = 230  # the canonical combining class of marks written above the base letter
_SCRIPT_LETTERS = frozenset({"Lu", "Ll", "Lt", "Lo"})  # modifier letters (Lm) belong to no script
# The scripts one part may mix: how Japanese, Chinese and Korean are written (UTS #39, "highly
# restrictive"). The names are the first words of Unicode character names ("CJK UNIFIED IDEOGRAPH").
_ALLOWED_MIXES = (
    frozenset({"LATIN", "CJK", "HIRAGANA", "KATAKANA"}),
    frozenset({"LATIN", "CJK", "BOPOMOFO"}),
    frozenset({"LATIN", "CJK", "HANGUL"}),
)
# Letters that read as Latin ones (after case folding), after the lists browsers use to refuse
# whole-script confusable domain labels. Small on purpose: a part made only of these is refused.
# Written as escapes, so that what looks like a Latin letter here is not one.
_LATIN_LOOK_ALIKES = {
    "CYRILLIC": frozenset(  # a c d e h i j l o p q s w x y y b b e n r v w
        "\u0430\u0441\u0501\u0435\u04bb\u0456\u0458\u04cf\u043e\u0440\u051b\u0455\u051d\u0445\u0443"
        "\u04af\u044a\u044c\u04bd\u043f\u0433\u0475\u0461"
    ),
    "GREEK": frozenset("\u03b1\u03b3\u03b9\u03bd\u03bf\u03c1\u03c5\u03c7\u03c9"),  # a y i v o p u x w
}


def canonical_email(value: Any, what: str = "email") -> str:
    """The canonical form of the email address ``value`` (rules in the module docstring).

    ``InvalidInput`` if it is refused (``InvalidKey`` if its canonical form holds ``#``); the
    message says why, never what the address was. ``what`` names the value in messages.
    """
    if not isinstance(value, str):
        raise InvalidInput(f"{what} must be a string, got {type(value).__name__}")
    if len(value) > MAX_EMAIL_INPUT_LENGTH:
        raise InvalidInput(f"{what} is longer than {MAX_EMAIL_LENGTH} characters")
    address = value.strip()
    _check_visible(address, what)
    local, domain = _validated(address, what)
    local = _fold(local)
    email = f"{local}@{domain}"
    _check_shape(email, local, domain, what)
    if _validated(email, what) != (local, domain):  # pragma: no cover - folding is idempotent
        raise InvalidInput(f"{what} has no stable canonical form")
    _check_scripts(local, "local part", what)
    for label in domain.split("."):
        _check_scripts(label, "domain label", what)
    return email


def _validated(address: str, what: str) -> tuple[str, str]:
    """email-validator's (local part, domain) of ``address``; ``InvalidInput`` if it refuses it."""
    # Imported on first use: compiling its patterns costs tens of milliseconds, which an app that
    # never handles an address (a metrics writer, a cold Lambda) should not pay at import.
    from email_validator import EmailNotValidError, validate_email

    try:
        validated = validate_email(
            address,
            allow_smtputf8=True,
            allow_empty_local=False,
            allow_quoted_local=False,
            allow_domain_literal=False,
            allow_display_name=False,
            strict=False,
            check_deliverability=False,
            test_environment=False,
            globally_deliverable=True,
        )
    except EmailNotValidError as exc:
        raise InvalidInput(f"{what}: {_QUOTED.sub(_hide_label, str(exc))}") from exc
    return validated.local_part, validated.domain


def _hide_label(_: re.Match[str]) -> str:
    """What stands for a label quoted in a message."""
    return "(a label)"


def _fold(local: str) -> str:
    """NFKC, case folding, NFC; an ``i`` loses the dot above that folding ``İ`` gives it."""
    decomposed = unicodedata.normalize("NFD", unicodedata.normalize("NFKC", local).casefold())
    return unicodedata.normalize("NFC", "".join(_without_dot_on_i(decomposed)))


def _without_dot_on_i(decomposed: str) -> Iterator[str]:
    """``decomposed`` (NFD) without any U+0307 that sits on an ``i`` (marks below do not separate
    them; another mark above does)."""
    on_i = False
    for char in decomposed:
        combining = unicodedata.combining(char)
        if char == _DOT_ABOVE and on_i:
            continue
        if combining == 0:
            on_i = char == "i"
        elif combining == _ABOVE:
            on_i = False
        yield char


def _check_visible(text: str, what: str) -> None:
    found = _INVISIBLE.search(text)
    if found is not None:
        code = f"U+{ord(found.group()):04X}"
        raise InvalidInput(f"{what} contains an invisible character ({code}) at position {found.start()}")


def _check_shape(email: str, local: str, domain: str, what: str) -> None:
    if len(email) > MAX_EMAIL_LENGTH:
        raise InvalidInput(f"{what} is longer than {MAX_EMAIL_LENGTH} characters")
    if not local:
        raise InvalidInput(f"{what} has an empty local part")
    if len(local) > MAX_EMAIL_LOCAL_PART_LENGTH:
        raise InvalidInput(f"{what} has a local part longer than {MAX_EMAIL_LOCAL_PART_LENGTH} characters")
    if _WHITESPACE.search(email):
        raise InvalidInput(f"{what} must not contain whitespace")
    _check_visible(email, what)
    labels = domain.split(".")
    if len(labels) < 2 or not all(labels):
        raise InvalidInput(f"{what} must have a domain with a dot and no empty labels")
    if KEY_DELIMITER in email:
        raise InvalidKey(f"{what} must not contain {KEY_DELIMITER!r} (it is used in a key)")


def _script(char: str) -> str:
    """The script of a letter: the first word of its Unicode name (``CYRILLIC SMALL LETTER A``)."""
    return unicodedata.name(char, "UNKNOWN").split(" ", 1)[0]


def _check_scripts(part: str, where: str, what: str) -> None:
    """Refuse a part that mixes scripts, or is written only in non-Latin look-alikes of Latin letters."""
    letters = [char for char in part if unicodedata.category(char) in _SCRIPT_LETTERS]
    scripts = {_script(char) for char in letters}
    if len(scripts) > 1 and not any(scripts <= mix for mix in _ALLOWED_MIXES):
        named = ", ".join(sorted(s.title() for s in scripts))
        raise InvalidInput(f"{what} mixes letters of different scripts ({named}) in its {where}")
    if len(scripts) == 1:
        (script,) = scripts
        look_alikes = _LATIN_LOOK_ALIKES.get(script)
        if look_alikes is not None and all(char in look_alikes for char in letters):
            raise InvalidInput(
                f"{what} has a {where} written only in {script.title()} letters that look like Latin "
                "ones (a look-alike of a Latin address)"
            )
