"""The one vocabulary of reasons: names say what values say, and people get a sentence."""

from __future__ import annotations

import pytest

from policies.model import Reason, describe


@pytest.mark.parametrize("reason", list(Reason), ids=lambda r: r.name)
def test_reason_name_is_its_value(reason: Reason) -> None:
    assert reason.name == reason.value.upper().replace("-", "_")


@pytest.mark.parametrize("reason", list(Reason), ids=lambda r: r.name)
def test_every_reason_has_a_sentence_for_people(reason: Reason) -> None:
    text = describe(reason)
    assert text[0].isupper() and text.endswith(".")
