"""The drafted note: an on-device language model writes, code checks every statement.

- :mod:`settings`: the practice's templates (built-in and custom), approach, length
  and quotes, as the section specifications the drafter works from;
- :mod:`prompts`: transcript chunks that fit the context, and the messages for one
  section;
- :mod:`parse`: the model's answer as statements with their cited times;
- :mod:`verify`: the grounding check (names, numbers, quotes, medications and
  diagnoses in a statement must be in the lines it cites);
- :mod:`runtime`: the GGUF model file and llama.cpp (``llama-cpp-python``);
- :mod:`drafter`: one section at a time over the transcript;
- :mod:`note`: statements into the note, "Not discussed", the risk screen's flags
  verbatim;
- :mod:`followup` and :mod:`context`: a client's previous signed plan, and where this
  session took it up, at the top of the draft (code, not the model).

Nothing here sends a word off the device; the model file is local.
"""
