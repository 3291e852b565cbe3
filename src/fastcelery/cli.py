"""The ``fastcelery`` command line: parse, call one core function, print.

Start-up must stay fast (``fastcelery --help``): this module imports Typer and
fastcelery's light modules only. Copier, Jinja, PyYAML and anything heavy are imported by
the core modules the commands call (:mod:`fastcelery.render`, :mod:`fastcelery.update`,
:mod:`fastcelery.info`).

The options of ``fastcelery new`` (and ``update``) are built at run time from
``copier.yml`` by :mod:`fastcelery.params`.
"""

from __future__ import annotations

import inspect
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

import typer

from fastcelery import __version__
from fastcelery.errors import PROG, FastceleryError, UsageError, message_line
from fastcelery.options import (
    ADD_TASK,
    NEW,
    describe_commands,
    describe_questions,
    format_markdown,
    format_text,
    task_config,
    template_config,
)
from fastcelery.params import (
    flag_declaration,
    flag_questions,
    flag_values,
    keyword,
    option,
    option_help,
    question_parameters,
    with_signature,
)
from fastcelery.questions import (
    NAME_QUESTION,
    PROJECT_ANSWERS,
    TASK_NAME_QUESTION,
    QuestionError,
    TemplateConfig,
)

#: Exit code of an update that needs the user: conflicts, lost edits or broken imports.
EXIT_ATTENTION = 3


# --------------------------------------------------------------------------- output


def fail(message: str, code: int = 2) -> NoReturn:
    """Print ONE line on stderr and exit with ``code``."""
    typer.echo(message_line("error", message), err=True)
    raise typer.Exit(code)


def warn(messages: Sequence[str], kind: str = "warning") -> None:
    for message in messages:
        typer.echo(message_line(kind, message), err=True)


def _run_reporting_errors(work: Callable[[], None]) -> None:
    try:
        work()
    except QuestionError as exc:
        fail(str(exc), 2)
    except FastceleryError as exc:
        fail(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        typer.echo(f"{PROG}: interrupted", err=True)
        raise typer.Exit(130) from None


def _interactive(defaults: bool) -> bool:
    return not defaults and sys.stdin.isatty()


# --------------------------------------------------------------------------- the app


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"{PROG} {__version__}")
        raise typer.Exit(0)


def _root(
    version: bool = typer.Option(
        False,
        "--version",
        help="Show the version and exit.",
        callback=_version_callback,
        is_eager=True,
    ),
) -> None:
    """Generate FastAPI + Celery services from fastcelery's Copier template."""


def _data_option(help_text: str) -> inspect.Parameter:
    return option(
        "data", list[str] | None, None, "--data", "-d", metavar="KEY=VALUE", help=help_text
    )


def _common_parameters() -> list[inspect.Parameter]:
    """The options that ``new`` and ``update`` share."""
    return [
        _data_option(
            "Answer any copier.yml question (repeatable); value parsed by the question's type."
        ),
        option(
            "defaults",
            bool,
            False,
            "--defaults",
            help="Never prompt: unanswered questions take their defaults (automatic when "
            "stdin is not a terminal).",
        ),
    ]


def _vcs_ref_parameter(help_text: str) -> inspect.Parameter:
    return option("vcs_ref", str | None, None, "--vcs-ref", metavar="REF", help=help_text)


def _source_parameter(help_text: str) -> inspect.Parameter:
    return option("source", str | None, None, "--source", metavar="URL", help=help_text)


def _question_help(config: TemplateConfig | None, question: str, fallback: str, suffix: str) -> str:
    """A question's help from its copier file (the single source), or `fallback` without it."""
    if config is not None and question in config.names:
        return f"{config.question(question).help}{suffix}"
    return fallback


