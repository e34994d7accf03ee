"""`edgekit unlearn`, `edgekit ledger` and `edgekit rebuild` on the embedded Apnea-ECG nights."""

from __future__ import annotations

import json
import threading
import time

import pytest

from edgekit import _pipeline
from edgekit._ledger import Ledger
from edgekit._store import ArtifactStore
from edgekit._unlearn import GUIDE_KIND, GUIDE_SET_KIND, prepare_guides
from teacher import CERTIFICATE_HTML, CERTIFICATE_JSON, CERTIFICATE_PNG
from edgekit.cli import format_certificate
from teacher import _training as teacher_training
from cli_runner import run_cli


@pytest.fixture(scope="module")
def chain(tmp_path_factory, embedded_apnea_dir):
    """A small apnea teacher, a synthetic set and a student made from it, then one patient request."""
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("EDGEKIT_RUNS", raising=False)
        patch.delenv("EDGEKIT_DATA", raising=False)
        runs = tmp_path_factory.mktemp("runs")
        common = ("--data-dir", embedded_apnea_dir, "--runs", runs, "--quiet")
        trained = run_cli("teacher", "train", "--dataset", "apnea-ecg", "--train-records", "a03,a05,c03",
                          "--val-records", "b02", "--epochs", "3", "--device", "cpu", *common)
        assert trained[0] == 0, trained[2]
        teacher_id = trained[1].strip()
        # What a store made before guides were artifacts of their own holds: one set of them.
        store = ArtifactStore(runs)
        legacy_guides = store.commit(
            store.staging_dir(GUIDE_SET_KIND, {"teacher": teacher_id}), kind=GUIDE_SET_KIND,
            config={"teacher": teacher_id, "folds_asked": 5, "folds": [["a03"], ["a05"], ["b02"], ["c03"]]},
            parents=[teacher_id], data=[], metrics={}, code_version="test").id
        synthesised = run_cli("synth", "generate", teacher_id, "--size", "64", "--generators", "8", *common)
        assert synthesised[0] == 0, synthesised[2]
        # Not scored on x01-x35 (the embedded data holds x01 only), as the demo makes its student.
        pupil = _pipeline.distill(ArtifactStore(runs), synthesised[1].strip(), "apnea_cnn_small", None, epochs=1,
                                  device="cpu", progress=False, score_on_test=False)
        unlearned = run_cli("unlearn", teacher_id, "--patient", "b02", "--reason", "consent withdrawn", "--who",
                            "steward", "--test-records", "x01", "--json", *common)
        yield {"runs": runs, "common": common, "teacher": teacher_id, "synth": synthesised[1].strip(),
               "student": pupil.id, "unlearned": unlearned, "legacy_guides": legacy_guides}


def test_a_patient_request_seals_a_teacher_without_that_night_and_its_certificate(chain):
    code, out, err = chain["unlearned"]
    result = json.loads(out)
    certificate = result["certificate"]
    assert code == (0 if certificate["verified"] else 1), err
    store = ArtifactStore(chain["runs"])
    new = store.get(result["teacher"])
    assert new.manifest["parents"] == [chain["teacher"]]
    # b02 was a validation night: a patient request removes it from validation too.
    assert new.manifest["config"]["train_records"] == ["a03", "a05", "c03"]
    assert new.manifest["config"]["val_records"] == []
    assert new.manifest["unlearning"]["targets"] == ["b02"]
    assert "b02" in {entry["record"] for entry in store.get(chain["teacher"]).manifest["data"]}
    assert "b02" not in {entry["record"] for entry in new.manifest["data"]}
    for name in (CERTIFICATE_JSON, CERTIFICATE_HTML, CERTIFICATE_PNG):
        assert (new.path / name).stat().st_size > 0
    assert set(certificate["models"]) == {"original", "unlearned", "retrained"}
    assert certificate["examples"]["forget"] > 400  # every labelled minute of b02
    assert 0 < certificate["time_ratio_to_retraining"] < 1
    # Unlearned towards a guide made from the base teacher for this request: of the split's folds
    # (one night each here), only the one that holds b02.
    (guide,) = (store.get(made) for made in certificate["guides"])
    assert (guide.kind, guide.manifest["parents"]) == (GUIDE_KIND, [chain["teacher"]])
    assert guide.manifest["config"]["fold"] == ["b02"]
    assert guide.manifest["config"]["split"] == [["a03"], ["a05"], ["b02"], ["c03"]]
    assert certificate["seconds"]["guides"] == guide.manifest["metrics"]["seconds"] > 0
    entry = result["request"]
    assert (entry["who"], entry["reason"], entry["target_kind"], entry["produced"]) == (
        "steward", "consent withdrawn", "patient", new.id)
    assert entry["status"] == ("verified" if certificate["verified"] else "failed")
    assert result["serving"] == (new.id if certificate["verified"] else chain["teacher"])


