"""The click CLI, built from the command table in `pyoci.commands`.

`pyoci.entry` parses ordinary command lines itself (click costs ~25 ms to import); it hands
argv to this module for `--help`, `--version`, a missing command, or anything malformed, so
users get click's help pages and usage errors. The callbacks call the same handlers.
"""

from __future__ import annotations

import click

from pyoci import OCI_VERSION, __version__
from pyoci.commands import COMMANDS, GLOBAL_OPTS, Cmd, Opt, run_handler


def _param(opt: Opt) -> click.Option:
    kwargs: dict = {"help": opt.help, "show_default": False}
    if opt.kind == "flag":
        kwargs["is_flag"] = True
        kwargs["default"] = False
    elif opt.kind == "int":
        kwargs["type"] = int
        kwargs["default"] = opt.default
    elif opt.kind == "choice":
        kwargs["type"] = click.Choice(opt.choices)
        kwargs["default"] = opt.default
    elif opt.kind == "multi":
        kwargs["multiple"] = True
    else:
        kwargs["default"] = opt.default
    if opt.metavar:
        kwargs["metavar"] = opt.metavar
    return click.Option([*opt.names, opt.dest], **kwargs)


def _command(cmd: Cmd) -> click.Command:
    params: list[click.Parameter] = [_param(opt) for opt in cmd.opts]
    for name, required in cmd.args:
        params.append(click.Argument([name.replace("-", "_")], required=required))
    if cmd.rest:
        params.append(click.Argument([cmd.rest], nargs=-1, required=False))

    @click.pass_context
    def callback(ctx: click.Context, **kwargs: object) -> None:
        positional = [kwargs.pop(name.replace("-", "_")) for name, _ in cmd.args]
        args = [str(a) for a in positional if a is not None]
        if cmd.rest:
            args.extend(kwargs.pop(cmd.rest) or ())
        options = {opt.dest: kwargs.get(opt.dest) for opt in cmd.opts}
        for opt in cmd.opts:
            if opt.kind == "multi":
                options[opt.dest] = list(options[opt.dest] or ())
        ctx.exit(run_handler(ctx.obj, cmd, options, args))

    # After the positional arguments of a command with a trailing command line (exec's
    # `ID CMD ARGS...`), every token is the command's, as for runc (Go's flag package stops
    # at the first argument) and for the fast parser in pyoci.entry.
    settings: dict = {"help_option_names": ["-h", "--help"]}
    if cmd.rest:
        settings["allow_interspersed_args"] = False
    return click.Command(
        cmd.name, params=params, callback=callback, help=cmd.help, context_settings=settings
    )


def _version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    click.echo(f"pyoci version {__version__}\nspec: {OCI_VERSION}")
    ctx.exit(0)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--version",
    "-v",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_version,
    help="print the version",
)
@click.pass_context
def pyoci(ctx: click.Context, **globals_: object) -> None:
    """pyoci: an OCI container runtime written in Python (runc-compatible command line)."""
    ctx.obj = dict(globals_)


for _opt in GLOBAL_OPTS:
    pyoci.params.append(_param(_opt))
for _cmd in COMMANDS:
    pyoci.add_command(_command(_cmd))


def main(argv: list[str]) -> int:
    try:
        pyoci.main(args=argv, prog_name="pyoci", standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as err:
        click.echo(err.ctx.get_help() if err.ctx else str(err), err=True)
        return 2
    except click.UsageError as err:
        err.show()
        return 2
    except click.exceptions.Exit as err:
        return err.exit_code
    except click.Abort:
        return 1
    return 0
