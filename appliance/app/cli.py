"""The ``holdnote`` command: every service and every administrator action.

Thin by design: parse arguments, set up logging, load the configuration once,
and hand explicit values to the module that does the work. Heavy modules are
imported inside the handlers so ``holdnote record status`` starts quickly and
the recorder never loads Whisper. Failures are worded in
:mod:`appliance.app.cli_errors`.
"""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import sys
from pathlib import Path

from appliance import config as config_mod
from appliance.app import backup_cli, cli_errors, restore_cli
from appliance.app.cli_errors import EXIT_ERROR, EXIT_OK, EXIT_USAGE
from appliance.errors import HoldnoteError

log = logging.getLogger("holdnote")

DESCRIPTION = """\
Holdnote records therapy sessions on this device, encrypted before they reach
the disk, transcribes them overnight on the device, and drafts notes for the
clinician's web page. Every command reads one configuration file.
"""
EPILOG = """\
exit status: 0 done, 1 the action failed (the reason is on standard error),
2 bad arguments or configuration. Run a command with --help for its options.
"""


# --- shared helpers ----------------------------------------------------------------


def read_secret(prompt: str) -> str:
    """A passphrase from the terminal, or one line of stdin when scripted."""
    if sys.stdin.isatty():
        return getpass.getpass(prompt)
    line = sys.stdin.readline()
    if not line:
        raise HoldnoteError(f"{prompt.strip(': ')}: expected a line on standard input")
    return line.rstrip("\n")


def new_secret(prompt: str) -> str:
    """A new passphrase, asked twice on a terminal."""
    first = read_secret(prompt)
    if sys.stdin.isatty() and getpass.getpass("Repeat it: ") != first:
        raise HoldnoteError("the two passphrases differ; nothing was changed")
    return first


def open_keys(cfg: config_mod.Config):
    """The key store for this configuration."""
    from appliance.access.keys import KeyStore
    from appliance.store.db import Storage

    storage = Storage(cfg.paths.data_dir)
    return KeyStore.for_config(cfg, storage)


def audit_cli(cfg: config_mod.Config, action: str, detail: str | None = None) -> None:
    """Record a key operation done from the command line."""
    from appliance.access.audit import AuditLog
    from appliance.store.db import Storage

    AuditLog(Storage(cfg.paths.data_dir)).append("cli", action, source="console", detail=detail)


# --- handlers ------------------------------------------------------------------------


