"""Recognisable values the tests seed: the privacy check (tests/privacy.py) looks for each in every log line."""

from __future__ import annotations

from typing import Final

# Every seeded API key and token carries "PRIVACY-CANARY", which the check also finds by itself.
MIIMOSA_KEY: Final = "sk-miimosa-PRIVACY-CANARY-7f3a"
UMBRELLA_KEY: Final = "umb-PRIVACY-CANARY-apikey-4c1d"
MLM_TOKEN: Final = "mlm-PRIVACY-CANARY-token-9e2b"
APPSMILES_SECRET: Final = "am-PRIVACY-CANARY-secret-5b8e"
# Personal data: a donor's or fundraiser's number, a lead's e-mail, phone, last name and birthdate.
CANARY_MSISDN: Final = "4598765432"
CANARY_EMAIL: Final = "zelda.quixote@example.org"
CANARY_PHONE: Final = "+33 7 98 76 54 32"
CANARY_LASTNAME: Final = "Quixotezyx"
CANARY_BIRTHDATE: Final = "1932-02-29"
# An app's miles user id (partnerClientId): it names a person at the partner.
CANARY_APPSMILES_USER: Final = "amu-quixotezyx-31f7"

ALL: Final = {
    "MIIMOSA_KEY": MIIMOSA_KEY,
    "UMBRELLA_KEY": UMBRELLA_KEY,
    "MLM_TOKEN": MLM_TOKEN,
    "APPSMILES_SECRET": APPSMILES_SECRET,
    "CANARY_MSISDN": CANARY_MSISDN,
    "CANARY_EMAIL": CANARY_EMAIL,
    "CANARY_PHONE": CANARY_PHONE,
    "CANARY_LASTNAME": CANARY_LASTNAME,
    "CANARY_BIRTHDATE": CANARY_BIRTHDATE,
    "CANARY_APPSMILES_USER": CANARY_APPSMILES_USER,
}
