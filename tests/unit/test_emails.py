"""One canonical form per email address: look-alike spellings meet in one form or are refused."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.emails import canonical_email
from core.errors import InvalidInput, InvalidKey
from models.attributes import EmailAttribute, normalize_email

# Every way an address is made canonical: the shared function, the models' check, the attribute
# that writes Email (and, through it, the claim key and conditions).
PATHS: dict[str, Callable[[Any], str]] = {
    "canonical_email": canonical_email,
    "normalize_email": normalize_email,
    "EmailAttribute.serialize": EmailAttribute(attr_name="Email").serialize,
}
REFUSED = "refused"

# (first spelling, second spelling, what each one becomes: its canonical form or REFUSED)
PAIRS = {
    "fullwidth": ("\uff41da@example.com", "ada@example.com", "ada@example.com", "ada@example.com"),
    "nfd-vs-nfc": ("e\u0301mile@example.com", "\u00e9mile@example.com", "\u00e9mile@example.com",
                   "\u00e9mile@example.com"),
    "sharp-s": ("stra\u00dfe@example.com", "strasse@example.com", "strasse@example.com",
                "strasse@example.com"),
    "zero-width-space": ("ada\u200blovelace@example.com", "adalovelace@example.com", REFUSED,
                         "adalovelace@example.com"),
    "soft-hyphen": ("ada\u00adlovelace@example.com", "adalovelace@example.com", REFUSED,
                    "adalovelace@example.com"),
    "idna": ("ada@m\u00fcnchen.de", "ada@xn--mnchen-3ya.de", "ada@m\u00fcnchen.de", "ada@m\u00fcnchen.de"),
    "dotted-capital-i": ("\u0130lker@example.com", "ilker@example.com", "ilker@example.com",
                         "ilker@example.com"),
    "cyrillic-a": ("\u0430da@example.com", "ada@example.com", REFUSED, "ada@example.com"),
}  # fmt: skip


def _outcome(path: Callable[[Any], str], value: str) -> str:
    try:
        return path(value)
    except InvalidInput:
        return REFUSED


@pytest.mark.parametrize("path", PATHS.values(), ids=PATHS.keys())
@pytest.mark.parametrize(
    ("first", "second", "first_becomes", "second_becomes"), PAIRS.values(), ids=PAIRS.keys()
)
def test_each_look_alike_pair_meets_in_one_form_or_one_spelling_is_refused(
    path: Callable[[Any], str], first: str, second: str, first_becomes: str, second_becomes: str
) -> None:
    assert (_outcome(path, first), _outcome(path, second)) == (first_becomes, second_becomes)
    assert REFUSED in (first_becomes, second_becomes) or first_becomes == second_becomes


@pytest.mark.parametrize("char", [
    "\u200b", "\u200c", "\u200d", "\u00ad", "\u2060", "\u2063", "\ufeff", "\u180e",  # format characters
    "\u034f", "\ufe0f", "\U000e0101", "\u115f", "\u3164", "\uffa0",  # other default-ignorables
    "\U000e0041", "\ue000", "\u0378",  # a tag, a private-use and an unassigned code point
], ids=lambda c: f"U+{ord(c):04X}")  # fmt: skip
@pytest.mark.parametrize("where", ["local part", "domain"])
def test_an_invisible_or_unsafe_character_is_refused_anywhere(char: str, where: str) -> None:
    address = f"ada{char}lovelace@example.com" if where == "local part" else f"ada@exam{char}ple.com"
    for path in PATHS.values():
        with pytest.raises(InvalidInput) as raised:
            path(address)
        assert "lovelace" not in str(raised.value) and "exam" not in str(raised.value)


@pytest.mark.parametrize("address", [
    "p\u0430ypal@example.com",  # Latin with a Cyrillic a
    "micr\u03bfsoft@example.com",  # Latin with a Greek omicron
    "\u0441\u0435\u0440\u0433\u0435\u0439smith@example.com",  # a Cyrillic name run into a Latin one
    "ada@ex\u0430mple.com",  # a domain label mixing Latin and Cyrillic
    "ada@example.\u0441om",  # the top-level domain too
], ids=["cyrillic-a", "greek-omicron", "cyrillic-then-latin", "domain-label", "tld"])  # fmt: skip
def test_letters_of_mixed_scripts_in_one_part_are_refused(address: str) -> None:
    with pytest.raises(InvalidInput, match="mixes letters of different scripts"):
        normalize_email(address)


@pytest.mark.parametrize("address", [
    "\u0430\u0440\u0440\u04cf\u0435@example.com",  # Cyrillic "apple"
    "\u0410\u0420\u0420\u04c0\u0415@example.com",  # the same in capitals
    "\u0430@example.com",  # a lone Cyrillic a
    "\u03bd\u03b1\u03c5@example.com",  # Greek "nau"
    "ada@\u0430\u0440\u0440\u04cf\u0435.com",  # a domain label
], ids=["cyrillic", "cyrillic-capitals", "lone-cyrillic-a", "greek", "domain-label"])  # fmt: skip
def test_a_part_written_only_in_look_alikes_of_latin_letters_is_refused(address: str) -> None:
    with pytest.raises(InvalidInput, match="letters that look like Latin ones"):
        normalize_email(address)


PRIMER = "\u043f\u0440\u0438\u043c\u0435\u0440"  # Cyrillic "example": not only look-alikes of Latin
YOLKA = "\u0451\u043b\u043a\u0430"
RF = "\u0440\u0444"
JAPANESE = "\u5c71\u7530\u305f\u308d\u3046"  # Han and Hiragana
CHINESE = "\u7528\u6237@\u4f8b\u5b50.\u4e2d\u56fd"


@pytest.mark.parametrize(("given_address", "canonical"), [
    (f"{PRIMER.upper()}@example.com", f"{PRIMER}@example.com"),
    (unicodedata.normalize("NFD", f"{YOLKA.upper()}@{PRIMER}.{RF}"), f"{YOLKA}@{PRIMER}.{RF}"),
    ("\u039f\u0394\u039f\u03a3@example.com", "\u03bf\u03b4\u03bf\u03c3@example.com"),  # final sigma folded
    ("ada@xn--e1afmkfd.xn--p1ai", f"ada@{PRIMER}.{RF}"),
    (f"{JAPANESE}@example.jp", f"{JAPANESE}@example.jp"),
    (CHINESE, CHINESE),
], ids=["cyrillic-capitals", "cyrillic-nfd", "greek", "punycode-domain", "japanese", "chinese"])  # fmt: skip
def test_a_genuine_non_latin_address_is_accepted_in_its_own_script(
    given_address: str, canonical: str
) -> None:
    assert normalize_email(given_address) == canonical
    assert normalize_email(canonical) == canonical


def test_the_final_and_the_other_sigma_give_one_form() -> None:
    final, other = "\u03bf\u03b4\u03bf\u03c2@example.com", "\u03bf\u03b4\u03bf\u03c3@example.com"
    assert normalize_email(final) == normalize_email(other) == other


def test_a_key_delimiter_that_compatibility_normalization_makes_is_an_invalid_key() -> None:
    with pytest.raises(InvalidKey):
        normalize_email("hash\uff03tag@example.com")  # fullwidth number sign


@pytest.mark.parametrize("address", [
    "a\u2025b@example.com",  # a two dot leader becomes ".."
    "a\u00a8b@example.com",  # a diaeresis becomes a space and a combining mark
    "\ufdfa@example.com",  # one ligature becomes 18 characters, a space among them
], ids=["two-dots", "diaeresis", "ligature"])  # fmt: skip
def test_what_compatibility_normalization_makes_must_still_be_a_valid_address(address: str) -> None:
    with pytest.raises(InvalidInput):
        normalize_email(address)


def test_the_lengths_are_counted_on_the_canonical_form() -> None:
    assert normalize_email("\uff41" * 64 + "@example.com") == "a" * 64 + "@example.com"
    with pytest.raises(InvalidInput, match="local part longer than 64"):
        normalize_email("\u00df" * 33 + "@example.com")  # 33 characters, 66 once folded


def test_refusals_do_not_echo_the_address() -> None:
    for address in (
        "lovelace\u200b@example.com",
        "lovel\u0430ce@example.com",
        "ada@lovelace.invalid",
        "ada@lovel\u0430ce.com",
        "ada@xn--lovelace-zzz.com",
        "lovelace@lovelace",
    ):
        with pytest.raises(InvalidInput) as raised:
            normalize_email(address)
        assert "lovel" not in str(raised.value), str(raised.value)


def test_the_library_error_is_kept_as_the_cause() -> None:
    from email_validator import EmailNotValidError

    with pytest.raises(InvalidInput) as raised:
        canonical_email("ada@localhost")
    assert isinstance(raised.value.__cause__, EmailNotValidError)


# Properties

LOCAL_CHARACTERS = st.one_of(
    st.sampled_from("abcxyzABCXYZ0189._+-"),
    st.sampled_from("\u00df\u1e9e\u0130\u0131\u00e9\u00c9\u0301\u0307\u0323\uff41\uff21\ufb01\u212a\u017f"),
    st.sampled_from("\u03c3\u03c2\u03a3\u03b1\u03bb\u0430\u0431\u0416\u5c71\u305f\u00aa\u2460\u33cf"),
    st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")),
)
DOMAINS = st.sampled_from([
    "example.com", "EXAMPLE.com", "m\u00fcnchen.de", "M\u00dcNCHEN.DE", "xn--mnchen-3ya.de",
    "\u043f\u0440\u0438\u043c\u0435\u0440.\u0440\u0444", "\uff45xample.com", "fa\u00df.de",
])  # fmt: skip


@given(st.text(LOCAL_CHARACTERS, min_size=1, max_size=12), DOMAINS)
def test_the_canonical_form_is_its_own_canonical_form(local: str, domain: str) -> None:
    try:
        canonical = canonical_email(f"{local}@{domain}")
    except InvalidInput:
        return  # a refused address has no form to be stable
    assert canonical_email(canonical) == canonical
    assert normalize_email(canonical) == canonical


@given(
    st.from_regex(r"[A-Za-z0-9](?:[A-Za-z0-9_+-]{0,20}[A-Za-z0-9])?", fullmatch=True),
    st.from_regex(r"[A-Za-z][A-Za-z0-9]{0,10}\.(?:com|org|net|de)", fullmatch=True),
    st.lists(st.booleans(), min_size=40, max_size=40),
)
def test_upper_and_lower_case_spellings_of_an_ascii_address_give_one_form(
    local: str, domain: str, upper: list[bool]
) -> None:
    address = f"{local}@{domain}"
    mixed = "".join(c.upper() if up else c.lower() for c, up in zip(address, upper * 2, strict=False))
    spellings = (address, address.upper(), address.lower(), address.swapcase(), mixed)
    forms = {canonical_email(spelling) for spelling in spellings}
    assert forms == {address.lower()}
