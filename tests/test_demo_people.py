"""Who the demo detector learns from: every bundled clip has one person and one role, the
held-out people are never trained or calibrated on, and each clip's source is documented."""

from __future__ import annotations

from collections import Counter

from training.demo_detector import HELD_OUT_KINDS, TRAIN_KINDS, versions_of
from training.demo_people import CALIBRATE, HELD_OUT, MEDIA, PEOPLE, TRAIN, people


def test_each_bundled_clip_belongs_to_one_person_and_is_documented() -> None:
    files = [r.file for person in PEOPLE for r in person.recordings]
    assert len(files) == len(set(files))
    readme = (MEDIA / "README.md").read_text()
    for name in files:
        assert (MEDIA / name).is_file()
        assert f"| {name} |" in readme  # source, sha256 and license beside it


def test_there_are_enough_people_in_every_role() -> None:
    counts = Counter(person.role for person in PEOPLE)
    assert set(counts) == {TRAIN, CALIBRATE, HELD_OUT}
    assert counts[HELD_OUT] >= 2 and counts[CALIBRATE] >= 1 and counts[TRAIN] >= 4
    assert len({person.key for person in PEOPLE}) == len(PEOPLE)


def test_manipulations_held_out_are_made_only_for_the_held_out_people() -> None:
    for person in PEOPLE:
        kinds = {v.kind for v in versions_of(person) if v.label == 1}
        expected = set(TRAIN_KINDS) | (set(HELD_OUT_KINDS) if person.role == HELD_OUT else set())
        assert kinds == expected
    assert not set(TRAIN_KINDS) & set(HELD_OUT_KINDS)


def test_only_the_calibration_person_gets_perturbed_genuine_versions() -> None:
    for person in PEOPLE:
        genuine = {v.kind for v in versions_of(person) if v.label == 0}
        assert (len(genuine) > 1) == (person.role == CALIBRATE)
    assert people(CALIBRATE)