def _new_parameters(config: TemplateConfig | None) -> list[inspect.Parameter]:
    name_help = _question_help(
        config,
        NAME_QUESTION,
        "Project name; the project is created in OUTPUT/NAME (asked when omitted).",
        ". Created in OUTPUT/NAME.",
    )
    return [
        keyword(
            "name",
            str | None,
            typer.Argument(None, metavar="[NAME]", help=name_help, show_default=False),
        ),
        option(
            "output",
            Path | None,
            None,
            "--output",
            "-o",
            metavar="DIR",
            help="Directory in which NAME is created [default: current directory].",
        ),
        option(
            "force",
            bool,
            False,
            "--force",
            help="Render into a non-empty directory; its files that the template would "
            "replace are listed and kept unless you confirm.",
        ),
        option(
            "git",
            bool,
            True,
            "--git/--no-git",
            show_default=False,
            help="git init and commit the new project [default: --git].",
        ),
        *_common_parameters(),
        option(
            "template",
            str | None,
            None,
            "--template",
            metavar="PATH_OR_URL",
            help="Render from this Copier template (git URL or path) instead of the bundled one.",
        ),
        _source_parameter(
            "Template URL the project records, for a fork or an internal mirror "
            "[default: https://github.com/fastcelery/fastcelery.git]; with --template PATH, "
            "PATH is rendered and URL recorded."
        ),
        _vcs_ref_parameter(
            "Template version to render (a release tag such as v0.1.0) [default: this "
            "fastcelery's template]."
        ),
    ]


def new_command(config: TemplateConfig | None) -> Callable[..., None]:
    def new(**kwargs: Any) -> None:
        """Render a new FastAPI + Celery service into OUTPUT/NAME."""
        _run_reporting_errors(lambda: _new(kwargs))

    extra = question_parameters(config, for_update=False)
    return with_signature(new, _new_parameters(config), extra)


def _new(kwargs: dict[str, Any]) -> None:
    from fastcelery import render  # noqa: PLC0415 - lazy: keeps --help fast

    interactive = _interactive(kwargs["defaults"])
    config = template_config()
    request = render.NewRequest(
        name=kwargs["name"] or _ask_name(config, interactive),
        output=kwargs["output"] or Path.cwd(),
        flags=flag_values(config, kwargs),
        data=kwargs["data"] or (),
        interactive=interactive,
        force=kwargs["force"],
        git=kwargs["git"],
        template=kwargs["template"],
        vcs_ref=kwargs["vcs_ref"],
        source=kwargs["source"],
        confirm_overwrite=_confirm_overwrite if interactive else None,
    )
    result = render.new_project(request)
    warn(result.warnings)
    warn([result.git_note] if result.git_note else [], "note")
    typer.echo("")
    typer.echo(render.next_steps(result))


def _ask_name(config: TemplateConfig, interactive: bool) -> str:
    question = config.question(NAME_QUESTION)
    if not interactive:
        raise UsageError(
            "missing NAME: give the project name, e.g. `fastcelery new order-service` "
            "(at a terminal it is asked)"
        )
    return str(typer.prompt(question.help or "Project name", default=question.default))


def _confirm_overwrite(files: Sequence[str]) -> bool:
    typer.echo(f"{len(files)} existing file(s) would be replaced by the template:", err=True)
    for name in files:
        typer.echo(f"  {name}", err=True)
    return typer.confirm("Replace them (no: keep yours)?", default=False, err=True)


def _update_parameters() -> list[inspect.Parameter]:
    return [
        _path_argument("The generated project [default: .]."),
        option(
            "pretend",
            bool,
            False,
            "--pretend",
            help="Dry run: list the files that would change and the conflicts; write nothing.",
        ),
        option(
            "conflict",
            str,
            "inline",
            "--conflict",
            metavar="inline|rej",
            help="How conflicts are written: inline markers or .rej files [default: inline].",
            show_default=False,
        ),
        *_common_parameters(),
        _vcs_ref_parameter(
            "Template version (a release tag) to update to [default: this fastcelery's "
            "template; for a source this fastcelery does not carry, the newest tag there]."
        ),
        _source_parameter(
            "Move the project to this template URL first (one commit), e.g. a team's mirror."
        ),
        option(
            "from_version",
            str | None,
            None,
            "--from-version",
            metavar="VERSION",
            help="Update as if the project had been rendered from this release (for a "
            "recorded version no machine has any more); recorded in one commit first.",
        ),
    ]


