"""The profile an exported note signs with: full name and credentials of an account."""

from __future__ import annotations

import pytest

from appliance.access import keys
from appliance.errors import KeysError, UnknownUserError
from tests.conftest import USER


def test_a_profile_is_stored_tidied_and_signs_with_name_and_credentials(keystore, recovery_key):
    assert keys.profile(keystore.storage, USER) == keys.Profile(USER)
    assert keys.Profile(USER).signature_name == USER  # no full name yet: the user name
    saved = keys.set_profile(keystore.storage, USER, "  Ana   Pérez ", "PhD,\nLicensed Psychologist")
    assert keys.profile(keystore.storage, USER) == saved
    assert saved.signature_name == "Ana Pérez, PhD, Licensed Psychologist"
    keys.set_profile(keystore.storage, USER, "", "")
    assert keys.profile(keystore.storage, USER).signature_name == USER


def test_a_profile_too_long_or_of_nobody_is_refused_and_changes_nothing(keystore, recovery_key):
    keys.set_profile(keystore.storage, USER, "Ana Pérez", "PhD")
    with pytest.raises(KeysError, match="at most 120"):
        keys.set_profile(keystore.storage, USER, "Ana Pérez", "x" * 121)
    assert keys.profile(keystore.storage, USER).credentials == "PhD"
    with pytest.raises(UnknownUserError):
        keys.set_profile(keystore.storage, "nobody", "N. Body", "")
    assert keys.profile(keystore.storage, "nobody") is None
