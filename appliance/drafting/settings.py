"""The practice's note settings as the drafter reads them.

A template is a list of :class:`SectionSpec`: what the model drafts in a section
from the transcript (``instruction``, empty when it drafts nothing there), the
clinician's own part left to them (``clinician``), and whether the recording's
facts go there (``facts``). Observations and the clinical impression are the
clinician's: the model is never asked for mental status, diagnoses or risk
judgements.
"""

from __future__ import annotations

from dataclasses import dataclass

from appliance.notes import draft

_REPORTED = ("What the client reported in this session: concerns, mood, sleep, events "
             "and experiences since the last session.")
_DISCUSSED = ("What the client and the clinician said in this session about progress, "
              "difficulties and goals. Only what was said; no diagnosis, no impression.")
_PLAN = ("Next steps agreed in the session: homework, exercises, referrals, the next "
         "appointment. Only what was said.")
_INTERVENTION = ("What the clinician did in the session: questions, techniques, exercises, "
                 "explanations.")
_RESPONSE = "How the client responded to what the clinician did, in what the client said."
_IMPRESSION = "[Your clinical impression and risk assessment.]"


@dataclass(frozen=True)
class SectionSpec:
    """One section of a template, as the drafter and the note see it."""

    key: str
    title: str
    instruction: str = ""
    clinician: str = ""
    facts: bool = False

    @property
    def drafted(self) -> bool:
        """True when the model writes statements here."""
        return bool(self.instruction)


BUILT_IN: dict[str, tuple[SectionSpec, ...]] = {
    "SOAP": (
        SectionSpec("subjective", "Subjective", _REPORTED),
        SectionSpec("objective", "Objective", "", draft.prompt_for("SOAP", "objective"), facts=True),
        SectionSpec("assessment", "Assessment", _DISCUSSED, _IMPRESSION),
        SectionSpec("plan", "Plan", _PLAN),
    ),
    "DAP": (
        SectionSpec("data", "Data", _REPORTED, "[Add what you observed.]", facts=True),
        SectionSpec("assessment", "Assessment", _DISCUSSED, _IMPRESSION),
        SectionSpec("plan", "Plan", _PLAN),
    ),
    "BIRP": (
        SectionSpec("behavior", "Behavior", _REPORTED, "[Add the client's presentation as you saw it.]",
                    facts=True),
        SectionSpec("intervention", "Intervention", _INTERVENTION),
        SectionSpec("response", "Response", _RESPONSE),
        SectionSpec("plan", "Plan", _PLAN),
    ),
}
# The section that carries the risk screen's flags verbatim: where clinicians look for risk.
RISK_SECTION = {"SOAP": "assessment", "DAP": "assessment", "BIRP": "behavior"}
FACTS_KEY = "facts"

_LENGTH = {"brief": "Write at most 3 short statements.",
           "detailed": "Write up to 8 statements."}
_QUOTES = {"none": "Do not quote the client; paraphrase.",
           "some": "Quote the client's own words in a few statements, in double quotes.",
           "many": "Quote the client's own words often, in double quotes."}


@dataclass(frozen=True)
class PracticeSettings:
    """Template, approach, length and quotes, with the custom templates defined."""

    template: str = "SOAP"
    approach: str = "integrative"
    length: str = "brief"
    quotes: str = "some"
    custom: tuple[tuple[str, tuple[SectionSpec, ...]], ...] = ()

    @classmethod
    def from_config(cls, cfg, template: str | None = None) -> PracticeSettings:
        """The settings of ``cfg.notes``; ``template`` (a Redraft's choice) overrides the template."""
        notes = cfg.notes
        custom = tuple((t.name, tuple(SectionSpec(s.key, s.title, s.instruction, s.clinician)
                                      for s in t.sections)) for t in notes.custom_templates)
        return cls(template or notes.template, notes.approach, notes.length, notes.quotes, custom)

    def template_names(self) -> list[str]:
        """Every template the practice can pick: the built-in ones, then its own."""
        return [*BUILT_IN, *(name for name, _ in self.custom)]

    def sections(self, template: str | None = None) -> tuple[SectionSpec, ...]:
        """The sections of ``template`` (default: the practice's).

        A custom template gets the recording's facts in a last section of their own.
        """
        name = template or self.template
        if name.upper() in BUILT_IN:
            return BUILT_IN[name.upper()]
        for custom_name, specs in self.custom:
            if custom_name == name:
                return (*specs, SectionSpec(FACTS_KEY, "Session facts", facts=True))
        raise ValueError(f"no template named {name!r}; the practice has {', '.join(self.template_names())}")

    def style(self) -> str:
        """The length, quote and approach rules, for the model's instructions."""
        approach = self.approach.replace("-", " ")
        return (f"{_LENGTH[self.length]} {_QUOTES[self.quotes]} "
                f"The clinician works in a {approach} approach; use its usual words only "
                "where the transcript supports them.")
