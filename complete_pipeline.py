"""Command-line entry point: ``python complete_pipeline.py --mode MODE [options]``.

Thin by design: it builds the parser from the stage registry (:mod:`pipeline.stages`), resolves
the config (defaults < the run folder's ``config.json`` for modes that work on an existing run <
``--config`` file < flags), prepares the run folder and calls the mode's stage function, then
prints its summary lines. Errors a user can fix are printed as one line and exit with code 2.
"""

from __future__ import annotations

import argparse
import errno
import logging
import sys
import warnings

from common.errors import UserError
from pipeline.flags import GLOBAL_FLAGS, Flag, overrides
from pipeline.stage import Stage
from pipeline.stages import DEFAULT_MODE, STAGES, all_flags, get_stage

PACKAGES = ("common", "pipeline", "nas", "search_spaces", "latency_tables", "train", "quantize", "reports")
MODES = tuple(s.mode for s in STAGES)
BUILT_MODES = tuple(s.mode for s in STAGES if s.built)


def _readers(dest: str) -> list[str]:
    return [s.mode for s in STAGES if dest in s.reads]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (kept separate so tests and docs can inspect it)."""
    modes = "\n".join(
        f"  {s.mode:<17} {s.help}"
        + ("" if s.built else " (planned)")
        + (f"\n  {'':<17} needs: {s.needs}" if s.needs else "")
        for s in STAGES
    )
    p = argparse.ArgumentParser(
        prog="complete_pipeline.py",
        description="Hardware-aware evolutionary NAS for small, fast audio classifiers.",
        epilog=f"modes:\n{modes}\n\nFlags in brackets name the modes that read them.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--mode", choices=MODES, default=DEFAULT_MODE, help=f"stage to run (default: {DEFAULT_MODE})")
    groups: dict[str, argparse._ArgumentGroup] = {}
    for flag in all_flags():
        if flag.group == "options":
            flag.add_to(p)
            continue
        if flag.group not in groups:
            groups[flag.group] = p.add_argument_group(flag.group)
        readers = _readers(flag.dest)
        flag = Flag(**{**flag.__dict__, "help": f"{flag.help} [{', '.join(readers)}]" if readers else flag.help})
        flag.add_to(groups[flag.group])
    return p


def warn_inapplicable(args: argparse.Namespace, stage: Stage) -> None:
    """Print a warning for every flag the chosen mode does not read."""
    for flag in all_flags():
        if flag in GLOBAL_FLAGS or flag.dest in stage.reads or not flag.given(args):
            continue
        print(
            f"warning: --{flag.dest.replace('_', '-')} has no effect in --mode {stage.mode} "
            f"(it applies to --mode {', '.join(_readers(flag.dest))}){flag.hints.get(stage.mode, '')}",
            file=sys.stderr,
        )
    if getattr(args, "scheduler", None) and getattr(args, "backend", None) != "dask":
        print("warning: --scheduler is only used with --backend dask", file=sys.stderr)


def overrides_from_args(args: argparse.Namespace, stage: Stage | None = None) -> dict:
    """The config values given as flags the mode reads, as a nested dict (flags not given are left out).

    A flag the mode does not read is warned about and changes nothing, not even the recorded
    ``config.json`` (which later modes of the run folder start from).
    """
    stage = stage or get_stage(args.mode)
    read = [f for f in all_flags() if f in GLOBAL_FLAGS or f.dest in stage.reads]
    return overrides(args, tuple(read), dict(stage.flag_targets))


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"warning: {message}", file=file or sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the process exit code."""
    args = build_parser().parse_args(argv)
    # the project's own loggers speak at INFO; libraries only at WARNING (onnxruntime.quantization, for
    # one, logs every tensor it leaves unquantized at INFO on the root logger)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    for package in PACKAGES:
        logging.getLogger(package).setLevel(logging.INFO)
    # warnings as one line each, without the source line of the library that raised them
    warnings.showwarning = _one_line_warning
    # loky reaps idle workers at shutdown and warns about it; nothing is lost (results are journaled)
    warnings.filterwarnings("ignore", message="A worker stopped while some jobs were given to the executor")
    try:
        from pipeline.api import Pipeline
        from pipeline.config import build_config
        from pipeline.run_folder import planned_run_dir, run_folder_config, undo_failed_start

        stage = get_stage(args.mode)
        if not stage.built:
            raise UserError(f"--mode {args.mode} is not built yet; working modes: {', '.join(BUILT_MODES)}")
        warn_inapplicable(args, stage)
        base = run_folder_config(stage, args.out)
        cfg = build_config(args.config, overrides_from_args(args, stage), base=base)
        pipe = Pipeline(cfg, out=args.out)
        with undo_failed_start(planned_run_dir(stage, cfg, args.out)):  # bad input leaves the folder as it was
            result, run_dir = pipe.run_stage(args.mode, args.resume)
        for line in pipe.summary(args.mode, result, run_dir):
            print(line)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        where = f" writing {exc.filename}" if exc.filename else ""
        print(f"error: no space left on the disk{where}; free some space, then run the same command with --resume "
              "(finished work is kept)", file=sys.stderr)  # fmt: skip
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
