"""`edgekit ...`: argument parsing only; the work happens in `edgekit._pipeline` and the packages."""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from edgekit._ledger import Ledger, LedgerError
from edgekit._store import ArtifactStore, StoreError, format_table


class _Lazy:
    """A module imported on its first attribute access. The rooms and the wiring load torch (1 GB,
    seconds); parsing arguments, `--help` and the store's commands need none of it."""

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attribute: str):
        return getattr(importlib.import_module(self._name), attribute)

    def __repr__(self) -> str:
        return f"<module {self._name!r}, imported on first use>"


if TYPE_CHECKING:
    import edge_export
    import student
    import synth
    import teacher
    from edgekit import _audit, _demo, _explain, _pipeline, _unlearn
else:
    edge_export, student, synth, teacher = (_Lazy(name) for name in ("edge_export", "student", "synth", "teacher"))
    _audit, _demo, _explain, _pipeline, _unlearn = (_Lazy(f"edgekit.{name}") for name in ("_audit", "_demo", "_explain",
                                                                                          "_pipeline", "_unlearn"))


def _records(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def _runs_dir(args) -> str:
    return args.runs or os.environ.get("EDGEKIT_RUNS") or "runs"


def _store_for(args, ref: str) -> ArtifactStore:
    """The store a command reads `ref` from and seals its results in: the runs folder an artifact
    directory given by path sits in (so its parents are found there), else --runs."""
    store = ArtifactStore.for_reference(ref, _runs_dir(args))
    if args.runs and store.root != Path(args.runs).resolve():
        raise StoreError(f"{ref} belongs to the runs folder {store.root}, not to --runs {args.runs}: "
                         "name the artifact by id, or drop --runs")
    return store


def _given(**options) -> dict:
    """The options given on the command line (not None): the configs' own defaults stand for the
    rest, so the CLI does not repeat them (nor import them for --help)."""
    return {name: value for name, value in options.items() if value is not None}


def _check_choice(value: str, known, what: str) -> None:
    """Choices checked in the command, once their room is imported, not by argparse (which would
    import it for every --help)."""
    if value not in known:
        raise ValueError(f"unknown {what} {value!r}; known: {', '.join(known)}")


class _RunsAlias(argparse.Action):
    """`--out DIR`, the runs folder's name before `--runs`: still taken, with a note on stderr."""

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"edgekit: note: {option_string} for the runs folder is deprecated; use --runs {values}",
              file=sys.stderr)
        setattr(namespace, self.dest, values)


