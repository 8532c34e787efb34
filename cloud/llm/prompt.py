"""The versioned prompt: a text file under `cloud/llm/prompts/`, its version in its name (`classify_v1.txt`).

A result records the prompt's name and sha256, so an accuracy is always tied to the exact words the model
read. Changing the wording means a new file (`classify_v2.txt`), never an edit of a published one.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from shared.errors import UserError

PROMPTS_DIR = Path(__file__).resolve().parent / "prompts"
DEFAULT_PROMPT = PROMPTS_DIR / "classify_v1.txt"
PLACEHOLDER = "{posting}"
ROLES = ("system", "user")


@dataclass(frozen=True)
class Prompt:
    name: str
    sha256: str
    system: str
    user_template: str

    def messages(self, posting: str) -> list[dict[str, str]]:
        """The chat messages for one posting (plain substitution: braces in a posting are left alone)."""
        return [
            {"role": "system", "content": self.system},
            {"role": "user", "content": self.user_template.replace(PLACEHOLDER, posting)},
        ]

    def describe(self) -> dict[str, str]:
        return {"name": self.name, "sha256": self.sha256}


def load_prompt(path: str | Path = DEFAULT_PROMPT) -> Prompt:
    """Parse a prompt file: '#' comment lines, then a `[system]` and a `[user]` section."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UserError(f"prompt file {path}: {exc.strerror or exc}") from None
    sections: dict[str, list[str]] = {}
    current = None
    for number, line in enumerate(raw.decode("utf-8").splitlines(), start=1):
        if current is None and (line.startswith("#") or not line.strip()):
            continue
        if line.strip() in {f"[{role}]" for role in ROLES}:
            current = line.strip()[1:-1]
            sections[current] = []
        elif current is None:
            raise UserError(f"{path} line {number}: text before the [system] section")
        else:
            sections[current].append(line)
    missing = [role for role in ROLES if not "\n".join(sections.get(role, [])).strip()]
    if missing:
        raise UserError(f"{path}: missing or empty [{missing[0]}] section")
    user = "\n".join(sections["user"]).strip()
    if PLACEHOLDER not in user:
        raise UserError(f"{path}: the [user] section has no {PLACEHOLDER} placeholder")
    return Prompt(
        name=path.name,
        sha256=hashlib.sha256(raw).hexdigest(),
        system="\n".join(sections["system"]).strip(),
        user_template=user,
    )