def _path_argument(help_text: str) -> inspect.Parameter:
    argument = typer.Argument(Path("."), metavar="PATH", help=help_text, show_default=False)
    return keyword("path", Path, argument)


def update_command(config: TemplateConfig | None) -> Callable[..., None]:
    def update(**kwargs: Any) -> None:
        """Update a generated project to this fastcelery's template (Copier's three-way merge).

        Refuses projects with uncommitted changes. Answers can be changed on the way
        (e.g. --broker rabbitmq); the others keep their recorded values. Exit code 3:
        conflicts, edits in files the template deleted, or imports the update broke.
        """
        _run_reporting_errors(lambda: _update(kwargs))

    extra = question_parameters(config, for_update=True)
    return with_signature(update, _update_parameters(), extra)


def _update(kwargs: dict[str, Any]) -> None:
    from fastcelery import update  # noqa: PLC0415 - lazy: keeps --help fast

    request = update.UpdateRequest(
        path=kwargs["path"].absolute(),
        flags=flag_values(template_config(), kwargs, with_name=True),
        data=kwargs["data"] or (),
        interactive=_interactive(kwargs["defaults"]),
        pretend=kwargs["pretend"],
        vcs_ref=kwargs["vcs_ref"],
        conflict=kwargs["conflict"],
        source=kwargs["source"],
        from_version=kwargs["from_version"],
    )
    result = update.update_project(request)
    warn([*result.warnings, *(w for task in result.added for w in task.warnings)])
    typer.echo(update.report(result))
    if result.needs_attention:
        raise typer.Exit(EXIT_ATTENTION)


def _add_task_parameters(config: TemplateConfig | None) -> list[inspect.Parameter]:
    name_help = _question_help(
        config, TASK_NAME_QUESTION, "Name of the task (a lowercase Python identifier).", "."
    )
    return [
        keyword(
            "name", str, typer.Argument(..., metavar="NAME", help=name_help, show_default=False)
        ),
        _path_argument("The generated project [default: .]."),
        _data_option("Answer any question of the task sub-template (repeatable)."),
        option(
            "git",
            bool,
            True,
            "--git/--no-git",
            show_default=False,
            help="Commit the new files (the project's tree must be clean) [default: --git].",
        ),
    ]


def add_task_command(config: TemplateConfig | None) -> Callable[..., None]:
    def task(**kwargs: Any) -> None:
        """Add a durable task to a generated project: its module, its tests and (--route) a
        route that enqueues it. New files only; committed unless --no-git."""
        _run_reporting_errors(lambda: _add_task(kwargs))

    extra = question_parameters(config, for_update=False, fixed=PROJECT_ANSWERS)
    return with_signature(task, _add_task_parameters(config), extra)


def _add_task(kwargs: dict[str, Any]) -> None:
    from fastcelery import add  # noqa: PLC0415 - lazy: keeps --help fast

    request = add.AddTaskRequest(
        path=kwargs["path"].absolute(),
        name=kwargs["name"],
        flags=flag_values(task_config(), kwargs, fixed=PROJECT_ANSWERS),
        data=kwargs["data"] or (),
        git=kwargs["git"],
    )
    result = add.add_task(request)
    warn(result.warnings)
    typer.echo(add.next_steps(result))


def add_help(config: TemplateConfig | None) -> str:
    """``fastcelery add --help``: what it adds, and the questions of ``add task``."""
    text = (
        "Add parts to a generated project; each keeps its own answers file and is updated "
        "by `fastcelery update`."
    )
    if config is None:
        return text
    lines = ["\b", "fastcelery add task NAME [OPTIONS] [PATH], options from its copier.yml:"]
    for question in flag_questions(config, fixed=PROJECT_ANSWERS):
        lines.append(f"  {flag_declaration(question)}: {option_help(question)}")
    return f"{text}\n\n" + "\n".join(lines)


def options(
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of text."),
    markdown: bool = typer.Option(False, "--markdown", help="Print Markdown tables."),
) -> None:
    """List every question of `new` and `add task`: flag, type, choices, default and help
    (from their copier.yml files)."""

    def work() -> None:
        if as_json:
            typer.echo(json.dumps(describe_commands(), indent=2))
        elif markdown:
            tables = [
                f"`fastcelery {command}`:\n\n{format_markdown(describe_questions(command=command))}"
                for command in (NEW, ADD_TASK)
            ]
            typer.echo("\n\n".join(tables))
        else:
            typer.echo(format_text(describe_commands()))

    _run_reporting_errors(work)


