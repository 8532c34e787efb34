"""The dated LLM price table (`llm_prices.yaml`): one row per model, every field required.

A row with a missing or mistyped field is a one-line error naming the file, the row and the field: a cost
computed from a half-filled row would look as trustworthy as any other.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import yaml

from shared.errors import UserError

DEFAULT_PRICES = Path(__file__).resolve().parent / "llm_prices.yaml"
TOKENS_PER_PRICE_UNIT = 1_000_000

_FIELDS: dict[str, type | tuple[type, ...]] = {
    "id": str,
    "provider": str,
    "input_usd_per_mtok": (int, float),
    "output_usd_per_mtok": (int, float),
    "tokenizer": str,
    "tokenizer_is_models_own": bool,
    "token_factor": (int, float),
    "source": str,
    "checked": (dt.date, str),
    "checked_against": str,
}


@dataclass(frozen=True)
class ModelPrice:
    id: str
    provider: str
    input_usd_per_mtok: float
    output_usd_per_mtok: float
    tokenizer: str
    tokenizer_is_models_own: bool
    token_factor: float
    source: str
    checked: str  # ISO date
    checked_against: str

    def call_usd(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (
            prompt_tokens * self.input_usd_per_mtok + completion_tokens * self.output_usd_per_mtok
        ) / TOKENS_PER_PRICE_UNIT

    def to_json(self) -> dict:
        return dict(self.__dict__)


def load_prices(path: str | Path = DEFAULT_PRICES) -> dict[str, ModelPrice]:
    path = Path(path)
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UserError(f"price table {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise UserError(f"price table {path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    rows = document.get("models") if isinstance(document, dict) else None
    if not isinstance(rows, list) or not rows:
        raise UserError(f"price table {path}: expected a non-empty list under 'models'")
    prices: dict[str, ModelPrice] = {}
    for number, row in enumerate(rows, start=1):
        price = _row(path, number, row)
        if price.id in prices:
            raise UserError(f"price table {path}: row {number}: model {price.id!r} is listed twice")
        prices[price.id] = price
    return prices


def _row(path: Path, number: int, row: object) -> ModelPrice:
    if not isinstance(row, dict):
        raise UserError(f"price table {path}: row {number} is not a mapping")
    where = f"price table {path}: row {number} ({row.get('id', 'no id')})"
    for name, kind in _FIELDS.items():
        value = row.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            raise UserError(f"{where}: missing field '{name}'")
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            raise UserError(f"{where}: field '{name}' has the wrong type ({type(value).__name__})")
    for name in ("input_usd_per_mtok", "output_usd_per_mtok", "token_factor"):
        if row[name] < 0 or (name == "token_factor" and row[name] == 0):
            raise UserError(f"{where}: field '{name}' must be positive")
    checked = row["checked"]
    if isinstance(checked, str):
        try:
            checked = dt.date.fromisoformat(checked)
        except ValueError:
            raise UserError(f"{where}: field 'checked' is not an ISO date (YYYY-MM-DD)") from None
    return ModelPrice(
        id=row["id"],
        provider=row["provider"],
        input_usd_per_mtok=float(row["input_usd_per_mtok"]),
        output_usd_per_mtok=float(row["output_usd_per_mtok"]),
        tokenizer=row["tokenizer"],
        tokenizer_is_models_own=row["tokenizer_is_models_own"],
        token_factor=float(row["token_factor"]),
        source=row["source"],
        checked=checked.isoformat(),
        checked_against=row["checked_against"],
    )