def test_the_ledger_lists_the_request(chain):
    code, out, _ = run_cli("ledger", "--runs", chain["runs"])
    assert code == 0
    assert "steward: forget patient b02  (consent withdrawn)" in out


@pytest.mark.parametrize("argv, message", [
    (("--patient", "x99"), "unknown patient(s) ['x99']"),
    (("--class", "7"), "unknown class(es) ['7']"),
    (("--class", "1"), "would leave this teacher fewer than two of its 2 classes"),
    (("--patient", "a03", "--class", "1"), "exactly one of --patient, --class or --samples"),
])
def test_unknown_or_ambiguous_targets_are_refused_before_anything_is_recorded(chain, argv, message):
    before = len(Ledger(ArtifactStore(chain["runs"])).requests())
    code, _, err = run_cli("unlearn", chain["teacher"], *argv, "--reason", "test", *chain["common"])
    assert code == 2
    assert message in err
    assert len(Ledger(ArtifactStore(chain["runs"])).requests()) == before


def test_unknown_samples_are_refused(chain, tmp_path):
    samples = tmp_path / "samples.txt"
    samples.write_text("a03:10\na03:100000\n")
    code, _, err = run_cli("unlearn", chain["teacher"], "--samples", samples, "--reason", "test", *chain["common"])
    assert code == 2
    assert "1 unknown sample(s), e.g. ['a03:100000']" in err


def test_rebuild_remakes_the_stale_synthetic_set_student_and_guides_from_the_teacher_in_service(chain):
    store = ArtifactStore(chain["runs"])
    ledger = Ledger(store)
    result = json.loads(chain["unlearned"][1])
    if not result["certificate"]["verified"]:
        # The tiny teacher's certificate may not hold; the steward's sign-off is what puts the new
        # teacher in service, so record it as the ledger would for a verified request.
        request = ledger.open(chain["teacher"], "patient", ["c03"], "steward", "rebuild test")
        ledger.start(request)
        ledger.finish(request, result["teacher"], {}, verified=True)
    (old_guide,) = json.loads(chain["unlearned"][1])["certificate"]["guides"]
    # Parents before children: the teacher's synthetic set and guides, then the student.
    assert [entry["artifact"] for entry in ledger.stale()] == [
        chain["legacy_guides"], chain["synth"], old_guide, chain["student"]]
    code, out, err = run_cli("rebuild", *chain["common"])
    assert code == 0, err
    serving = ledger.serving_teacher(chain["teacher"])
    remade = dict(line.split(" -> ") for line in out.splitlines()[:4])
    # A whole set of guides is made again as every guide of the teacher in service: one per night
    # that the lineage still has.
    forgotten = set(ledger.forgotten(chain["teacher"])["patient"])
    set_again = [store.get(made) for made in remade[chain["legacy_guides"]].split(",")]
    assert {(guide.kind, *guide.manifest["parents"]) for guide in set_again} == {(GUIDE_KIND, serving)}
    assert sorted(guide.manifest["config"]["fold"] for guide in set_again) == [
        [night] for night in sorted({"a03", "a05", "b02", "c03"} - forgotten)]
    new_synth, new_student = (store.get(remade[old]) for old in (chain["synth"], chain["student"]))
    assert new_synth.manifest["parents"] == [serving]
    assert new_synth.manifest["config"] == store.get(chain["synth"]).manifest["config"]
    assert new_student.manifest["parents"] == [new_synth.id]
    # The old guide is made again for the teacher in service, for the nights of its fold that this
    # teacher still has; a forgotten night has none.
    old_fold = store.get(old_guide).manifest["config"]["fold"]
    if set(old_fold) <= forgotten:
        assert remade[old_guide] == "-"
    else:
        new_guides = [store.get(made) for made in remade[old_guide].split(",")]
        assert {(guide.kind, *guide.manifest["parents"]) for guide in new_guides} == {(GUIDE_KIND, serving)}
        new_folds = {night for guide in new_guides for night in guide.manifest["config"]["fold"]}
        assert set(old_fold) - forgotten <= new_folds and not forgotten & new_folds
    assert ledger.stale() == []


