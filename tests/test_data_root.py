"""Where a chapter reads its data from: the data-root order, and a profile's real or synthetic root."""

from __future__ import annotations

import pytest

from oncorepro.data import load_dataset
from oncorepro import paths
from oncorepro.paths import DATA_ENV, resolve_data_root
from oncorepro.profiles import Profile, get_profile
from oncorepro.study import Study


def test_data_root_order_is_argument_then_environment_then_shared(tmp_path, monkeypatch):
    given, from_env = tmp_path / "given", tmp_path / "env"
    monkeypatch.setenv(DATA_ENV, str(from_env))
    assert resolve_data_root(given) == given.resolve()
    assert resolve_data_root() == from_env.resolve()
    monkeypatch.delenv(DATA_ENV)
    monkeypatch.setattr(paths, "REPO_ROOT", tmp_path / "repo")
    assert resolve_data_root() == tmp_path / "repo" / "data"  # no ../shared/data: the repo's own data/
    (tmp_path / "shared" / "data").mkdir(parents=True)
    assert resolve_data_root() == tmp_path / "shared" / "data"


def test_full_profile_reads_the_resolved_root_and_smoke_the_synthetic_stand_ins(tmp_path, monkeypatch):
    monkeypatch.setenv("ONCOREPRO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv(DATA_ENV, str(tmp_path / "real"))
    assert get_profile("full").data_root(["busi"]) == (tmp_path / "real").resolve()
    assert get_profile("full").data_root(["busi"], tmp_path / "mine") == (tmp_path / "mine").resolve()

    smoke = Study(profile="smoke")
    root = smoke.root("busi", "breast_lesions_usg")
    assert root.is_relative_to(tmp_path / "cache" / "synthetic")
    assert sorted(path.name for path in root.iterdir()) == ["breast_lesions_usg", "busi"]
    per_class = get_profile("smoke").synthetic_per_class
    assert len(load_dataset("busi", data_root=root).records) == 3 * per_class  # benign, malignant, normal
    assert smoke.root("breast_lesions_usg", "busi") == root  # the same stand-ins whatever the order
    with pytest.raises(ValueError, match="no synthetic generator for .no_such_dataset"):
        smoke.root("no_such_dataset")


def test_a_profile_whose_data_label_disagrees_with_its_data_source_is_refused():
    with pytest.raises(ValueError, match="profile 'odd'.*means 'synthetic' data"):
        Profile(name="odd", description="", spec_overrides={"data": "real"}, synthetic_per_class=4)
    with pytest.raises(ValueError, match="means 'real' data"):
        Profile(name="odd", description="", spec_overrides={})
