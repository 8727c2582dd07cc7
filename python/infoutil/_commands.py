"""`distill`, `attribute`, `teacher_eval`, `merge`: the CLI's subcommands as functions.

The options are not listed here: they come from the binary (`infoutil options-json`, clap's own
definition), read once per process. A keyword argument is an option's name with `_` for `-`;
True adds a flag, None or False leaves an option out, a list gives a repeated or many-valued
option. Positional arguments (merge's input files) are the function's positional arguments.
"""
import functools
import inspect
import json
import os
import subprocess
from pathlib import Path

from ._cli import Error, binary, environment, run


@functools.lru_cache(maxsize=None)
def options():
    """{command words: {"about":..., "args": [...]}} as the installed binary defines them."""
    exe = binary()
    proc = subprocess.run([exe, "options-json"], capture_output=True, text=True, env=environment())
    if proc.returncode != 0:
        raise Error(f"{exe} options-json failed: {proc.stderr.strip()}", proc.returncode)
    return json.loads(proc.stdout)


def arguments(words, positional, kwargs):
    """The command line for `infoutil WORDS...` with these arguments; TypeError names an unknown
    keyword and lists the known ones, as Python does for a function."""
    spec = options()[words]
    by_name = {a["name"]: a for a in spec["args"] if not a["positional"]}
    argv = words.split()
    for name, value in kwargs.items():
        arg = by_name.get(name)
        if arg is None:
            known = ", ".join(sorted(by_name))
            raise TypeError(f"infoutil {words}: unknown option {name!r}; options: {known}")
        if value is None or value is False:
            continue
        flag = "--" + arg["long"]
        if arg["kind"] == "flag":
            argv.append(flag)
        elif arg["kind"] == "list" and isinstance(value, (list, tuple)):
            argv += [flag, *map(_text, value)]
        else:
            argv += [flag, _text(value)]
    argv += [_text(v) for v in positional]
    return argv


def _text(value):
    return os.fspath(value) if isinstance(value, os.PathLike) else str(value)


def _doc(words):
    spec = options()[words]
    lines = [f"`infoutil {words}`: {spec['about'] or ''}", "", "Keyword arguments:"]
    for a in spec["args"]:
        default = f" [default: {', '.join(a['default'])}]" if a["default"] else ""
        choices = f" (one of {', '.join(a['choices'])})" if a["choices"] and a["kind"] != "flag" else ""
        name = f"*{a['name']}" if a["positional"] else a["name"]
        lines.append(f"  {name}: {(a['help'] or '').strip()}{choices}{default}")
    return "\n".join(lines)


def _signature(words):
    """What help() and editors show: the positionals, then every option as a keyword."""
    P = inspect.Parameter
    args = options()[words]["args"]
    params = [P(a["name"], P.VAR_POSITIONAL) for a in args if a["positional"]][:1]
    params += [P(a["name"], P.KEYWORD_ONLY, default=None) for a in args if not a["positional"]]
    return inspect.Signature(params)


def _command(words):
    def call(*positional, **kwargs):
        run(arguments(words, positional, kwargs))
        out = [a for a in options()[words]["args"] if a["name"] == "out"]
        value = kwargs.get("out") or (out[0]["default"][0] if out and out[0]["default"] else None)
        return Path(value) if value else None

    call.__name__ = words.replace(" ", "_")
    call.__qualname__ = call.__name__
    try:
        call.__doc__ = _doc(words) + "\n\nReturns the --out path (or None); raises infoutil.Error."
        call.__signature__ = _signature(words)
    except (Error, OSError, KeyError, ValueError):
        call.__doc__ = f"Run `infoutil {words}` (the binary was not found to list its options)."
    return call


distill = _command("distill")
attribute = _command("attribute")
teacher_eval = _command("teacher eval")
merge = _command("merge")


def help_text(words):
    """Every option of `infoutil WORDS`, from the binary (what `infoutil WORDS --help` says)."""
    return _doc(words)
