"""The demo's client: the shared series as one client's sessions, with consent on record.

After the night run the demo does what the series' clinician would have done over
three weeks: a client record with treatment goals, the consent form, the three
sessions assigned, and the notes of weeks 1 and 2 signed with the plan agreed in
each session (from the series' ``facts.json``). Week 3 is then drafted again, so its
draft says whether week 2's plan was taken up, citing the transcript; the client
page has three sessions to draw, and a case conceptualization can be drafted from
the two signed notes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from appliance import age
from appliance import config as config_mod
from appliance.access.keys import KeyStore
from appliance.clients import consent, records
from appliance.notes.render import is_filled
from appliance.store.db import Storage
from web_ui.views import records as note_records

SERIES_CLIENT = "D.M."
GOALS = ("Present at the Monday team meeting", "Sleep through Sunday nights without panic")
CONSENT_FORM = "Holdnote demo consent, version 1"
# Sections a clinician writes themselves; the demo says plainly that it wrote them.
STAND_IN = "(Written by the demo in place of the clinician.)"


@dataclass(frozen=True)
class SeriesClient:
    """What the demo set up: the client and which notes it signed."""

    client_id: int
    signed: tuple[int, ...]
    redrafted: int | None


def _facts(series_dir: Path) -> dict:
    return json.loads((series_dir / "facts.json").read_text(encoding="utf-8"))


def _owner_id(keys: KeyStore, username: str) -> int:
    return next(u.id for u in keys.users() if u.username == username)


def _create_client(storage: Storage, keys: KeyStore, owner_id: int, first_day: date,
                   clinician: str) -> int:
    record = records.make_record(SERIES_CLIENT, start_date=first_day.isoformat(),
                                 goals="\n".join(GOALS))
    client_id = storage.create_client(owner_id, records.seal_record(record, keys.recipient()))
    consent.record_consent(storage, client_id, given_on=first_day, form_version=CONSENT_FORM,
                           obtained_by=clinician, scope=consent.SCOPES, by=clinician,
                           today=storage.now().date())
    return client_id


def _completed(note: dict, plan: list[str]) -> dict:
    """The drafted note with its Plan the agreed plan and every empty section stood in for."""
    sections = []
    for drafted in note.get("sections", []):
        section = dict(drafted)
        if section.get("key") == "plan":
            section["text"] = "\n".join(f"- {item[0].upper()}{item[1:]}." for item in plan)
        elif not is_filled(section):
            section["text"] = STAND_IN
        sections.append(section)
    return {**note, "sections": sections}


def _sign(storage: Storage, keys: KeyStore, session_id: int, plan: list[str],
          clinician: str) -> bool:
    """Sign a drafted note with the session's plan; False when it has no note to sign."""
    row = storage.load_note(session_id)
    if row is None:
        return False
    note = json.loads(age.decrypt(row["note_enc"], [keys.identity()]))
    note_records.sign_note(storage, session_id, _completed(note, plan),
                           note_records.version_of(row["note_enc"]), keys.recipient(), clinician)
    return True


def setup_series_client(cfg: config_mod.Config, series_ids: list[int], series_dir: Path,
                        clinician: str, redraft: bool) -> SeriesClient:
    """Create the series' client, assign its sessions, sign weeks 1-2 and (``redraft``)
    queue week 3's note to be drafted again; the caller starts the drafting."""
    storage = Storage(cfg.paths.data_dir)
    keys = KeyStore.for_config(cfg, storage)
    facts = _facts(series_dir)
    weeks = [facts["sessions"][f"week{n}"] for n in range(1, len(series_ids) + 1)]
    owner_id = _owner_id(keys, clinician)
    client_id = _create_client(storage, keys, owner_id, date.fromisoformat(weeks[0]["date"]),
                               clinician)
    storage.assign_clients(series_ids, client_id, owner_id=owner_id)
    signed = tuple(sid for sid, week in zip(series_ids[:-1], weeks[:-1], strict=True)
                   if _sign(storage, keys, sid, week["plan"], clinician))
    redrafted = None
    if redraft and signed:
        redrafted = series_ids[-1]
        storage.update_session(redrafted, drafting="queued", drafting_progress=0.0,
                               drafting_reason=None)
    return SeriesClient(client_id, signed, redrafted)