def info_command() -> Callable[..., None]:
    def info(**kwargs: Any) -> None:
        """Show a project's template source and version, its answers, and added templates."""

        def work() -> None:
            from fastcelery import info as core  # noqa: PLC0415 - lazy: keeps --help fast

            found = core.project_info(kwargs["path"].absolute())
            text = json.dumps(found.as_dict(), indent=2) if kwargs["as_json"] else None
            typer.echo(text or core.format_text(found))

        _run_reporting_errors(work)

    as_json = option("as_json", bool, False, "--json", help="Print JSON instead of text.")
    return with_signature(
        info, [_path_argument("The generated project [default: .]."), as_json], []
    )


def build_app(config: TemplateConfig | None, task: TemplateConfig | None = None) -> typer.Typer:
    app = typer.Typer(
        name=PROG,
        rich_markup_mode=None,
        pretty_exceptions_enable=False,
        add_completion=False,
        no_args_is_help=True,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    app.callback()(_root)
    app.command("new")(new_command(config))
    add = typer.Typer(name="add", help=add_help(task), no_args_is_help=True)
    add.command("task")(add_task_command(task))
    app.add_typer(add, name="add")
    app.command("update")(update_command(config))
    app.command("options")(options)
    app.command("info")(info_command())
    return app


def _config_or_none(read: Callable[[], TemplateConfig] = template_config) -> TemplateConfig | None:
    try:
        return read()
    except (FastceleryError, OSError, ValueError):
        return None  # the command then fails with one line when it needs the template


#: Commands whose options come from copier.yml, or the task sub-template's; other
#: invocations never read them.
QUESTION_COMMANDS = frozenset({"new", "update"})
TASK_COMMANDS = frozenset({"add"})


def _command_of(argv: Sequence[str]) -> str | None:
    for arg in argv:
        if not arg.startswith("-"):
            return arg
    return None


def app_for(argv: Sequence[str]) -> typer.Typer:
    """The Typer app for this command line: copier.yml is read only when the command needs it."""
    command = _command_of(argv)
    return build_app(
        _config_or_none() if command in QUESTION_COMMANDS else None,
        _config_or_none(task_config) if command in TASK_COMMANDS else None,
    )


def __getattr__(name: str) -> Any:
    # ``fastcelery.cli.app`` (for typer.testing.CliRunner) is the full app, built on first use.
    if name == "app":
        built = build_app(_config_or_none(), _config_or_none(task_config))
        globals()["app"] = built
        return built
    raise AttributeError(name)


def _click_error(exc: BaseException) -> tuple[str, int] | None:
    """Duck-type Click's exceptions (Typer vendors Click; avoid importing its private module)."""
    if type(exc).__name__ == "Abort":
        return "aborted", 130
    if type(exc).__name__ == "NoArgsIsHelpError":  # plain `fastcelery`: show the help
        return None
    format_message = getattr(exc, "format_message", None)
    exit_code = getattr(exc, "exit_code", None)
    if callable(format_message) and isinstance(exit_code, int):
        message = str(format_message())
        ctx = getattr(exc, "ctx", None)
        command = getattr(ctx, "command_path", None) if ctx is not None else None
        if command and command != PROG:
            message = f"{command.removeprefix(PROG + ' ')}: {message}"
        return message, exit_code
    return None


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point: errors are ONE line on stderr; usage errors exit with 2."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        result = app_for(args)(args=args, prog_name=PROG, standalone_mode=False)
    except Exception as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":
            print(str(getattr(exc, "message", exc)))
            sys.exit(0)
        found = _click_error(exc)
        if found is None:
            raise
        message, code = found
        print(message_line("error", message), file=sys.stderr)
        sys.exit(code)
    sys.exit(result if isinstance(result, int) else 0)


if __name__ == "__main__":  # pragma: no cover
    main()
