"""Session notes from a transcript: everything here is text processing on the device.

- :mod:`facts`: silences, talk metrics and bookmarks, and :func:`facts.transcript_lines`,
  the validated, time-ordered lines every other module reads;
- :mod:`risk`: risk-language flags, a screening aid that errs towards flagging
  (negation, questions and answers, ambivalence);
- :mod:`risk_match`: the phrase matcher over the reviewable lexicon
  ``risk_lexicon.toml``, tolerant of one misheard word in a longer phrase;
- :mod:`draft`: the draft note in the practice's template (machine-written facts in
  one section, prompts for the clinician in the others);
- :mod:`render`: a note as plain text and as Markdown for export, and which
  sections are filled (a note with a section left at its prompt cannot be signed);
- :mod:`times`: the one rule for times and lengths people read;
- :mod:`pdf`, :mod:`pdf_layout`: a note and a client's record as PDF;
- :mod:`interventions`, :mod:`intervention_rules`: the clinician's own interventions
  (questions, reflections, interruptions, latency, silences), as cues;
- :mod:`ruptures`, :mod:`rupture_words`: moments to review (a client confronting or
  withdrawing) and whether a repair followed;
- :mod:`supervision`, :mod:`supervision_dates`, :mod:`supervision_pdf`: the
  de-identified supervision excerpt;
- :mod:`words`: the one rule folding a word's endings, wherever words are compared.
"""
