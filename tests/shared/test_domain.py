"""Loading domain adapters: the built-in traffic domain, a user's copy, and broken manifests refused."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from shared.domain import ROLES, builtin_domains, load_domain
from shared.errors import ConfigError

TRAFFIC = builtin_domains()["traffic"]


def _edit(old: str, new: str) -> Callable[[Path], None]:
    def apply(adapter: Path) -> None:
        manifest = adapter / "domain.toml"
        text = manifest.read_text()
        assert old in text
        manifest.write_text(text.replace(old, new, 1))

    return apply


def _delete(relative: str) -> Callable[[Path], None]:
    return lambda adapter: (adapter / relative).unlink()


@pytest.fixture
def adapter(tmp_path: Path) -> Path:
    """A user's copy of the traffic adapter, free to break."""
    return Path(shutil.copytree(TRAFFIC, tmp_path / "my-adapter"))


def test_builtin_domains_lists_traffic() -> None:
    """The traffic adapter ships inside the `domains` package and is found there."""
    assert (TRAFFIC / "domain.toml").is_file()
    assert TRAFFIC.parent.name == "domains"


def test_traffic_domain_loads() -> None:
    """The built-in manifest, knowledge and every role's prompt load, with the metric to minimize."""
    domain = load_domain("traffic")
    assert domain.name == "traffic"
    assert domain.root == TRAFFIC
    assert (domain.manifest.metric.name, domain.manifest.metric.direction) == ("mae", "minimize")
    assert [baseline.name for baseline in domain.manifest.baselines] == [
        "last-value",
        "seasonal-naive",
        "historical-average",
    ]
    assert set(domain.prompts) == set(ROLES) and all(domain.prompts.values())
    assert "seasonality" in domain.knowledge
    params = {param.name: param for param in domain.manifest.search_space}
    assert params["model"].choices == ("ridge_ar", "gbdt", "mlp")
    assert params["ridge_alpha"].when == {"model": ("ridge_ar",)} and params["ridge_alpha"].log


def test_argv_runs_the_harness_from_the_adapter_and_the_candidate_in_place() -> None:
    """The harness is addressed by absolute path; the candidate relative to the workspace it runs in."""
    domain = load_domain("traffic")
    assert domain.harness_argv("grade", "--workspace", "w") == [
        sys.executable,
        str(TRAFFIC / "harness.py"),
        "grade",
        "--workspace",
        "w",
    ]
    assert domain.candidate_argv("fit", "--config", "c.json") == [
        sys.executable,
        "candidate.py",
        "fit",
        "--config",
        "c.json",
    ]
    assert domain.candidate_files() == ("candidate.py", "families.py")


def test_a_user_copy_loads_by_path(adapter: Path) -> None:
    """A folder path loads the adapter in it, rooted there, with its required files listed for copying."""
    (adapter / "helpers.py").write_text("")
    _edit('required_files = ["families.py"]', 'required_files = ["families.py", "helpers.py"]')(adapter)
    domain = load_domain(str(adapter))
    assert domain.root == adapter
    assert domain.candidate_files() == ("candidate.py", "families.py", "helpers.py")


BROKEN = {
    "bad direction": (
        _edit('direction = "minimize"', 'direction = "downhill"'),
        "domain.toml: metric.direction: must be 'minimize' or 'maximize'",
    ),
    "low not below high": (
        _edit("low = 4\nhigh = 48", "low = 48\nhigh = 4"),
        "domain.toml: search_space[1] (lags): low (48) must be below high (4)",
    ),
    "when names an unknown param": (
        _edit('when = { model = ["ridge_ar"] }', 'when = { modle = ["ridge_ar"] }'),
        "domain.toml: search_space[3] (ridge_alpha).when: 'modle' must name a categorical param",
    ),
    "when names a value not among the choices": (
        _edit('when = { model = ["ridge_ar"] }', 'when = { model = ["ridge"] }'),
        "domain.toml: search_space[3] (ridge_alpha).when.model: ['ridge'] not among its choices",
    ),
    "choices on a float": (
        _edit("log = true\nwhen", "choices = [1, 2]\nwhen"),
        "domain.toml: search_space[3] (ridge_alpha): choices are only for categorical params",
    ),
    "unknown key": (
        _edit('name = "traffic"', 'name = "traffic"\ncolour = "blue"'),
        "domain.toml: colour: unknown field",
    ),
    "missing required file": (
        _edit('required_files = ["families.py"]', 'required_files = ["helpers.py"]'),
        "domain.toml: required_files: helpers.py is not a file",
    ),
    "required file outside the folder": (
        _edit('required_files = ["families.py"]', 'required_files = ["../secrets.py"]'),
        "domain.toml: required_files: '../secrets.py' must be a relative path inside the adapter folder",
    ),
    "missing harness": (_delete("harness.py"), "domain.toml: entry.harness: harness.py is not a file"),
    "missing prompt": (_delete("prompts/worker.md"), "prompts/worker.md: missing"),
    "missing knowledge": (_delete("knowledge.md"), "knowledge.md: missing"),
    "invalid TOML": (_edit('name = "traffic"', 'name = "traffic'), "domain.toml: not valid TOML"),
}


@pytest.mark.parametrize("case", BROKEN, ids=list(BROKEN))
def test_broken_adapters_are_refused_naming_file_and_field(adapter: Path, case: str) -> None:
    """Each broken adapter is refused with one message that names the file and the field at fault."""
    breaks, expected = BROKEN[case]
    breaks(adapter)
    with pytest.raises(ConfigError) as refused:
        load_domain(str(adapter))
    assert str(adapter) in str(refused.value)
    assert expected in str(refused.value)


def test_an_unknown_domain_is_refused_with_the_builtin_names(tmp_path: Path) -> None:
    """A name that is neither built in nor an adapter folder says what exists."""
    with pytest.raises(ConfigError, match=r"neither a built-in domain \(.*traffic.*\)"):
        load_domain(str(tmp_path / "nowhere"))


def test_a_manifest_may_say_its_results_do_not_depend_on_the_seed(adapter: Path) -> None:
    """`deterministic` defaults to false; `deterministic = true` at the top of domain.toml sets it."""
    assert load_domain(str(adapter)).manifest.deterministic is False
    toml = adapter / "domain.toml"
    toml.write_text("deterministic = true\n" + toml.read_text())
    assert load_domain(str(adapter)).manifest.deterministic is True
