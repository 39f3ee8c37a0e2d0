"""``ckt`` command line: prepare data, train and evaluate a student, apply it to new texts.

    ckt data prepare [--force]
    ckt train [--config configs/default.yaml] [--set key=value ...] --save runs/ckt
    ckt predict runs/ckt --input texts.csv --output preds.csv
    ckt params
    ckt rerun 02_kd_weight -p epochs 10     (papermill, with a one-line error for a bad parameter)
    ckt --version                           (the version and, in a git checkout, the commit)

Every command takes ``-q``/``--quiet`` (warnings only, no progress bars) and ``-v``/``--verbose`` (debug
messages; ``ckt rerun -v`` also streams the notebook's output), before or after the command's name.

Without ``--config``, ``ckt train`` uses the built-in defaults (``Config()``; ``configs/default.yaml`` in
the repository spells out the same values), so it runs from any directory, installed from a wheel or not.

Every user error (bad parameter, malformed file, missing model) prints one line naming the
problem and the fix, writes nothing, and exits with status 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from contextlib import nullcontext
from pathlib import Path

from .errors import CktError, DataError

log = logging.getLogger("ckt")
LEVELS = {-1: logging.WARNING, 0: logging.INFO, 1: logging.DEBUG}  # -q, neither, -v


def _verbosity(parser: argparse.ArgumentParser, default) -> argparse.ArgumentParser:
    """Add -q/-v to ``parser``. A subcommand's copy defaults to SUPPRESS, so ``ckt -v train`` is not undone by
    the train parser's own default (argparse writes a subparser's defaults over the main parser's values)."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("-q", "--quiet", dest="verbosity", action="store_const", const=-1, default=default,
                       help="warnings only, no progress bars")
    group.add_argument("-v", "--verbose", dest="verbosity", action="store_const", const=1, default=default,
                       help="debug messages too")
    return parser


def build_parser() -> argparse.ArgumentParser:
    from .version import version_line

    p = _verbosity(argparse.ArgumentParser(prog="ckt", description=__doc__.split("\n\n")[0]), 0)
    p.add_argument("--version", action="version", version=version_line())
    sub = p.add_subparsers(dest="command", required=True)

    def command(subparsers, name: str, **kw) -> argparse.ArgumentParser:
        return _verbosity(subparsers.add_parser(name, **kw), argparse.SUPPRESS)

    data = command(sub, "data", help="build the offline benchmark").add_subparsers(dest="action", required=True)
    prep = command(data, "prepare", help="download the pinned artifacts and build the splits (once)")
    prep.add_argument("--force", action="store_true", help="rebuild even if the splits exist")
    prep.add_argument("--teacher", action="store_true",
                      help="also train the default teacher and cache the frozen features (Binder's postBuild: "
                           "about 8 minutes once, so a launched chapter does not train it)")
    tr = command(sub, "train", help="train students (one per seed) and print mean ± 95%% CI")
    tr.add_argument("--config", default=None,
                    help="YAML config (default: the built-in defaults, the values of configs/default.yaml)")
    tr.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a parameter")
    tr.add_argument("--save", required=True, help="folder for weights, config, metrics.json")
    pr = command(sub, "predict", help="label texts with a trained student")
    pr.add_argument("run_dir", help="a folder written by `ckt train --save`")
    pr.add_argument("--input", required=True, help="CSV with a 'text' column")
    pr.add_argument("--output", required=True, help="CSV to write: text,label,prob_positive")
    pr.add_argument("--seed", type=int, default=None, help="which seed's student (default: the first)")
    command(sub, "params", help="list every parameter with its default and valid range")
    rr = command(sub, "rerun", help="execute a chapter notebook with papermill; its numbers go to results-rerun/")
    rr.add_argument("chapter", help="a chapter, e.g. 02_kd_weight (the names of notebooks/*.ipynb)")
    rr.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                    help="as papermill's -p: a chapter knob or any Config field")
    rr.add_argument("--output", default=None,
                    help="the executed notebook (default: <results folder>/<chapter>.ipynb, see CKT_RESULTS_DIR)")
    return p