def _add_common(parser: argparse.ArgumentParser, runs_default: str = "$EDGEKIT_RUNS, else ./runs") -> None:
    parser.add_argument("--data-dir", help="data directory (default: $EDGEKIT_DATA, else ./data)")
    parser.add_argument("--runs", metavar="DIR", help=f"runs directory holding artifacts (default: {runs_default})")
    parser.add_argument("--out", dest="runs", action=_RunsAlias, help=argparse.SUPPRESS)  # deprecated: --runs
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def _json_ready(obj):
    """NaN (e.g. an AUC over one class) is not JSON: null instead; other odd values as text."""
    if isinstance(obj, float):
        return None if math.isnan(obj) else obj
    if isinstance(obj, dict):
        return {key: _json_ready(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_ready(value) for value in obj]
    if obj is None or isinstance(obj, (str, int, bool)):
        return obj
    return str(obj)


def _print_json(obj) -> None:
    print(json.dumps(_json_ready(obj), indent=2))


def cmd_teacher_train(args) -> int:
    if args.dataset not in teacher.DATASETS:
        raise ValueError(f"unknown dataset {args.dataset!r}; known: {', '.join(teacher.DATASETS)}")
    if args.arch:
        _check_choice(args.arch, teacher.list_models(), "model")
    config = teacher.dataset(args.dataset).train_config(
        args.data_dir,
        arch=args.arch,
        epochs=args.epochs,
        seed=args.seed,
        validation=not args.no_validation,
        validation_seed=args.validation_seed,
        validation_size=args.validation_size,
        train_records=_records(args.train_records) if args.train_records else None,
        val_records=_records(args.val_records) if args.val_records else None,
        download=args.download,
        progress=not args.quiet,
    )
    store = ArtifactStore(_runs_dir(args))
    artifact = _pipeline.train_teacher(
        store, config, args.data_dir, device=args.device, resume=args.resume, progress=not args.quiet,
        download=args.download,
    )
    return _report_trained(artifact)


def _report_trained(artifact) -> int:
    print(artifact.id)
    print(json.dumps(_json_ready(artifact.manifest["metrics"])), file=sys.stderr)
    return 0


def cmd_teacher_eval(args) -> int:
    records = _records(args.records) if args.records else list(teacher.TEST_RECORDS)
    store = _store_for(args, args.artifact)
    figures = _pipeline.evaluate_teacher(store, args.artifact, records, args.data_dir, beats=args.beats,
                                         progress=not args.quiet)
    image = "night" not in figures
    if args.plot and not image:
        teacher.plot_ahi(figures["night"], args.plot)
    if args.json:
        _print_json(figures)
    else:
        print(teacher.format_image_figures(figures) if image else teacher.format_apnea_figures(figures))
    return 0


def cmd_synth_generate(args) -> int:
    config = synth.SynthConfig(
        **_given(size=args.size),
        labels=args.labels,
        generators=args.generators,
        premove_max_steps=args.premove_steps,
        privacy_weight=args.privacy_weight,
        seed=args.seed,
    )
    store = _store_for(args, args.teacher)
    artifact = _pipeline.synthesise(store, args.teacher, config, args.data_dir, resume=args.resume,
                                    progress=not args.quiet)
    return _report_trained(artifact)


def cmd_synth_audit(args) -> int:
    config = synth.AuditConfig(**_given(samples=args.samples, epochs=args.epochs, team_size=args.team_size),
                               seed=args.seed)
    report = _audit.audit_synthetic(_store_for(args, args.synth), args.synth, args.data_dir, config,
                                    progress=not args.quiet)
    if args.json:
        _print_json(report)
    else:
        print(synth.format_report(report))
    return 0


def cmd_student_distill(args) -> int:
    _check_choice(args.arch, teacher.list_models(), "model")
    store = _store_for(args, args.synth)
    artifact = _pipeline.distill(
        store, args.synth, args.arch, args.data_dir, labels=args.labels, temperature=args.temperature,
        epochs=args.epochs, size=args.size, seed=args.seed, device=args.device, resume=args.resume,
        progress=not args.quiet,
    )
    return _report_trained(artifact)


def cmd_export(args) -> int:
    _check_choice(args.quantize, edge_export.QUANTIZE_MODES, "quantize mode")
    store = _store_for(args, args.student)
    artifact = _pipeline.export(store, args.student, args.quantize, progress=not args.quiet)
    print(artifact.id)
    if args.sign:
        signature = edge_export.sign_bundle(artifact.path, args.sign)
        print(f"signed: {signature} ({edge_export.SIGNATURE_SCHEME})", file=sys.stderr)
    bundle = artifact.manifest["bundle"]
    verification = artifact.manifest["metrics"]["verification"]
    print(f"{artifact.path / edge_export.PTE_NAME}: {bundle['pte_bytes']} bytes, {bundle['quantize']}; against the "
          f"eager student on {verification['samples']} synthetic samples: decisions agree "
          f"{verification['decision_agreement']:.1%}, max logit difference {verification['max_logit_difference']:.2e}",
          file=sys.stderr)
    return 0


def cmd_replay(args) -> int:
    path = args.bundle if os.path.isdir(args.bundle) else _store_for(args, args.bundle).get(args.bundle).path
    bundle = edge_export.load_bundle(path, public_key=args.public_key)
    result = edge_export.replay_night(bundle, _night(args), progress=not args.quiet)
    if args.csv:
        edge_export.write_minutes_csv(result, args.csv)
    if args.plot:
        edge_export.plot_night(result, bundle.spec["decision"]["threshold"], args.plot)
    if args.json:
        print(json.dumps(_json_ready(result)))
        return 0
    line = (f"{result['record']}: {sum(result['flags'])} of {result['minutes']} minutes flagged, estimated AHI "
            f"{result['estimated_ahi']:.1f} -> {'apneic' if result['apneic'] else 'not apneic'}")
    if "reference_ahi" in result:
        line += (f" (reference AHI {result['reference_ahi']:.1f} -> "
                 f"{'apneic' if result['reference_apneic'] else 'not apneic'}; minutes agree {result['minute_accuracy']:.1%})")
    print(line + f"; runtime {result['runtime_seconds']:.2f} s")
    return 0


def _night(args) -> "teacher.Night":
    """The night a replay reads: a record's annotated beats, an ECG file's detected beats, or a
    strap's RR intervals; all three then go through the same beats -> RR -> windows path."""
    if args.ecg:
        return teacher.read_ecg(args.ecg, args.fs)
    if args.fs is not None:
        raise ValueError("--fs gives the sampling rate of an --ecg CSV file")
    if args.rr:
        return teacher.read_rr(args.rr)
    return teacher.read_night(args.record, args.data_dir)


def cmd_keys_new(args) -> int:
    private, public = edge_export.new_signing_key(args.directory)
    print(f"private key (keep it on the server): {private}\npublic key (pin it in the app): {public}")
    return 0


def cmd_beats(args) -> int:
    night = teacher.read_ecg(args.ecg, args.fs)
    if args.csv:
        teacher.write_beats_csv(night, args.csv)
    marks = night.quality.counts()
    print(f"{night.name}: {night.beat_times.size} beats in {night.n_samples / night.fs / 3600:.2f} h at {night.fs:g} Hz "
          f"({night.beat_source}); no signal: " + ", ".join(f"{reason} {seconds:g} s" for reason, seconds in marks.items())
          + "; beats dropped there: " + ", ".join(f"{reason} {count}" for reason, count in night.rejected_beats.items())
          + (f"; rows: {args.csv}, no-signal stretches: {teacher.quality_csv_path(args.csv)}" if args.csv else ""))
    return 0


def cmd_explain(args) -> int:
    if (args.minute is None) == (not args.night):
        raise ValueError("say which minute to explain: --minute N, or --night for every flagged minute")
    _check_choice(args.method, student.METHODS, "explanation method")
    _check_choice(args.target, teacher.LABEL_NAMES, "target class")
    store = _store_for(args, args.artifact)
    minutes = None if args.night else [args.minute]
    result = _explain.explain_minutes(store, args.artifact, args.record, minutes, method=args.method,
                                      target=args.target, data_dir=args.data_dir, progress=not args.quiet)
    if args.night:
        path = args.out or f"{args.record}-{args.method}.html"
        student.write_night_report(result, path)
        print(f"{args.record}: {len(result['minutes'])} flagged minutes explained ({args.method}) in "
              f"{result['seconds']:.1f} s; report: {path}")
        return 0
    path = args.out or f"{args.record}-minute{args.minute}-{args.method}.png"
    student.plot_minute(result, 0, path)
    print(f"{args.record} minute {args.minute}: P(apnea) {result['probability'][0]:.2f}, "
          f"{'flagged apnea' if result['flagged'][0] else 'not flagged'}; {args.method} explained it in "
          f"{result['seconds']:.2f} s; figure: {path}")
    return 0


def cmd_runs(args) -> int:
    store = ArtifactStore(_runs_dir(args))
    print(format_table(store.list(args.kind), Ledger(store).notes()))
    return 0


def cmd_prune(args) -> int:
    if not (args.stale or args.unreferenced):
        raise ValueError("say what to prune: --stale, --unreferenced, or both")
    store = ArtifactStore(_runs_dir(args))
    going, kept = Ledger(store).prune_plan(stale=args.stale, unreferenced=args.unreferenced)
    width = max([len(artifact.id) for artifact, _ in going + kept] or [0])
    if not going:
        print(f"nothing to prune in {store.root}")
    elif not args.yes:
        print(f"would remove {len(going)} artifact(s) from {store.root} (nothing removed; rerun with --yes):")
    for artifact, reason in going:
        if args.yes:
            store.remove(artifact.id)
        print(f"  {'removed ' if args.yes else ''}{artifact.id:<{width}}  {reason}")
    if args.yes and going:
        print(f"{len(going)} artifact(s) removed from {store.root}")
    if kept:
        print("kept:")
        for artifact, reason in kept:
            print(f"  {artifact.id:<{width}}  {reason}")
    return 0


def _request_targets(args) -> tuple[str, list[str]]:
    given = [(kind, value) for kind, value in (("patient", args.patient), ("class", args.class_),
                                               ("samples", args.samples)) if value]
    if len(given) != 1:
        raise ValueError("say what to forget: exactly one of --patient, --class or --samples")
    kind, value = given[0]
    return kind, _unlearn.read_samples(value) if kind == "samples" else _records(value)


def format_certificate(result: dict) -> str:
    certificate, request = result["certificate"], result["request"]
    lines = [f"request {request['id']} ({request['who']}: {request['reason']}): forget {request['target_kind']} "
             f"{', '.join(request['targets'][:8])}{' ...' if len(request['targets']) > 8 else ''} "
             f"from {request['base_teacher']}",
             teacher.format_certificate(certificate)]
    verdict = ("VERIFIED: now in service" if certificate["verified"]
               else "NOT VERIFIED: the old teacher stays in service")
    lines.append(f"teacher {result['teacher']}: {verdict} (in service: {result['serving']}); "
                 f"{len(result['stale'])} derived artifact(s) marked stale"
                 + (" - remake them with: edgekit rebuild" if result["stale"] else ""))
    return "\n".join(lines)


def cmd_unlearn(args) -> int:
    kind, targets = _request_targets(args)
    store = _store_for(args, args.teacher)
    result = _unlearn.unlearn(store, args.teacher, kind, targets, args.reason, who=args.who,
                              references=args.references, data_dir=args.data_dir,
                              test_records=_records(args.test_records) if args.test_records else None,
                              resume=args.resume, progress=not args.quiet)
    if args.json:
        _print_json(result)
    else:
        print(format_certificate(result))
        print(f"certificate: {store.get(result['teacher']).path / teacher.CERTIFICATE_HTML}")
    return 0 if result["certificate"]["verified"] else 1


def cmd_guides(args) -> int:
    guides = _unlearn.prepare_guides(_store_for(args, args.teacher), args.teacher, folds=args.folds,
                                     data_dir=args.data_dir, progress=not args.quiet)
    seconds = sum(guide.manifest["metrics"]["seconds"] for guide in guides)
    print(f"{len(guides)} guides for teacher {guides[0].manifest['config']['teacher']} "
          f"({seconds:.0f} s to train): {' '.join(guide.id for guide in guides)}")
    return 0


def cmd_rebuild(args) -> int:
    store = ArtifactStore(_runs_dir(args))
    made = _pipeline.rebuild(store, args.data_dir, progress=not args.quiet)
    for stale, new in made:
        print(f"{stale} -> {new}")
    print(f"{len(made)} artifact(s) rebuilt from the teachers in service")
    return 0


def cmd_ledger(args) -> int:
    ledger = Ledger(ArtifactStore(_runs_dir(args)))
    requests = ledger.requests()
    if args.json:
        _print_json({"requests": requests, "stale": ledger.stale(include_rebuilt=True)})
        return 0
    for entry in requests:
        figures = entry["figures"] or {}
        print(f"{entry['id']:>3}  {entry['requested']}  {entry['status']:<8}  {entry['who']}: forget "
              f"{entry['target_kind']} {', '.join(map(str, entry['targets'][:5]))}  ({entry['reason']})  "
              f"{entry['base_teacher'] or '-'} -> {entry['produced'] or '-'}"
              + (f"  time {figures['time_ratio_to_retraining']:.1%} of retraining" if figures else "")
              + (f"  [{entry['error']}]" if entry["error"] else ""))
    if not requests:
        print("(no unlearning requests)")
    stale = ledger.stale()
    if stale:
        print(f"stale, not yet rebuilt: {', '.join(entry['artifact'] for entry in stale)}")
    return 0


def cmd_demo(args) -> int:
    figures = _demo.run_demo(args.runs or "runs/demo", progress=not args.quiet)
    print(teacher.format_apnea_figures({**figures, "artifact": figures["teacher"]}))
    made = figures["synth_metrics"]
    print(f"synthetic set {figures['synth']}: {made['samples']} RR windows from the teacher alone "
          f"(no real data read) in {made['seconds']:.1f} s, {made['rounds']} round(s), "
          f"harvest rate {made['harvest_rate']:.1%}")
    print(student.format_student_figures(figures["student_figures"], figures))
    print(synth.format_report(figures["audit"]))
    verification, replay = figures["bundle_metrics"]["verification"], figures["replay"]
    night_name = replay["record"]
    print(f"bundle {figures['bundle']} (int8, {figures['bundle_metrics']['pte_bytes']} bytes; decisions agree with "
          f"the eager student on {verification['decision_agreement']:.1%} of {verification['samples']} synthetic samples)")
    print(f"replay {replay['record']} through the .pte: estimated AHI {replay['estimated_ahi']:.1f} "
          f"({'apneic' if replay['apneic'] else 'not apneic'}; reference {replay['reference_ahi']:.1f}) in "
          f"{replay['runtime_seconds']:.2f} s; the night: {figures['replay_plot']}")
    explained = figures["explanation"]
    if explained:
        print(f"why: {night_name} minute {explained['minute']} (P(apnea) {explained['probability']:.2f}) explained by "
              f"NeuroMask in {explained['seconds']:.2f} s: {explained['figure']}")
    else:
        print(f"why: no minute of {night_name} was flagged, so there is nothing to explain")
    print(format_certificate(figures["unlearning"]))
    print(f"certificate: {figures['certificate_page']}")
    phone = figures["phone"]
    if "skipped" in phone:
        print(f"phone core: not run here ({phone['skipped']})")
    else:
        print(f"phone core (Kotlin, the same .pte in ExecuTorch's C++ runtime): {night_name} "
              + ("replayed exactly as on the server" if phone["agree"] else "DIFFERS from the server's replay")
              + f": {phone['minutes_flagged_alike']:.1%} of {phone['minutes']} minutes flagged alike, estimated AHI "
              f"{phone['estimated_ahi']:.1f} ({phone['severity']}), max probability difference "
              f"{phone['max_probability_difference']:.1e}"
              + (f"; fields that differ: {', '.join(phone['fields_that_differ'])}" if phone["fields_that_differ"] else ""))
    print(f"artifacts in {figures['runs']} (list them with: edgekit runs --runs {figures['runs']}; "
          f"the ledger with: edgekit ledger --runs {figures['runs']})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edgekit", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    teacher_parser = commands.add_parser("teacher", help="train and evaluate teachers")
    teacher_commands = teacher_parser.add_subparsers(dest="teacher_command", required=True)

    train = teacher_commands.add_parser("train", help="train a teacher; prints the artifact id")
    train.add_argument("--dataset", required=True,
                       help="apnea-ecg or an image dataset (an unknown name is refused, listing the known ones)")
    train.add_argument("--arch", help="registered model (default per dataset; an unknown name is refused, "
                                      "listing the registry)")
    train.add_argument("--epochs", type=int, help="default: the dataset's recipe")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    train.add_argument("--resume", action="store_true", help="continue an interrupted run of the same config")
    train.add_argument("--download", action="store_true",
                       help="fetch the dataset first (Apnea-ECG from PhysioNet, images through torchvision)")
    train.add_argument("--train-records", help="comma-separated nights (default: a/b/c minus validation)")
    train.add_argument("--val-records", help="comma-separated validation nights (with --train-records)")
    train.add_argument("--validation-seed", type=int, default=0, help="which learning nights are carved out")
    train.add_argument("--validation-size", type=int,
                       help="images: training images held out for validation figures (default: 10%%, at most 5000)")
    train.add_argument("--no-validation", action="store_true",
                       help="train on everything (all 35 learning nights; all training images)")
    _add_common(train)
    train.set_defaults(func=cmd_teacher_train)

    evaluate = teacher_commands.add_parser(
        "eval", help="score a teacher: apnea on labelled nights (x01-x35), images on the test split")
    evaluate.add_argument("artifact", help="artifact id, unique id prefix, or directory")
    evaluate.add_argument("--records", help="comma-separated nights (default: x01-x35)")
    evaluate.add_argument("--json", action="store_true", help="print every figure as JSON")
    evaluate.add_argument("--plot", help="write a PNG of estimated vs reference AHI per night")
    evaluate.add_argument("--beats", default="annotations",
                          help="apnea: annotations (the .qrs, default) or detector (the kit's beat detector on the "
                               "ECG, as a phone with an ECG patch; needs the .dat signals)")
    _add_common(evaluate)
    evaluate.set_defaults(func=cmd_teacher_eval)

    synth_parser = commands.add_parser("synth", help="synthetic datasets from a teacher")
    synth_commands = synth_parser.add_subparsers(dest="synth_command", required=True)
    generate = synth_commands.add_parser("generate", help="Gen{h1}: AM through generators; prints the artifact id")
    generate.add_argument("teacher", help="teacher artifact id, unique id prefix, or directory")
    generate.add_argument("--size", type=int, help="samples to synthesise (default: synth.SynthConfig's)")
    generate.add_argument("--labels", choices=("soft", "hard"), default="soft", help="what students learn from")
    generate.add_argument("--generators", type=int,
                          help="generators optimised side by side (default: per input kind, synth.MODALITY_DEFAULTS)")
    generate.add_argument("--premove-steps", type=int,
                          help="attraction-repulsion lasts up to this many steps a leg (default: per input kind; "
                               "0 synthesises images about twice as fast, for slightly weaker students: BENCHMARKS.md)")
    generate.add_argument("--privacy-weight", type=float, default=0.0,
                          help="weight of Loss_2 (push features away from real same-class examples; "
                               "reads the teacher's training data)")
    generate.add_argument("--seed", type=int, default=0)
    generate.add_argument("--resume", action="store_true", help="continue an interrupted run of the same config")
    _add_common(generate)
    generate.set_defaults(func=cmd_synth_generate)
    audit = synth_commands.add_parser(
        "audit", help="how traceable a synthetic set is: nearest neighbours, fooling/hidden-message rates, "
                      "team and patient identifiers (ECG)")
    audit.add_argument("synth", help="synth artifact id, unique id prefix, or directory")
    audit.add_argument("--samples", type=int,
                       help="synthetic and unseen real samples scored (default: the audit config's)")
    audit.add_argument("--epochs", type=int, help="epochs of the classifiers the audit trains (default: the teacher's)")
    audit.add_argument("--team-size", type=int,
                       help="ECG: synthetic samples per team (default: the audit config's)")
    audit.add_argument("--seed", type=int, default=0)
    audit.add_argument("--json", action="store_true", help="print the whole report as JSON")
    _add_common(audit)
    audit.set_defaults(func=cmd_synth_audit)

    student_parser = commands.add_parser("student", help="students trained on synthetic data alone")
    student_commands = student_parser.add_subparsers(dest="student_command", required=True)
    distill = student_commands.add_parser("distill", help="train a student on a synthetic set; prints its id")
    distill.add_argument("synth", help="synth artifact id, unique id prefix, or directory")
    distill.add_argument("--arch", required=True,
                         help="registered model (an unknown name is refused, listing the registry)")
    distill.add_argument("--labels", choices=("soft", "hard"), help="default: the synthetic set's")
    distill.add_argument("--temperature", type=float,
                         help="softmax temperature of soft labels (default: the dataset's student recipe)")
    distill.add_argument("--epochs", type=int, help="default: the dataset's student recipe")
    distill.add_argument("--size", type=int, help="train on the first N synthetic samples only")
    distill.add_argument("--seed", type=int, default=0)
    distill.add_argument("--device", default="auto", help="auto, cpu, cuda, ...")
    distill.add_argument("--resume", action="store_true", help="continue an interrupted run of the same config")
    _add_common(distill)
    distill.set_defaults(func=cmd_student_distill)

    export = commands.add_parser("export", help="a student as an ExecuTorch bundle for phones; prints its id")
    export.add_argument("student", help="student artifact id, unique id prefix, or directory")
    export.add_argument("--quantize", default="int8",
                        help="int8: PT2E, XNNPACK quantizer, calibrated on the synthetic set (default); none: fp32")
    export.add_argument("--sign", metavar="KEY", help="sign the bundle with this private key (edgekit keys new)")
    _add_common(export)
    export.set_defaults(func=cmd_export)

    replay = commands.add_parser("replay", help="run one night through a bundle's .pte as the phone does")
    replay.add_argument("bundle", help="bundle artifact id, unique id prefix, or bundle directory")
    night = replay.add_mutually_exclusive_group(required=True)
    night.add_argument("--record", help="night of the data directory, its annotated beats, e.g. x01")
    night.add_argument("--ecg", help="an ECG: a WFDB record (beats detected) or a CSV of samples in mV with --fs")
    night.add_argument("--rr", help="a strap's beats: RR intervals in ms or beat times in s, one per line")
    replay.add_argument("--fs", type=float, help="sampling rate of an --ecg CSV, Hz")
    replay.add_argument("--json", action="store_true", help="print the per-minute result as JSON")
    replay.add_argument("--csv", help="write the per-minute flags to this CSV file")
    replay.add_argument("--plot", help="write a PNG of the night")
    replay.add_argument("--public-key", metavar="PUB", help="refuse the bundle unless this key signed it, as the app does")
    _add_common(replay)

    keys = commands.add_parser("keys", help="the server's bundle-signing key")
    keys_commands = keys.add_subparsers(dest="keys_command", required=True)
    keys_new = keys_commands.add_parser("new", help="make a P-256 key pair: sign bundles with the private key, "
                                                     "pin the public key in the app")
    keys_new.add_argument("directory", help="folder for bundle-signing.key and bundle-signing.pub")
    keys_new.set_defaults(func=cmd_keys_new)
    replay.set_defaults(func=cmd_replay)

    beats = commands.add_parser("beats", help="the kit's beat detector (ecg-to-beats/1) alone on an ECG, with "
                                               "its signal-quality marks")
    beats.add_argument("ecg", help="a WFDB record (path without extension, or its .hea) or a CSV of samples in mV")
    beats.add_argument("--fs", type=float, help="sampling rate of a CSV, Hz (a WFDB header gives its own)")
    beats.add_argument("--csv", help="write one row per beat: sample, time_s")
    beats.add_argument("--quiet", action="store_true", help="no progress bars")
    beats.set_defaults(func=cmd_beats)

    explain = commands.add_parser("explain", help="why a model flagged a minute (or every flagged minute of a night)")
    explain.add_argument("artifact", help="student or teacher artifact id, unique id prefix, or directory")
    explain.add_argument("--record", required=True, help="night, e.g. x05")
    explain.add_argument("--minute", type=int, help="minute of the night to explain (from 0)")
    explain.add_argument("--night", action="store_true", help="every flagged minute of the night, into one HTML report")
    explain.add_argument("--method", default="neuromask",
                         help="explanation method (default: neuromask; an unknown one is refused, listing the others)")
    explain.add_argument("--target", default="apnea", help="the class whose evidence is shown (default: apnea)")
    explain.add_argument("--out", help="figure (.png) or, with --night, report (.html) path")
    # --out names the figure here (as the command line has it), so the runs directory is --runs.
    explain.add_argument("--runs", help="runs directory holding artifacts (default: $EDGEKIT_RUNS, else ./runs)")
    explain.add_argument("--data-dir", help="data directory (default: $EDGEKIT_DATA, else ./data)")
    explain.add_argument("--quiet", action="store_true", help="no progress bars")
    explain.set_defaults(func=cmd_explain)

    unlearn = commands.add_parser(
        "unlearn", help="remove a patient, class or samples from a teacher, with a certificate against retraining")
    unlearn.add_argument("teacher", help="teacher artifact id, unique id prefix, or directory")
    unlearn.add_argument("--patient", help="comma-separated nights, e.g. a03 (every minute, training and validation)")
    unlearn.add_argument("--class", dest="class_", help="comma-separated class ids, e.g. 3")
    unlearn.add_argument("--samples", help="file of samples, one per line: a03:120 (a minute) or an image index")
    unlearn.add_argument("--reason", required=True, help="why (kept in the ledger)")
    unlearn.add_argument("--who", help="who asks (default: this user)")
    unlearn.add_argument("--references", type=int, default=1,
                         help="retrained references; with 2 or more, the per-example forgetting score too")
    unlearn.add_argument("--test-records", help="Apnea-ECG: comma-separated unseen nights the certificate scores "
                                                "(default: the teacher's test nights, else x01-x35)")
    unlearn.add_argument("--json", action="store_true", help="print the request, the new teacher and its certificate")
    unlearn.add_argument("--resume", action="store_true",
                         help="rerun an interrupted request: keep the retrained references it trained")
    _add_common(unlearn)
    unlearn.set_defaults(func=cmd_unlearn)

    guides = commands.add_parser(
        "guides", help="train all of an Apnea-ECG teacher's unlearning guides (its recipe without each fold of "
                       "nights) ahead of patient requests, which otherwise make the ones they need; "
                       "those already made are listed, not made again")
    guides.add_argument("teacher", help="teacher artifact id, unique id prefix, or directory")
    guides.add_argument("--folds", type=int,
                        help="folds in each of the splits of the nights (teacher.GUIDE_PARTITIONS), one guide each "
                             "(default: teacher.GUIDE_FOLDS); a teacher keeps one set")
    _add_common(guides)
    guides.set_defaults(func=cmd_guides)

    rebuild = commands.add_parser("rebuild", help="remake stale synthetic sets, students, bundles and unlearning "
                                                  "guides from the teachers in service")
    _add_common(rebuild)
    rebuild.set_defaults(func=cmd_rebuild)

    ledger = commands.add_parser("ledger", help="list unlearning requests and stale artifacts")
    ledger.add_argument("--json", action="store_true")
    _add_common(ledger)
    ledger.set_defaults(func=cmd_ledger)

    runs = commands.add_parser("runs", help="list the artifacts of a runs directory, with the ledger's marks "
                                            "(stale, rebuilt as, contains forgotten data)")
    runs.add_argument("--kind", help="only this kind (teacher, synth, student, ...)")
    _add_common(runs)
    runs.set_defaults(func=cmd_runs)

    prune = commands.add_parser(
        "prune", help="remove stale or unreferenced artifacts; lists them and removes nothing without --yes")
    prune.add_argument("--stale", action="store_true",
                       help="artifacts an unlearning request made stale, once rebuilt (edgekit rebuild)")
    prune.add_argument("--unreferenced", action="store_true",
                       help="artifacts neither made from a teacher in service nor one it was made from "
                            "(e.g. a teacher whose unlearning was not verified)")
    prune.add_argument("--yes", action="store_true", help="remove them (without it: only list what would go)")
    _add_common(prune)
    prune.set_defaults(func=cmd_prune)

    demo = commands.add_parser("demo", help="the main job on the embedded nights")
    _add_common(demo, runs_default="runs/demo, emptied first")
    demo.set_defaults(func=cmd_demo)
    return parser


# The rooms' errors main() reports as a user's: looked up only in rooms already imported (an error
# of a room not imported cannot have been raised), so catching them imports nothing.
_ROOM_ERRORS = {"teacher": ("ApneaDataError", "ImageDataError"), "edge_export": ("BundleError",)}


def _user_errors() -> tuple[type[Exception], ...]:
    """What `main` reports as `edgekit: error: ...` (exit 2) rather than a traceback. No KeyError:
    a missing artifact is a StoreError, so a KeyError is a bug and shows where it happened."""
    rooms = [sys.modules[name] for name in _ROOM_ERRORS if name in sys.modules]
    found = [getattr(room, error, None) for room in rooms for error in _ROOM_ERRORS[room.__name__]]
    return (ValueError, FileNotFoundError, FileExistsError, StoreError, LedgerError, *(error for error in found if error is not None))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except Exception as error:
        if not isinstance(error, _user_errors()):
            raise
        print(f"edgekit: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
