"""bench/README.md shows the latest full run between two markers; the rest of it is hand-written."""

from __future__ import annotations

from pathlib import Path

README = Path(__file__).resolve().parent / "README.md"
BEGIN = "<!-- latest results: written by make bench -->"
END = "<!-- end of latest results -->"


def with_latest(readme: str, results_markdown: str, link: str) -> str:
    """`readme` with the text between the markers replaced by the results (headings demoted one
    level, so they sit under the README's own), and a link to the dated file."""
    if BEGIN not in readme or END not in readme:
        raise ValueError("bench/README.md lacks the latest-results markers")
    lines = results_markdown.splitlines()
    demoted = "\n".join("#" + line if line.startswith("#") else line for line in lines)
    head, _, rest = readme.partition(BEGIN)
    _, _, tail = rest.partition(END)
    return f"{head}{BEGIN}\n\nFrom [{link}]({link}):\n\n{demoted}\n\n{END}{tail}"


def show_latest(markdown: Path, readme: Path = README) -> None:
    link = markdown.relative_to(readme.parent).as_posix()
    readme.write_text(with_latest(readme.read_text(), markdown.read_text(), link))
