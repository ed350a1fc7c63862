"""A loaded language model behind a wrapper that watches its answers (drafting tests, the bench).

Subclasses override :meth:`ModelProxy.chat` to count or measure, then call the real model;
everything else the drafter needs passes straight through.
"""

from __future__ import annotations

from appliance.drafting.runtime import Completion, LanguageModel


class ModelProxy:
    """The real model, as the drafter sees it."""

    def __init__(self, model: LanguageModel):
        self.model = model
        self.choice = model.choice

    @property
    def context_tokens(self) -> int:
        """As the wrapped model."""
        return self.model.context_tokens

    def count_tokens(self, text: str) -> int:
        """As the wrapped model."""
        return self.model.count_tokens(text)

    def reset(self) -> None:
        """As the wrapped model."""
        self.model.reset()

    def chat(self, messages: list[dict], *, max_tokens: int) -> Completion:
        """The wrapped model's answer."""
        return self.model.chat(messages, max_tokens=max_tokens)
