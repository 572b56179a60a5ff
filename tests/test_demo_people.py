"""The demo detector's people: every bundled clip belongs to one of them, and the shipped
detector never sees the person its demo clips show."""

from __future__ import annotations

from training.cv_recipes import SHIPPED
from training.demo_build import DEMO_KIND, DEMO_PERSON
from training.demo_detector import DEMO_SOURCE
from training.demo_people import MEDIA, PEOPLE


def test_each_bundled_clip_belongs_to_one_person_and_is_documented() -> None:
    files = [r.file for person in PEOPLE for r in person.recordings] + [DEMO_SOURCE.file]
    assert len(files) == len(set(files))
    readme = (MEDIA / "README.md").read_text()
    for name in files:
        assert (MEDIA / name).is_file()
        assert f"| {name} |" in readme  # source, sha256 and license beside it
    assert len({person.key for person in PEOPLE}) == len(PEOPLE) == 7


def test_the_shipped_detector_never_trains_or_calibrates_on_the_demo_person() -> None:
    fold = SHIPPED.fold(DEMO_PERSON, [p.key for p in PEOPLE])
    assert fold.held_out == DEMO_PERSON
    assert DEMO_PERSON not in fold.train + fold.calibrate
    assert len(fold.train) >= 4 and fold.calibrate
    # the manipulated demo clip's type is never trained on either
    assert DEMO_KIND not in SHIPPED.train_kinds