def cmd_check_config(args: argparse.Namespace) -> int:
    """Validate a configuration file, or print the documented template."""
    if args.template:
        sys.stdout.write(config_mod.render_template())
        return EXIT_OK
    path = config_mod.resolve_path(args.path)
    try:
        config_mod.load(path)
    except config_mod.ConfigError as error:
        # Problems with keys: one per line under the file; a file-level problem
        # (unreadable, not UTF-8, not TOML) already names the file.
        problems = [p for p in error.problems if not p.startswith("(file)")]
        print(f"{path}: invalid" if problems else str(error), file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_USAGE
    print(f"{path}: OK")
    return EXIT_OK


def cmd_keys(args: argparse.Namespace) -> int:
    """``holdnote keys …``: create, unlock, lock and manage key slots."""
    cfg = config_mod.load(args.config)
    keys = open_keys(cfg)
    action = args.keys_action
    if action == "status":
        status = keys.status()
        print(json.dumps(status.__dict__, indent=2) if args.json else
              f"initialized: {status.initialized}\nunlocked: {status.unlocked}\n"
              f"users: {', '.join(status.users) or '-'}\nrecipient: {status.recipient or '-'}")
        return EXIT_OK
    if action == "init":
        recovery = keys.init(args.user, new_secret(f"New passphrase for {args.user}: "))
        audit_cli(cfg, "keys.init", args.user)
        print("Practice keys created and the device is unlocked.\n")
        print("RECOVERY KEY (shown once; print it or write it down and keep it offline):")
        print(f"  {recovery}")
        return EXIT_OK
    if action == "unlock":
        if args.recovery:
            keys.unlock_with_recovery(read_secret("Recovery key: "))
        else:
            keys.unlock(args.user, read_secret(f"Passphrase for {args.user}: "))
        audit_cli(cfg, "device.unlock", args.user or "recovery key")
        print("Device unlocked.")
        return EXIT_OK
    if action == "lock":
        keys.lock()
        audit_cli(cfg, "device.lock")
        print("Device locked.")
        return EXIT_OK
    return cmd_keys_users(args, cfg, keys)


def cmd_keys_users(args: argparse.Namespace, cfg: config_mod.Config, keys) -> int:
    """The user-management half of ``holdnote keys``."""
    action = args.keys_action
    if action == "add-user":
        keys.add_user(args.user, new_secret(f"New passphrase for {args.user}: "), keys.identity())
        audit_cli(cfg, "user.add", args.user)
        print(f"User {args.user} added.")
    elif action == "remove-user":
        keys.remove_user(args.user)
        audit_cli(cfg, "user.remove", args.user)
        print(f"User {args.user} removed.")
    elif action == "change-passphrase":
        old = read_secret(f"Current passphrase for {args.user}: ")
        keys.change_passphrase(args.user, old, new_secret("New passphrase: "))
        audit_cli(cfg, "user.passphrase", args.user)
        print("Passphrase changed.")
    elif action == "recover":
        recovery = read_secret("Recovery key: ")
        keys.recover(recovery, args.user, new_secret(f"New passphrase for {args.user}: "))
        audit_cli(cfg, "keys.recover", args.user)
        print(f"Device unlocked; {args.user} has a new passphrase.")
    return EXIT_OK


def cmd_audit(args: argparse.Namespace) -> int:
    """``holdnote audit verify|show``."""
    from appliance.access.audit import AuditLog
    from appliance.store.db import Storage

    cfg = config_mod.load(args.config)
    audit = AuditLog(Storage(cfg.paths.data_dir))
    if args.audit_action == "show":
        for entry in reversed(audit.entries(limit=args.limit)):
            print(f"{entry.seq:6d} {entry.ts} {entry.actor:12s} {entry.action:18s} "
                  f"{entry.session_id or '':>6} {entry.source or ''} {entry.detail or ''}")
        return EXIT_OK
    verdict = audit.verify()
    if verdict.ok:
        print(f"audit log intact: {verdict.entries} entries")
        return EXIT_OK
    print(f"audit log DAMAGED at entry {verdict.first_bad_seq}: {verdict.reason}", file=sys.stderr)
    return EXIT_ERROR


def cmd_recorder(args: argparse.Namespace) -> int:
    """``holdnote recorder``: the long-running recorder daemon."""
    from appliance.recorder import daemon

    return daemon.run_daemon(config_mod.load(args.config))


def cmd_record(args: argparse.Namespace) -> int:
    """``holdnote record start|stop|mark|status [--json]``: talk to the recorder daemon."""
    from appliance.app import record_cli

    return record_cli.run(config_mod.load(args.config), args.record_action, as_json=args.json)


def cmd_transcribe(args: argparse.Namespace) -> int:
    """``holdnote transcribe --overnight``, ``--queued`` ("Transcribe now") or ``--session ID``."""
    from appliance.transcription import commands

    cfg = config_mod.load(args.config)
    return commands.run_job(cfg, session_id=args.session, overnight=args.overnight,
                            queued=args.queued)


def cmd_transcribe_file(args: argparse.Namespace) -> int:
    """``holdnote transcribe-file AUDIO --json``."""
    from appliance.transcription import commands

    cfg = commands.with_llm(config_mod.load(args.config), args.llm)
    result = commands.transcribe_file(
        cfg, Path(args.audio), speakers=args.speakers,
        stereo_clinician=args.stereo_clinician, model=args.model,
    )
    json.dump(result.to_json(), sys.stdout, indent=2 if args.json else None)
    sys.stdout.write("\n")
    return EXIT_OK


def cmd_draft(args: argparse.Namespace) -> int:
    """``holdnote draft --queued`` (a Redraft) or ``--session ID``: draft notes now."""
    from appliance.transcription import commands

    return commands.run_drafts(config_mod.load(args.config), session_id=args.session)


def cmd_enroll_voice(args: argparse.Namespace) -> int:
    """``holdnote enroll-voice WAV --name NAME``: store a voice profile, encrypted."""
    from appliance.transcription import commands

    cfg = config_mod.load(args.config)
    commands.enroll_voice(cfg, Path(args.wav), name=args.name)
    audit_cli(cfg, "voice.enroll", args.name)
    print(f"Voice profile for {args.name} stored: a speaker whose voice clearly matches it "
          "is labelled with that name.")
    return EXIT_OK


def cmd_voices(args: argparse.Namespace) -> int:
    """``holdnote voices [--remove NAME]``: list or remove the enrolled voice profiles."""
    from appliance.transcription import commands

    cfg = config_mod.load(args.config)
    if args.remove:
        commands.remove_voice(cfg, args.remove)
        audit_cli(cfg, "voice.remove", args.remove)
        print(f"Voice profile {args.remove} removed.")
        return EXIT_OK
    names = commands.voice_list(cfg)
    print("\n".join(names) if names else "No voices enrolled (holdnote enroll-voice WAV --name NAME).")
    return EXIT_OK


def speaker_count(text: str) -> int | str:
    """``--speakers``: a count from 1 to 6, or ``auto``."""
    if text == "auto":
        return text
    if text.isdigit() and 1 <= int(text) <= 6:
        return int(text)
    raise argparse.ArgumentTypeError(f"{text!r} is not a speaker count: give 1 to 6 or auto")


def cmd_web(args: argparse.Namespace) -> int:
    """``holdnote web`` (serve with gunicorn over TLS) or ``holdnote web init-tls``."""
    from web_ui.serving import serve

    cfg = config_mod.load(args.config)
    if args.web_action == "init-tls":
        fingerprint = serve.init_tls(cfg, force=args.force)
        print(f"certificate: {cfg.web.tls_cert}\nSHA-256 fingerprint: {fingerprint}")
        return EXIT_OK
    return serve.run(cfg)


def cmd_setup_code(args: argparse.Namespace) -> int:
    """``holdnote setup-code``: print a fresh one-time code for first-run setup."""
    from appliance.access.setup_code import SetupCodes
    from appliance.store.db import Storage

    cfg = config_mod.load(args.config)
    codes = SetupCodes(Storage(cfg.paths.data_dir))
    if codes.setup_done():
        print("Setup is already complete; log in to the web page.", file=sys.stderr)
        return EXIT_ERROR
    print(codes.issue())
    return EXIT_OK


def cmd_backup(args: argparse.Namespace) -> int:
    """``holdnote backup now | list | verify FILE``."""
    return backup_cli.run(config_mod.load(args.config), args)


def cmd_restore(args: argparse.Namespace) -> int:
    """``holdnote restore FILE [--replace] [--recovery-key | --user NAME | --identity FILE]``."""
    return restore_cli.run(config_mod.load(args.config), args, read_secret)


def cmd_demo(args: argparse.Namespace) -> int:
    """``holdnote demo``: the whole appliance locally with mock GPIO and demo audio."""
    from appliance.app import demo

    return demo.run(workdir=Path(args.workdir), port=args.port)


# --- parser ---------------------------------------------------------------------------


# Each ``holdnote keys`` command that names a user, and what it does.
_KEYS_USER_COMMANDS = {
    "init": "create the practice keys and USER's key slot; prints the recovery key once",
    "add-user": "add a clinician's key slot (the device must be unlocked)",
    "remove-user": "remove a clinician's account and key slot",
    "change-passphrase": "re-seal USER's key slot under a new passphrase",
    "recover": "unlock with the recovery key and give USER a new passphrase",
}


def _keys_parser(sub: argparse._SubParsersAction) -> None:
    keys = sub.add_parser(
        "keys", help="practice keys, users and lock state",
        description="Create the practice keys, manage the clinicians' key slots, and lock "
        "or unlock the device. Passphrases are read from the terminal, or one per line "
        "from standard input when scripted.")
    actions = keys.add_subparsers(dest="keys_action", required=True, metavar="COMMAND")
    for name, summary in _KEYS_USER_COMMANDS.items():
        command = actions.add_parser(name, help=summary, description=summary[0].upper()
                                     + summary[1:] + ".")
        command.add_argument("user", metavar="USER", help="clinician user name")
    unlock = actions.add_parser(
        "unlock", help="open USER's key slot (asks for the passphrase), or --recovery",
        description="Open a key slot; the practice key goes to the runtime directory (RAM).")
    unlock.add_argument("user", nargs="?", metavar="USER",
                        help="clinician user name (not needed with --recovery)")
    unlock.add_argument("--recovery", action="store_true", help="use the recovery key")
    actions.add_parser("lock", help="forget the unlocked key now",
                       description="Remove the unlocked practice key from RAM now.")
    status = actions.add_parser("status", help="initialised, locked or not, users",
                                description="Whether the keys exist, the device is "
                                "unlocked, and which users have key slots.")
    status.add_argument("--json", action="store_true", help="print JSON for scripts")
    keys.set_defaults(func=cmd_keys)


def _audit_and_record_parsers(sub: argparse._SubParsersAction) -> None:
    audit = sub.add_parser(
        "audit", help="check or list the audit log",
        description="The audit log is hash-chained: verify finds entries that were "
        "altered, removed or reordered; show lists the newest entries.")
    audit.add_argument("audit_action", choices=("verify", "show"), metavar="{verify,show}",
                       help="verify: check the hash chain (exit 1 if damaged); "
                       "show: list recent entries, oldest first")
    audit.add_argument("--limit", type=int, default=50, metavar="N",
                       help="with show: how many of the newest entries (default 50)")
    audit.set_defaults(func=cmd_audit)
    record = sub.add_parser(
        "record", help="control the recorder",
        description="Talk to the running recorder (holdnote-recorder) through its "
        "control socket. Prints what the recorder is doing as a sentence; exit 1 if "
        "the command was refused.")
    record.add_argument("record_action", choices=("start", "stop", "mark", "status"),
                        metavar="{start,stop,mark,status}",
                        help="start or stop a recording, mark (bookmark) the current "
                        "moment, or status: state, elapsed time, free space, last error")
    record.add_argument("--json", action="store_true",
                        help="print the recorder's JSON reply instead, for scripts")
    record.set_defaults(func=cmd_record)


def _transcribe_parsers(sub: argparse._SubParsersAction) -> None:
    job = sub.add_parser("transcribe", help="transcribe waiting sessions")
    job.add_argument("--overnight", action="store_true", help="respect the night window")
    which = job.add_mutually_exclusive_group()
    which.add_argument("--queued", action="store_true",
                       help="only the sessions 'Transcribe now' asked for, at any time")
    which.add_argument("--session", type=int, help="only this session, now")
    job.set_defaults(func=cmd_transcribe)
    one = sub.add_parser("transcribe-file", help="transcribe one audio file to JSON")
    one.add_argument("audio", help="WAV, FLAC or an age file (when unlocked)")
    one.add_argument("--speakers", type=speaker_count,
                     help="speakers in a mono recording: 1 to 6, or auto (default: speakers.count)")
    one.add_argument("--stereo-clinician", choices=("left", "right"),
                     help="in a stereo file, the channel that carries the clinician")
    one.add_argument("--model", help="model name or CTranslate2 directory")
    one.add_argument("--llm", help="draft the note with this model: none, bundled-smollm2 "
                     "or a .gguf path (default: drafting.model)")
    one.add_argument("--json", action="store_true", help="pretty-print the JSON")
    one.set_defaults(func=cmd_transcribe_file)
    draft = sub.add_parser("draft", help="draft the queued notes now (what Redraft starts)")
    which = draft.add_mutually_exclusive_group(required=True)
    which.add_argument("--queued", action="store_true", help="every queued note")
    which.add_argument("--session", type=int, help="this session's note, queued now")
    draft.set_defaults(func=cmd_draft)
    enroll = sub.add_parser("enroll-voice", help="store a clinician's voice sample")
    enroll.add_argument("wav", help="a WAV of one person speaking alone, 5 s to 10 min")
    enroll.add_argument("--name", default="clinician", type=voice_name,
                        help="the name that labels this voice in transcripts (default "
                        "clinician, shown as speakers.clinician_name)")
    enroll.set_defaults(func=cmd_enroll_voice)
    voices = sub.add_parser("voices", help="list (or remove) the enrolled voices")
    voices.add_argument("--remove", metavar="NAME", help="forget this voice profile")
    voices.set_defaults(func=cmd_voices)


def voice_name(text: str) -> str:
    """``--name``: what a transcript line shows, so 1-60 printable characters."""
    text = text.strip()
    if not 1 <= len(text) <= 60 or not text.isprintable():
        raise argparse.ArgumentTypeError("a voice name is 1 to 60 printable characters")
    # Names the labelling gives by itself would make an enrolled voice indistinguishable.
    if text.casefold() in ("client", "unknown") or text.casefold().startswith("speaker "):
        raise argparse.ArgumentTypeError(f"{text!r} is a label Holdnote gives unknown voices; "
                                         "use the clinician's name")
    return text


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every ``holdnote`` subcommand."""
    parser = argparse.ArgumentParser(
        prog="holdnote", description=DESCRIPTION, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", help=f"configuration file (default ${config_mod.ENV_VAR} "
                        f"or {config_mod.DEFAULT_PATH})")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    check = sub.add_parser("check-config", help="validate the configuration file")
    check.add_argument("path", nargs="?", help="the file to check (default: as --config)")
    check.add_argument("--template", action="store_true", help="print the documented defaults")
    check.set_defaults(func=cmd_check_config)
    _keys_parser(sub)
    _audit_and_record_parsers(sub)
    sub.add_parser("recorder", help="run the recorder daemon").set_defaults(func=cmd_recorder)
    _transcribe_parsers(sub)
    backup_cli.add_parser(sub).set_defaults(func=cmd_backup)
    restore_cli.add_parser(sub).set_defaults(func=cmd_restore)
    web = sub.add_parser("web", help="serve the web UI (or: web init-tls)")
    web.add_argument("web_action", nargs="?", choices=("serve", "init-tls"), default="serve",
                     help="serve (the default) or init-tls: create the TLS certificate")
    web.add_argument("--force", action="store_true", help="replace an existing certificate")
    web.set_defaults(func=cmd_web)
    sub.add_parser("setup-code", help="print a one-time setup code").set_defaults(
        func=cmd_setup_code)
    demo = sub.add_parser("demo", help="run the whole appliance locally")
    demo.add_argument("--workdir", default=".demo", help="where the demo keeps its data")
    demo.add_argument("--port", type=int, default=8443, help="HTTPS port (default 8443)")
    demo.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``holdnote`` console script.

    Expected failures end as one ``holdnote: …`` line and an exit code
    (:mod:`appliance.app.cli_errors`); a reader that stops reading early
    (``| head``) ends the command quietly.
    """
    args = build_parser().parse_args(argv)
    from appliance.service import setup_logging

    setup_logging(verbose=args.verbose)
    try:
        code = args.func(args)
        sys.stdout.flush()  # a closed pipe shows here, not in Python's exit handler
    except BrokenPipeError:
        return cli_errors.closed_stdout()
    except KeyboardInterrupt:
        return 130
    except Exception as error:
        failure = cli_errors.explain(error, lambda: _data_dir(args))
        if failure is None:
            raise
        print(f"holdnote: {failure.message}", file=sys.stderr)
        return failure.code
    return code


def _data_dir(args: argparse.Namespace) -> Path | None:
    """The configured data directory, to name a damaged database; None if unknown."""
    try:
        return Path(config_mod.load(args.config).paths.data_dir)
    except config_mod.ConfigError:
        return None


if __name__ == "__main__":
    sys.exit(main())