def set_verbosity(verbosity: int) -> None:
    """The level of ckt's log (stderr): warnings only (-1, ``-q``), info (0) or debug (1, ``-v``)."""
    log.setLevel(LEVELS[max(-1, min(1, verbosity))])
    if not log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    set_verbosity(args.verbosity)
    log.debug("%s, command %s", _version_line(), args.command)
    try:
        return {"data": cmd_data, "train": cmd_train, "predict": cmd_predict, "params": cmd_params,
                "rerun": cmd_rerun}[args.command](args)
    except CktError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code


def _version_line() -> str:
    from .version import version_line

    return version_line()


def progress(args) -> bool:
    """Progress bars unless ``-q``."""
    return args.verbosity >= 0


def cmd_data(args) -> int:
    from .data import prepare_benchmark

    path = prepare_benchmark(force=args.force)
    meta = json.loads((path / "meta.json").read_text())
    print(f"benchmark ready in {path}")
    for split, n in meta.get("sizes", {}).items():
        print(f"  {split:>6}: {n}")
    if args.teacher:
        from .config import Config
        from .experiments.run import prepare_run

        prep = prepare_run(Config(), progress=progress(args))
        print(f"teacher ready: test accuracy {prep.teacher['teacher_accuracy']:.1f}% "
              f"({prep.teacher['teacher_n_train']} pool examples); frozen features cached")
    return 0


def cmd_params(args) -> int:
    from .config import SECTIONS, describe

    rows = describe()
    for section, title in SECTIONS.items():
        print(f"[{section}] {title}")
        for row in (r for r in rows if r["section"] == section):
            print(f"  {row['name']:<20} {str(row['default']):<14} {row['valid']:<34} {row['help']}")
    return 0


def cmd_train(args) -> int:
    from .config import Config, parse_sets
    from .core.distributed import finish, is_main, main_first
    from .core.metrics import format_ci
    from .core.models import resolve_model
    from .core.student import save_pretrained
    from .data.cache import atomic_path
    from .experiments.run import REPORTED, prepare_run, run_seed, summary

    cfg = Config.from_yaml(args.config, args.set) if args.config else Config.from_dict(parse_sets(args.set))
    log.debug("config: %s", cfg.to_dict())
    resolve_model(cfg.backbone)  # a bad model name fails now, before any data is read or built
    out = Path(args.save)
    with main_first():  # under torchrun: rank 0 fills the caches, the others then read them
        prep = prepare_run(cfg, progress=progress(args) and is_main())
    records = []
    # every rank trains the same students; rank 0 reports and saves them (a folder per seed)
    with atomic_path(out, folder=True) if is_main() else nullcontext() as tmp:
        for seed in cfg.seeds:
            student, record = run_seed(prep, seed, cfg, progress=progress(args) and is_main())
            records.append(record)
            if tmp is not None:
                save_pretrained(student, tmp / f"student_seed{seed}", cfg)
        if tmp is None:
            finish()
            return 0
        import pandas as pd

        table = pd.DataFrame(records)
        summ = summary(table)
        (tmp / "config.yaml").write_text(cfg.to_yaml())
        table.to_csv(tmp / "records.csv", index=False)
        (tmp / "metrics.json").write_text(json.dumps({"records": records, "summary": summ.to_dict("records")},
                                                     indent=2, default=float))
    finish()
    print(f"teacher test accuracy: {prep.teacher['teacher_accuracy']:.1f}%  ({prep.teacher['teacher_n_train']} pool "
          f"examples)")
    print(f"{cfg.regime}, {len(cfg.seeds)} seeds (mean ± 95% CI):")
    row = summ.iloc[0]
    for m in REPORTED:
        print(f"  {m:<20} {format_ci(row[m + '_mean'], row[m + '_ci'])}")
    print(f"saved to {out}")
    return 0


