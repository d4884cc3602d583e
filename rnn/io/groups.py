"""Groups files: ``models/NAME.txt``, one group per line: a label, then model names.

    # comments and blank lines are ignored
    BPTT bptt_a bptt_b bptt_c
    GA   ga_a ga_b ga_c

Several files can be given at once; their groups are concatenated (so the
one-group files written by ``train_models.py --count`` combine directly).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rnn.errors import UserError
from rnn.io import atomic_write_text, available_models


@dataclass(frozen=True)
class Groups:
    labels: list[str]            # one per group
    members: list[list[str]]     # model names of each group

    @property
    def names(self) -> list[str]:
        return [n for g in self.members for n in g]

    @property
    def label_of_each(self) -> list[str]:
        return [lab for lab, g in zip(self.labels, self.members) for _ in g]

    @property
    def group_index(self) -> list[int]:
        return [i for i, g in enumerate(self.members) for _ in g]


def add_groups_argument(parser) -> None:
    """The positional GROUPS.txt argument shared by the comparison scripts."""
    parser.add_argument("groups", nargs="+", metavar="GROUPS.txt",
                        help="groups file(s) in the models folder: each line a label then "
                             "model names; several files are combined")


def resolve_groups_path(arg: str, directory: Path) -> Path:
    """A groups file named on the command line: looked up in the models folder
    (as the original did), or used as given if it is a path that exists."""
    p = Path(arg)
    cand = Path(directory) / p.name if p.parent == Path(".") else p
    if cand.exists():
        return cand
    if p.exists():
        return p
    raise UserError(f"groups file {arg!r} not found (looked for {cand}); groups files live in "
                    f"the models folder")


def parse_groups_file(path: Path) -> list[tuple[str, list[str], int]]:
    from rnn.io import read_input_text
    out = []
    text = read_input_text(path, "groups file")    # a BOM some editors write is dropped
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) < 2:
            raise UserError(f"{path}:{lineno}: a group needs a label and at least one model "
                            f"name, got {line!r}")
        out.append((parts[0], parts[1:], lineno))
    return out


def read_groups(args: list[str], directory: Path, min_groups: int = 1,
                min_members: int = 2) -> Groups:
    """Read and check one or more groups files against the models folder."""
    labels, members = [], []
    seen: dict[str, str] = {}
    have = set(available_models(directory))
    for arg in args:
        path = resolve_groups_path(arg, directory)
        for label, names, lineno in parse_groups_file(path):
            for n in names:
                if n in seen:
                    raise UserError(f"{path}:{lineno}: model {n!r} is listed twice "
                                    f"(also in {seen[n]})")
                if n not in have:
                    raise UserError(f"{path}:{lineno}: model {n!r} does not exist in {directory}")
                seen[n] = f"group {label!r}"
            if len(names) < min_members:
                raise UserError(f"{path}:{lineno}: group {label!r} has {len(names)} "
                                f"network{'s' if len(names) != 1 else ''}; each group needs at "
                                f"least {min_members}")
            if label in labels:
                raise UserError(f"{path}:{lineno}: group label {label!r} is used twice")
            labels.append(label)
            members.append(names)
    if not labels:
        raise UserError(f"no groups in {', '.join(args)}: each line must be a label followed by "
                        f"model names")
    if len(labels) < min_groups:
        raise UserError(f"{', '.join(args)} has {len(labels)} group"
                        f"{'s' if len(labels) != 1 else ''}; this analysis needs at least "
                        f"{min_groups}")
    return Groups(labels, members)


def write_groups_file(path: Path, groups: list[tuple[str, list[str]]]) -> Path:
    text = "".join(f"{label} {' '.join(names)}\n" for label, names in groups)
    atomic_write_text(Path(path), text)
    return Path(path)
