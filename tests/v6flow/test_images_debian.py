"""The Debian-base recipe and the pruning of its root filesystem (no Docker needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from v6flow._images.debian import DebianRecipe, prune_rootfs
from v6flow.errors import ConfigurationError

ROOT = Path(__file__).resolve().parents[2]


def test_the_r_example_recipe_reads_and_names_its_base() -> None:
    """The R example's recipe parses; its base tag carries the suite and a digest."""
    # Execute
    recipe = DebianRecipe.from_file(ROOT / "flows/v6flow_flows/r_mean/r_partial/debian-image.toml")
    # Assert
    assert recipe.packages == ("r-base-core", "r-cran-jsonlite")
    assert recipe.tag == f"v6flow/debian-base:bookworm-{recipe.digest()}"


def test_the_digest_changes_with_the_packages_not_their_order() -> None:
    """Same packages in another order: same base; another package: another base."""
    a = DebianRecipe(packages=("jq", "bash"))
    assert a.digest() == DebianRecipe(packages=("bash", "jq")).digest()
    assert a.digest() != DebianRecipe(packages=("jq", "bash", "curl")).digest()


@pytest.mark.parametrize(("data", "key"), [
    ({"packages": []}, "packages"),
    ({"packages": ["R base"]}, "packages"),
    ({"packages": ["jq"], "suite": "Bookworm!"}, "suite"),
    ({"packages": ["jq"], "prune": ["/etc"]}, "prune"),
    ({"packages": ["jq"], "prune": ["usr/../../etc"]}, "prune"),
    ({"packages": ["jq"], "pakages": ["x"]}, "pakages"),
])
def test_a_wrong_recipe_names_the_key(data: dict[str, object], key: str) -> None:
    """Empty or malformed packages, a bad suite, a prune path leaving / and unknown keys."""
    with pytest.raises(ConfigurationError) as info:
        DebianRecipe.from_mapping(data, "debian-image.toml")
    assert info.value.field == f"debian-image.toml: {key}"


def test_prune_keeps_copyright_files_and_never_leaves_the_rootfs(tmp_path: Path) -> None:
    """Docs go but copyright stays; a link out of the rootfs is removed, never followed."""
    # Prepare: a rootfs with docs, man pages, and a link to an outside folder whose content
    # matches a prune pattern
    rootfs, outside = tmp_path / "rootfs", tmp_path / "host"
    (rootfs / "usr/share/doc/r-base-core").mkdir(parents=True)
    (rootfs / "usr/share/doc/r-base-core/copyright").write_text("GPL", encoding="utf-8")
    (rootfs / "usr/share/doc/r-base-core/NEWS.gz").write_bytes(b"x" * 1000)
    (rootfs / "usr/share/man/man1").mkdir(parents=True)
    (rootfs / "usr/share/man/man1/R.1.gz").write_bytes(b"y" * 500)
    (outside / "pkg/html").mkdir(parents=True)
    (outside / "pkg/html/index.html").write_text("host file", encoding="utf-8")
    (rootfs / "usr/lib/R").mkdir(parents=True)
    (rootfs / "usr/lib/R/library").symlink_to(outside)
    (outside / "alternative.1.gz").write_text("host page", encoding="utf-8")
    (rootfs / "usr/share/man/man1/x.1.gz").symlink_to(outside / "alternative.1.gz")
    # Execute
    freed = prune_rootfs(rootfs, ("usr/lib/R/library/*/html",))
    # Assert
    assert (rootfs / "usr/share/doc/r-base-core/copyright").read_text(encoding="utf-8") == "GPL"
    assert not (rootfs / "usr/share/doc/r-base-core/NEWS.gz").exists()
    assert not any((rootfs / "usr/share/man").iterdir())
    assert (outside / "pkg/html/index.html").read_text(encoding="utf-8") == "host file"
    assert (outside / "alternative.1.gz").read_text(encoding="utf-8") == "host page"
    link_size = len(str(outside / "alternative.1.gz"))
    assert freed == 1500 + link_size
