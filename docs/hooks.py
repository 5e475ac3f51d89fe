"""mkdocs hook: the figures, reports and records the pages link to live beside the code
(``results/``, ``benchmarks/``, ``.ci/``), not under ``docs/``; they join the site as they are,
so a page links ``../results/beta_sweep.png`` (right where the repository shows the file) and
the site serves it at ``results/beta_sweep.png``."""

from pathlib import Path

from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parent.parent
SHARED = (
    "results/*.png",
    "results/*.gif",
    "results/*.md",
    "results/*.json",
    "results/*.csv",
    "benchmarks/*.png",
    "benchmarks/*.json",
    "benchmarks/*.md",
    ".ci/floor.txt",
)


def on_files(files, config):
    for pattern in SHARED:
        for path in sorted(ROOT.glob(pattern)):
            rel = path.relative_to(ROOT).as_posix()
            files.append(File(rel, str(ROOT), config["site_dir"], config["use_directory_urls"]))
    return files


def on_page_markdown(markdown, page, config, files):
    # a top-level page's "../results/x.png" is the site's "results/x.png"
    for folder in ("results", "benchmarks", ".ci"):
        markdown = markdown.replace(f"](../{folder}/", f"]({folder}/")
    return markdown