def test_guides_are_made_once_per_teacher_and_only_for_teachers(chain):
    # The request made b02's guide; two preparations at once (`edgekit guides` beside a request)
    # make the other three, each once, take turns on each and keep b02's.
    (made,) = json.loads(chain["unlearned"][1])["certificate"]["guides"]
    store = ArtifactStore(chain["runs"])
    both_ready, prepared, failed = threading.Barrier(2), [], []

    def prepare():
        both_ready.wait()
        try:
            prepared.append([guide.id for guide in prepare_guides(store, chain["teacher"],
                                                                  data_dir=chain["common"][1], progress=False)])
        except Exception as error:  # noqa: BLE001 - reported by the assertion below
            failed.append(error)

    threads = [threading.Thread(target=prepare) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failed and len(prepared) == 2 and prepared[0] == prepared[1]
    assert len(set(prepared[0])) == 4 and made in prepared[0]
    assert len([guide for guide in store.list(GUIDE_KIND) if guide.manifest["parents"] == [chain["teacher"]]]) == 4
    code, out, err = run_cli("guides", chain["teacher"], *chain["common"])
    assert code == 0, err
    assert out.startswith(f"4 guides for teacher {chain['teacher']} (")
    assert out.split("): ")[1].split() == prepared[0]
    code, _, err = run_cli("guides", chain["teacher"], "--folds", "3", *chain["common"])
    assert code == 2
    assert "already has guides of a 5-fold split (4 made)" in err
    code, _, err = run_cli("guides", chain["synth"], *chain["common"])
    assert code == 2
    assert "not a teacher" in err


def test_an_interrupted_request_resumes_with_the_reference_epochs_it_trained(chain, monkeypatch):
    """The reference's second epoch is interrupted; `--resume` trains only the epochs left."""
    store = ArtifactStore(chain["runs"])
    serving = Ledger(store).serving_teacher(chain["teacher"])
    # Made before the interruption, so that the reference is the only training below.
    prepare_guides(store, serving, data_dir=chain["common"][1], progress=False)
    trained = []  # (epoch, seconds) of every epoch trained, in order
    real_epoch = teacher_training.train_one_epoch

    def timed_epoch(*args, **kwargs):
        started = time.perf_counter()
        loss = real_epoch(*args, **kwargs)
        trained.append((kwargs["description"], time.perf_counter() - started))
        return loss

    def interrupted_in_epoch_2(*args, **kwargs):
        if trained:
            raise KeyboardInterrupt
        return timed_epoch(*args, **kwargs)

    request = ("unlearn", chain["teacher"], "--patient", "a05", "--reason", "consent withdrawn", "--json",
               "--test-records", "x01", *chain["common"])
    monkeypatch.setattr(teacher_training, "train_one_epoch", interrupted_in_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        run_cli(*request)
    interrupted = Ledger(store).requests()[-1]
    assert (interrupted["targets"], interrupted["status"]) == (["a05"], "failed")
    assert "--resume" in interrupted["error"]
    assert [epoch for epoch, _ in trained] == ["epoch 1"]

    monkeypatch.setattr(teacher_training, "train_one_epoch", timed_epoch)
    code, out, err = run_cli(*request, "--resume")
    assert code in (0, 1), err
    # Epoch 1 came from the interrupted attempt's checkpoint: only epochs 2 and 3 ran again.
    assert [epoch for epoch, _ in trained] == ["epoch 1", "epoch 2", "epoch 3"]
    result = json.loads(out)
    assert result["request"]["id"] == interrupted["id"] + 1
    assert "a05" not in store.get(result["teacher"]).manifest["config"]["train_records"]
    # The retraining time the certificate compares with includes the interrupted attempt's epoch.
    assert result["certificate"]["seconds"]["retrain"] >= sum(seconds for _, seconds in trained)


def test_with_two_references_the_certificate_measures_to_their_mean(chain):
    store = ArtifactStore(chain["runs"])
    code, out, err = run_cli("unlearn", chain["teacher"], "--patient", "a03", "--reason", "consent withdrawn",
                             "--references", "2", "--json", "--test-records", "x01", *chain["common"])
    assert code in (0, 1), err
    result = json.loads(out)
    certificate = result["certificate"]
    assert certificate["references"] == 2
    assert certificate["forgetting"]["references"] == 2
    assert set(certificate["reference_spread"]) == {"forget_accuracy", "test_accuracy", "threshold_attack_auc",
                                                     "shadow_attack_auc"}
    # A reference's own distance is to the other one, which another seed of training never matches.
    assert certificate["models"]["retrained"]["test_distance_to_retrained"] > 0
    assert "retrained (the mean of 2 retrained models" in format_certificate(result)
    page = (store.get(result["teacher"]).path / CERTIFICATE_HTML).read_text()
    assert "the mean of 2 retrained models" in page
