"""Run a script with exactly the packages it was tested with.

Each script calls use_skill_venv() before its first third-party import. Outside the skill's own venv
(`.venv` in the skill folder) it creates that venv on first use from scripts/requirements.txt, says
so in one line on stderr, and re-runs the script there; later runs just switch to it. The switch
replaces this process (os.execv), so the PID a shell gets for `python scripts/x.py &` is the script
itself and `kill $!` stops it (tests/fresh_machine/test_bootstrap_process.py). When the
requirements file changes, the venv is brought up to date the same way.

Standard library only, written so that an old Python can still parse it: a Python older than 3.11
gets a one-line error, not a traceback. If the skill folder is read-only, the venv goes to
~/.cache/scalekit-auth/ instead.
"""
import hashlib
import os
import subprocess
import sys

MIN_PYTHON = (3, 11)
SKILL_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REQUIREMENTS = os.path.join(SKILL_ROOT, "scripts", "requirements.txt")
STAMP = ".scalekit-requirements.sha256"  # in the venv: hash of the requirements it was filled from
GUARD = "SCALEKIT_AUTH_VENV"  # set before re-running, so a venv that does not take cannot loop
# Exit codes shared with the scripts: 2 configuration, 4 network.
EXIT_CONFIG, EXIT_NETWORK = 2, 4
NETWORK_HINTS = ("NewConnectionError", "Name or service not known", "Temporary failure in name resolution",
                 "Network is unreachable", "Connection refused", "timed out", "No matching distribution",
                 "Could not find a version")


def _fail(code, message):
    sys.stderr.write("error: " + message + "\n")
    sys.stderr.flush()
    sys.exit(code)


def _same(a, b):
    return os.path.realpath(a) == os.path.realpath(b)


def _requirements_hash():
    with open(REQUIREMENTS, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


def venv_dir():
    """<skill>/.venv, or a per-skill folder under ~/.cache when the skill folder is read-only."""
    local = os.path.join(SKILL_ROOT, ".venv")
    if os.path.isdir(local) or os.access(SKILL_ROOT, os.W_OK):
        return local
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    tag = hashlib.sha256(os.path.realpath(SKILL_ROOT).encode()).hexdigest()[:12]
    return os.path.join(cache, "scalekit-auth", "venv-" + tag)


def _is_current(venv):
    try:
        with open(os.path.join(venv, STAMP)) as fh:
            return fh.read().strip() == _requirements_hash()
    except OSError:
        return False


def _last_line(text):
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def _install(venv):
    """Create the venv if needed and install the requirements into it; exit with one line on failure."""
    python = os.path.join(venv, "bin", "python")
    if os.path.exists(python):
        sys.stderr.write("scalekit-auth: updating the scripts' Python packages in %s to the changed "
                         "scripts/requirements.txt...\n" % venv)
    else:
        sys.stderr.write("scalekit-auth: installing the scripts' Python packages (scripts/requirements.txt) into %s; "
                         "first run only, about a minute...\n" % venv)
    sys.stderr.flush()
    try:
        if not os.path.exists(python):
            made = subprocess.run([sys.executable, "-m", "venv", venv], stdin=subprocess.DEVNULL,
                                  capture_output=True, text=True)
            if made.returncode != 0:
                hint = (" (on Debian or Ubuntu: apt install python3-venv)"
                        if "ensurepip" in made.stdout + made.stderr else "")
                _fail(EXIT_CONFIG, "cannot create a venv in %s: %s%s" % (venv, _last_line(made.stderr or made.stdout), hint))
        log = os.path.join(venv, "pip-install.log")
        with open(log, "w") as out:
            pip = subprocess.run([python, "-m", "pip", "install", "--no-input", "--disable-pip-version-check", "-q",
                                  "-r", REQUIREMENTS], stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        if pip.returncode != 0:
            with open(log) as fh:
                text = fh.read()
            network = any(hint in text for hint in NETWORK_HINTS)
            _fail(EXIT_NETWORK if network else EXIT_CONFIG,
                  "installing scripts/requirements.txt failed%s: %s (full log: %s)"
                  % (" (is PyPI reachable?)" if network else "", _last_line(text), log))
        with open(os.path.join(venv, STAMP), "w") as fh:
            fh.write(_requirements_hash() + "\n")
    except KeyboardInterrupt:
        _fail(EXIT_NETWORK, "interrupted while installing the scripts' packages; run the script again to finish")
    except OSError as exc:
        _fail(EXIT_CONFIG, "cannot set up the venv in %s: %s" % (venv, exc.strerror or exc))


def use_skill_venv():
    """Return if this interpreter is the skill's venv; otherwise make sure it is ready and become the script
    running there (same PID: exec, not a child process)."""
    if sys.version_info < MIN_PYTHON:
        _fail(EXIT_CONFIG, "the scripts need Python %d.%d or newer; this is %d.%d (%s)"
              % (MIN_PYTHON + sys.version_info[:2] + (sys.executable,)))
    venv = venv_dir()
    if _same(sys.prefix, venv):
        return  # run.sh and the tests use this venv directly; run.sh keeps it up to date
    if os.environ.get(GUARD) and _same(os.environ[GUARD], venv):
        _fail(EXIT_CONFIG, "%s/bin/python does not run inside its own venv; delete %s and run again" % (venv, venv))
    if not _is_current(venv):
        import fcntl  # Unix only, like the rest of the scripts; imported late so the version check comes first

        os.makedirs(venv, exist_ok=True)
        with open(os.path.join(venv, ".bootstrap.lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # two scripts started at once: the second waits, then finds it ready
            if not _is_current(venv):
                _install(venv)
    python = os.path.join(venv, "bin", "python")
    os.environ[GUARD] = venv
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(python, [python] + sys.argv)