def load_run_student(run_dir: Path, seed: int | None):
    """(student, seed) from a run folder (``student_seed<N>/``, or the older ``student_seed<N>.safetensors``
    beside config.yaml), or from one student folder itself."""
    from .config import Config
    from .core.student import from_pretrained, load_student

    if (run_dir / "config.json").is_file():  # a student folder itself
        return from_pretrained(run_dir), seed
    if not (run_dir / "config.yaml").is_file():
        raise DataError(f"{run_dir} is not a training run (no config.yaml): "
                        "pass the folder given to `ckt train --save`")
    cfg = Config.from_yaml(run_dir / "config.yaml")
    seed = cfg.seeds[0] if seed is None else seed
    folder = run_dir / f"student_seed{seed}"
    if folder.is_dir():
        return from_pretrained(folder), seed
    return load_student(cfg, run_dir / f"student_seed{seed}.safetensors"), seed  # saved before student folders


def cmd_predict(args) -> int:
    import pandas as pd
    import torch

    from .data.cache import atomic_path

    texts = _read_texts(Path(args.input))
    student, seed = load_run_student(Path(args.run_dir), args.seed)
    with torch.no_grad():
        prob = torch.softmax(student.head(student.pooled(texts).float()), -1)[:, 1]
    df = pd.DataFrame({"text": texts, "label": (prob >= 0.5).long().numpy(), "prob_positive": prob.numpy().round(6)})
    out = Path(args.output)
    with atomic_path(out) as tmp:
        df.to_csv(tmp, index=False)
    print(f"wrote {len(df)} predictions to {out} (student seed {seed}, {int(df['label'].sum())} positive)")
    return 0


def papermill_value(text: str):
    """What papermill's ``-p`` makes of a value: True/False/None, an int, a float, else the string."""
    literals = {"True": True, "False": False, "None": None}
    if text in literals:
        return literals[text]
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def cmd_rerun(args) -> int:
    """Papermill's own CLI ends a failed run with its Python traceback; here a ckt error inside the
    notebook (a bad parameter, a missing model) is its one line and exit status 2, and the failed
    notebook is not left behind."""
    import difflib

    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    from .book.chapters import CHAPTERS, ROOT
    from .book.notebook import parameters
    from .errors import ConfigError
    from .paths import default_results_dir

    if args.chapter not in CHAPTERS:
        close = difflib.get_close_matches(args.chapter, list(CHAPTERS), n=1)
        hint = f"did you mean '{close[0]}'?" if close else f"choose one of {', '.join(CHAPTERS)}"
        raise ConfigError(f"unknown chapter '{args.chapter}': {hint}")
    source = CHAPTERS[args.chapter].ipynb
    if not source.is_file():
        raise ConfigError(f"{source} not found: ckt rerun runs in a clone of the repository (git clone, make install)")
    out = Path(args.output) if args.output else default_results_dir() / f"{args.chapter}.ipynb"
    out.parent.mkdir(parents=True, exist_ok=True)
    params = {name: papermill_value(value) for name, value in args.parameter}
    parameters(dict(params), args.chapter)  # the notebook's own check, before a kernel starts
    try:
        pm.execute_notebook(str(source), str(out), parameters=params, kernel_name="python3", cwd=str(ROOT),
                            progress_bar=progress(args), log_output=args.verbosity > 0)
    except PapermillExecutionError as err:
        errors = {cls.__name__: cls for cls in (CktError, *CktError.__subclasses__())}
        if err.ename not in errors:
            raise
        out.unlink(missing_ok=True)
        raise errors[err.ename](err.evalue) from None
    print(f"executed {args.chapter} into {out}")
    return 0


def _read_texts(path: Path) -> list[str]:
    import pandas as pd

    if not path.is_file():
        raise DataError(f"input file {path} not found: pass a CSV with a 'text' column")
    try:
        df = pd.read_csv(path, encoding="utf-8", dtype=str, keep_default_na=False)
    except UnicodeDecodeError:
        raise DataError(f"input file {path} is not UTF-8: re-save it as UTF-8") from None
    except (pd.errors.EmptyDataError, pd.errors.ParserError) as err:
        raise DataError(f"input file {path} is not a readable CSV ({str(err).splitlines()[0]}): fix it") from None
    if "text" not in df.columns:
        raise DataError(f"input file {path} has no 'text' column (found: {', '.join(df.columns)}): add a header 'text'")
    if df.empty:
        raise DataError(f"input file {path} has no rows: add texts under the 'text' header")
    return df["text"].tolist()


if __name__ == "__main__":
    sys.exit(main())
